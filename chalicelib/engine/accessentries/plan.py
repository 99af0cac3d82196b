"""Stage 4 for access entries: (entries as observed, desired owned entries, scope, policy) -> one
step of per-principal actions. Pure.

- An entry is ours exactly when it is STANDARD and tagged managed-by eks-iam-sync; nothing else is
  ever updated or deleted, and a desired principal with someone else's entry is a conflict.
- A desired principal without an entry gets one (principalArn with its path, the username and
  groups aws-auth would carry, ownership tags); a different username or groups is an update.
- A principal recreated under the same ARN (its IAM unique id differs from the entry's tag) no
  longer authenticates through its old entry: delete and create again.
- Ours and no longer desired (within the scope) is deleted, unless protected (the service's own
  role, break-glass) — and never beyond the deletion breaker or the 3 000-entry quota.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from chalicelib.engine.accessentries.rules import refusal_for
from chalicelib.engine.guardrails import Policy, deletion_breaker
from chalicelib.model.identities import Change, Conflict, Entry, OwnedEntry, Refusal
from chalicelib.model.ownership import (
    ACCESS_ENTRY_QUOTA,
    ENTRY_PRINCIPAL_ID_TAG,
    ENTRY_SOURCE_TAG,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
)
from chalicelib.model.ports import ObservedAccessEntry

KEY = "accessEntry"
QUOTA_WARNING_SHARE = 0.8
TAG_VALUE_LIMIT = 256


def owned(entry: ObservedAccessEntry) -> bool:
    return entry.type == "STANDARD" and entry.tags.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def tags_for(wanted: OwnedEntry) -> dict[str, str]:
    tags = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, ENTRY_SOURCE_TAG: wanted.source[:TAG_VALUE_LIMIT]}
    if wanted.principal_id:
        tags[ENTRY_PRINCIPAL_ID_TAG] = wanted.principal_id
    return tags


def as_entry(entry: ObservedAccessEntry) -> Entry:
    return Entry(entry.principal_arn, entry.username, tuple(sorted(entry.kubernetes_groups)))


def desired_entry(wanted: OwnedEntry) -> Entry:
    return Entry(wanted.iam_arn, wanted.entry.username, tuple(sorted(set(wanted.entry.groups))))


@dataclass(frozen=True)
class CreateEntry:
    wanted: OwnedEntry
    verb = "create"

    def change(self) -> Change:
        return Change("add", KEY, None, desired_entry(self.wanted), self.wanted.source)


@dataclass(frozen=True)
class UpdateEntry:
    wanted: OwnedEntry
    observed: ObservedAccessEntry
    verb = "update"

    @property
    def mapping_changed(self) -> bool:
        return as_entry(self.observed) != desired_entry(self.wanted)

    def change(self) -> Change:
        return Change("update", KEY, as_entry(self.observed), desired_entry(self.wanted), self.wanted.source)


@dataclass(frozen=True)
class RecreateEntry:
    """The principal was deleted and recreated: EKS bound the entry to the old unique id."""

    wanted: OwnedEntry
    observed: ObservedAccessEntry
    verb = "recreate"

    def change(self) -> Change:
        return Change("recreate", KEY, as_entry(self.observed), desired_entry(self.wanted), self.wanted.source)


@dataclass(frozen=True)
class DeleteEntry:
    observed: ObservedAccessEntry
    verb = "delete"

    def change(self) -> Change:
        return Change("remove", KEY, as_entry(self.observed), None, self.observed.tags.get(ENTRY_SOURCE_TAG, ""))


EntryAction = CreateEntry | UpdateEntry | RecreateEntry | DeleteEntry


@dataclass(frozen=True)
class AccessEntriesStep:
    status: Literal["unchanged", "refused", "write"]
    actions: tuple[EntryAction, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    warnings: tuple[str, ...] = ()
    entries_after: int | None = None  # how many entries the cluster would hold, when all were listed

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(a.change() for a in self.actions)


def plan_access_entries(
    observed: Iterable[ObservedAccessEntry],
    desired: Iterable[OwnedEntry],
    scope: Container[str] | None,
    policy: Policy,
    total: int | None = None,
) -> AccessEntriesStep:
    """``total``: every entry of the cluster (ours, foreign, nodes) when all were listed, else None."""
    current = {e.key: e for e in observed}
    actions: list[EntryAction] = []
    conflicts: list[Conflict] = []
    refusals: list[Refusal] = []
    wanted = _wanted(desired, scope, refusals)
    for key, item in sorted(wanted.items()):
        entry = current.get(key)
        if entry is None:
            actions.append(CreateEntry(item))
        elif not owned(entry):
            conflicts.append(Conflict(KEY, as_entry(entry), item))
        elif _protected(entry, policy):
            continue
        elif item.principal_id and entry.tags.get(ENTRY_PRINCIPAL_ID_TAG, item.principal_id) != item.principal_id:
            actions.append(RecreateEntry(item, entry))
        elif as_entry(entry) != desired_entry(item) or entry.tags != {**entry.tags, **tags_for(item)}:
            actions.append(UpdateEntry(item, entry))
    for key, entry in sorted(current.items()):
        if key in wanted or not owned(entry) or _protected(entry, policy):
            continue
        if scope is None or entry.principal_arn in scope:
            actions.append(DeleteEntry(entry))
    return _checked(actions, conflicts, refusals, current, policy, total)


def _wanted(
    desired: Iterable[OwnedEntry], scope: Container[str] | None, refusals: list[Refusal]
) -> dict[str, OwnedEntry]:
    wanted: dict[str, OwnedEntry] = {}
    for item in desired:
        if scope is not None and item.iam_arn not in scope:
            continue
        refused = refusal_for(item)
        if refused is not None:
            refusals.append(refused)
            continue
        wanted[item.iam_arn.lower()] = item
    return wanted


def _protected(entry: ObservedAccessEntry, policy: Policy) -> bool:
    return policy.protects(entry.principal_arn)


def _checked(
    actions: list[EntryAction],
    conflicts: list[Conflict],
    refusals: list[Refusal],
    current: Mapping[str, ObservedAccessEntry],
    policy: Policy,
    total: int | None,
) -> AccessEntriesStep:
    warnings: list[str] = []
    blocking: list[Refusal] = []
    deletes = sum(1 for a in actions if isinstance(a, DeleteEntry))
    ours = sum(1 for e in current.values() if owned(e))
    breaker = deletion_breaker(ours, deletes, policy, "owned access entries", "delete")
    if breaker is not None:
        blocking.append(breaker)
    after = None
    if total is not None:
        after = total + sum(1 for a in actions if isinstance(a, CreateEntry)) - deletes
        if after > ACCESS_ENTRY_QUOTA:
            message = (
                f"the cluster would hold {after} access entries, over EKS's quota of {ACCESS_ENTRY_QUOTA} "
                "(not adjustable): map IAM roles (one entry each) instead of many users"
            )
            blocking.append(Refusal("quota", message))
        elif after >= QUOTA_WARNING_SHARE * ACCESS_ENTRY_QUOTA:
            warnings.append(f"{after} of {ACCESS_ENTRY_QUOTA} access entries in use ({after / ACCESS_ENTRY_QUOTA:.0%})")
    if blocking:
        return AccessEntriesStep(
            "refused", tuple(actions), tuple(conflicts), (*refusals, *blocking), tuple(warnings), after
        )
    status: Literal["unchanged", "write"] = "write" if actions else "unchanged"
    return AccessEntriesStep(status, tuple(actions), tuple(conflicts), tuple(refusals), tuple(warnings), after)
