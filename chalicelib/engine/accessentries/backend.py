"""The access-entries identity backend (``backend: accessEntries``): reads entries through the
AccessEntryStore port, plans with ``plan_access_entries``, and carries a step out one entry at a
time so that one failure never blocks the rest.

Reads: a full run lists every entry (paginated) and describes each; a scoped run describes the
event's principals and lists only when one of them has no desired entry (removed or deleted), so
an event costs at most two EKS reads per principal. EKS is eventually consistent: a call that
answers 404 right after a create is retried with backoff; a create that collides with a delete
still propagating likewise.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from chalicelib.engine.accessentries.associations import Associate, Disassociate, PolicyAction, needs_read
from chalicelib.engine.accessentries.plan import (
    KEY,
    AccessEntriesStep,
    CreateEntry,
    DeleteEntry,
    EntryAction,
    Observed,
    RecreateEntry,
    UpdateEntry,
    as_entry,
    desired_entry,
    owned,
    plan_access_entries,
    tags_for,
)
from chalicelib.engine.guardrails import Policy
from chalicelib.engine.outcomes import observe
from chalicelib.errors import Forbidden, NotFound, PermanentError, TransientError, WriteConflict
from chalicelib.model import arns
from chalicelib.model.identities import (
    POLICY_KEY,
    Change,
    CurrentMapping,
    Outcome,
    OwnedEntry,
    Refusal,
    user_mapped_for,
)
from chalicelib.model.ownership import ACCESS_ENTRY_QUOTA, ENTRY_SOURCE_TAG
from chalicelib.model.ports import AccessEntryStore, ObservedAccessEntry, Observer
from chalicelib.model.principals import PrincipalScope


@dataclass
class AccessEntriesBackend:
    store: AccessEntryStore
    observer: Observer
    policy: Policy = field(default_factory=Policy)
    sleep: Callable[[float], None] = time.sleep
    propagation_attempts: int = 6
    propagation_base: float = 0.5
    name: str = "accessEntries"
    partition: str = (
        "aws"  # the cluster's: access policy ARNs are arn:<partition>:eks::aws:cluster-access-policy/<name>
    )

    def plan(self, desired: Iterable[OwnedEntry], scope: Container[str] | None = None) -> AccessEntriesStep:
        wanted = tuple(desired)
        if scope is None:
            principals = self.store.list_principals()
            observed = self._observed(self._describe(principals), wanted)
            return plan_access_entries(observed, wanted, None, self.policy, len(principals))
        principals = [w.iam_arn for w in wanted if w.iam_arn in scope]
        if _uncovered(scope, principals):
            listed = {p.lower() for p in principals}
            principals += [p for p in self.store.list_principals() if p in scope and p.lower() not in listed]
        return plan_access_entries(self._observed(self._describe(principals), wanted), wanted, scope, self.policy)

    def _observed(self, entries: list[ObservedAccessEntry], wanted: tuple[OwnedEntry, ...]) -> Observed:
        """The entries, and the associations of the owned ones that have or should have access policies
        (never a foreign or non-STANDARD entry's)."""
        by_key = {w.iam_arn.lower(): w for w in wanted}
        associations = {
            entry.key: self.store.associated_policies(entry.principal_arn)
            for entry in entries
            if owned(entry, self.policy.instance)
            and not self.policy.protects(entry.principal_arn)
            and needs_read(entry, by_key.get(entry.key))
        }
        return Observed(tuple(entries), associations, self.partition)

    def members_of(self, groups: Iterable[str]) -> set[str]:
        """Names of the users whose owned entries were made for these IAM groups."""
        groups = tuple(groups)
        return {
            name
            for entry in self._describe(self.store.list_principals())
            if owned(entry, self.policy.instance)
            and (name := user_mapped_for(entry.principal_arn, entry.tags.get(ENTRY_SOURCE_TAG, ""), groups))
        }

    def mapping_of(self, principal: OwnedEntry) -> CurrentMapping | None:
        """The principal's access entry (by its IAM ARN, path included), whoever made it."""
        found = self.store.describe(principal.iam_arn)
        if found is None:
            return None
        entry = as_entry(found)
        return CurrentMapping(entry, entry == desired_entry(principal))

    def verify(self, wanted: OwnedEntry) -> bool:
        """Whether the principal's entry exists as desired, waiting out EKS's propagation delay."""
        for attempt in range(self.propagation_attempts):
            found = self.store.describe(wanted.iam_arn)
            if found is not None:
                return owned(found, self.policy.instance) and as_entry(found) == desired_entry(wanted)
            if attempt < self.propagation_attempts - 1:
                self.sleep(self.propagation_base * 2**attempt)
        return False

    def read(self, principal_arn: str) -> ObservedAccessEntry | None:
        return self.store.describe(principal_arn)

    def apply(self, step: AccessEntriesStep, reason: str) -> Outcome:
        if step.status != "write":
            return self._report(Outcome.of(step, "unchanged" if step.status == "unchanged" else "refused"), step)
        done: list[Change] = []
        refusals: list[Refusal] = list(step.refusals)
        failed: list[str] = []
        for action in step.actions:
            try:
                self._carry_out(action)
            except PermanentError as err:
                reason_code = "eks-forbidden" if isinstance(err, Forbidden) else "eks-rejected"
                refusals.append(Refusal(reason_code, str(err), action.principal_arn))
                continue
            except TransientError as err:
                failed.append(str(err))
                self.observer.error("access entry write failed", action=action.verb, detail=str(err))
                continue
            done += action.changes()
        status: Literal["written", "refused", "unchanged"] = (
            "written" if done else "refused" if refusals else "unchanged"
        )
        outcome = Outcome(status, tuple(done), step.conflicts, tuple(refusals), step.warnings)
        self._report(outcome, step)
        if failed:
            raise TransientError(f"{len(failed)} access-entry writes failed ({reason}): {failed[0]}")
        return outcome

    def _carry_out(self, action: EntryAction) -> None:
        """One principal's actions in order; the first failure stops the rest of them (so the policy
        record is written only once its associations are)."""
        match action:
            case CreateEntry(wanted=wanted):
                self._create(wanted)
                self._policies(action.policies)
            case UpdateEntry(wanted=wanted, observed=observed):
                if action.mapping_changed:
                    entry = desired_entry(wanted)
                    self._propagated(lambda: self.store.update(observed.principal_arn, entry.username, entry.groups))
                self._policies(action.policies)
                if observed.entry_arn and action.tags_changed:
                    self._propagated(lambda: self.store.tag(observed.entry_arn, action.tags))
            case RecreateEntry(wanted=wanted, observed=observed):
                self._delete(observed)
                self._create(wanted)
                self._policies(action.policies)
            case DeleteEntry(observed=observed):
                self._delete(observed)

    def _policies(self, actions: Iterable[PolicyAction]) -> None:
        """Associations (a new scope is one call: EKS replaces it) before disassociations."""
        for policy in actions:
            match policy:
                case Associate():
                    self._propagated(
                        partial(self.store.associate, policy.principal_arn, policy.policy_arn, policy.namespaces)
                    )
                case Disassociate(principal_arn=principal, observed=observed):
                    with contextlib.suppress(NotFound):  # already gone: what the plan wanted
                        self.store.disassociate(principal, observed.policy_arn)

    def _create(self, wanted: OwnedEntry) -> None:
        entry = wanted.entry
        groups = tuple(sorted(set(entry.groups)))
        for attempt in range(self.propagation_attempts):
            try:
                self.store.create(wanted.iam_arn, entry.username, groups, tags_for(wanted, None, self.policy.instance))
                return
            except WriteConflict:
                # Someone else's entry appeared (a conflict next run reports), or our delete is still propagating.
                if attempt == self.propagation_attempts - 1:
                    raise
                self.sleep(self.propagation_base * 2**attempt)

    def _delete(self, observed: ObservedAccessEntry) -> None:
        with contextlib.suppress(NotFound):  # already gone: what the plan wanted
            self.store.delete(observed.principal_arn)

    def _propagated(self, call: Callable[[], None]) -> None:
        for attempt in range(self.propagation_attempts):
            try:
                call()
                return
            except NotFound as err:
                if attempt == self.propagation_attempts - 1:
                    raise TransientError(f"still not found after {attempt + 1} attempts: {err}") from err
                self.sleep(self.propagation_base * 2**attempt)

    def _describe(self, principals: Iterable[str]) -> list[ObservedAccessEntry]:
        return [entry for arn in principals if (entry := self.store.describe(arn)) is not None]

    def _report(self, outcome: Outcome, step: AccessEntriesStep) -> Outcome:
        observe(outcome, self.observer, "access entry")
        for warning in outcome.warnings:
            self.observer.warning("access entries near the quota", detail=warning)
        if step.entries_after is not None:
            self.observer.percent("AccessEntriesUsage", round(100 * step.entries_after / ACCESS_ENTRY_QUOTA, 1))
        # Each metric named where it is emitted, so that the dashboard's check (and a grep) finds it.
        for action, number in _by_action(outcome, KEY).items():
            self.observer.count("AccessEntriesChanged", number, action=action)
        for action, number in _by_action(outcome, POLICY_KEY).items():
            self.observer.count("AccessPoliciesChanged", number, action=action)
        return outcome


def _by_action(outcome: Outcome, key: str) -> dict[str, int]:
    """How many of the outcome's changes of this key each action made, in action order."""
    return dict(sorted(Counter(c.action for c in outcome.changes if c.key == key).items()))


def _uncovered(scope: Container[str], principals: list[str]) -> bool:
    """Whether a principal in scope has no desired entry (so its entry, if any, must be found by listing)."""
    if not isinstance(scope, PrincipalScope):
        return True
    covered = {(arns.kind_of(p), arns.name_of(p).lower()) for p in principals}
    named = {("user", u) for u in scope.users} | {("role", r) for r in scope.roles}
    return bool(named - covered)
