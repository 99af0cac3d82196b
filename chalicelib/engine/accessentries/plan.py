"""Stage 4 for access entries: (entries as observed, desired owned entries, scope, policy) -> one
step of per-principal actions. Pure.

- An entry is ours exactly when it is STANDARD, tagged managed-by eks-iam-sync and tagged with this
  instance (or with none: made before instances, adopted and tagged on this run); nothing else is
  ever updated or deleted, and a desired principal with someone else's entry is a conflict (naming
  the instance, when another instance's).
- A desired principal without an entry gets one (principalArn with its path, the username and
  groups aws-auth would carry, ownership tags); a different username or groups is an update.
- A principal recreated under the same ARN (its IAM unique id differs from the entry's tag) no
  longer authenticates through its old entry: delete and create again.
- Ours and no longer desired (within the scope) is deleted, unless protected (the service's own
  role, break-glass) — and never beyond the deletion breaker or the 3 000-entry quota.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from chalicelib.engine.accessentries.associations import (
    Disassociate,
    PolicyAction,
    new_associations,
    plan_policies,
    policy_tags,
)
from chalicelib.engine.accessentries.rules import refusal_for
from chalicelib.engine.guardrails import Policy, deletion_breaker
from chalicelib.model.identities import Change, Conflict, Entry, OwnedEntry, Refusal
from chalicelib.model.ownership import (
    ACCESS_ENTRY_QUOTA,
    DEFAULT_INSTANCE,
    ENTRY_INSTANCE_TAG,
    ENTRY_PRINCIPAL_ID_TAG,
    ENTRY_SOURCE_TAG,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    instance_marker,
    owner,
    owns,
)
from chalicelib.model.ports import AssociatedPolicy, ObservedAccessEntry

KEY = "accessEntry"
QUOTA_WARNING_SHARE = 0.8
TAG_VALUE_LIMIT = 256


def owned(entry: ObservedAccessEntry, instance: str | None = DEFAULT_INSTANCE) -> bool:
    """The service's and ``instance``'s (None: any instance's, as the report counts them)."""
    service = entry.type == "STANDARD" and entry.tags.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
    return service and (instance is None or owns(instance, entry.tags.get(ENTRY_INSTANCE_TAG)))


def other_instance(entry: ObservedAccessEntry, instance: str) -> str:
    """The owner of the service's entry that another instance tagged; "" for anything else."""
    if not owned(entry, None) or owned(entry, instance):
        return ""
    return owner(entry.tags[ENTRY_INSTANCE_TAG])


def tags_for(
    wanted: OwnedEntry, observed: ObservedAccessEntry | None = None, instance: str = DEFAULT_INSTANCE
) -> dict[str, str]:
    tags = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, ENTRY_SOURCE_TAG: wanted.source[:TAG_VALUE_LIMIT]}
    if wanted.principal_id:
        tags[ENTRY_PRINCIPAL_ID_TAG] = wanted.principal_id
    marker = instance_marker(instance)
    if marker:
        tags[ENTRY_INSTANCE_TAG] = marker
    return tags | policy_tags(wanted, observed)


def as_entry(entry: ObservedAccessEntry) -> Entry:
    return Entry(entry.principal_arn, entry.username, tuple(sorted(entry.kubernetes_groups)))


def desired_entry(wanted: OwnedEntry) -> Entry:
    return Entry(wanted.iam_arn, wanted.entry.username, tuple(sorted(set(wanted.entry.groups))))


@dataclass(frozen=True)
class CreateEntry:
    """A new entry, then its access-policy associations (``policies``)."""

    wanted: OwnedEntry
    policies: tuple[PolicyAction, ...] = ()
    verb = "create"

    @property
    def principal_arn(self) -> str:
        return self.wanted.iam_arn

    def change(self) -> Change:
        return Change("add", KEY, None, desired_entry(self.wanted), self.wanted.source)

    def changes(self) -> tuple[Change, ...]:
        return (self.change(), *(p.change() for p in self.policies))


@dataclass(frozen=True)
class UpdateEntry:
    """A changed username, groups or tags, and the associations to change (``policies``): the mapping
    first, then associations, then disassociations, then the tags (the record last, once they are done)."""

    wanted: OwnedEntry
    observed: ObservedAccessEntry
    policies: tuple[PolicyAction, ...] = ()
    instance: str = DEFAULT_INSTANCE  # whose tag it carries after the update (an unmarked entry adopted)
    verb = "update"

    @property
    def principal_arn(self) -> str:
        return self.observed.principal_arn

    @property
    def mapping_changed(self) -> bool:
        return as_entry(self.observed) != desired_entry(self.wanted)

    @property
    def tags_changed(self) -> bool:
        return self.observed.tags != {**self.observed.tags, **self.tags}

    @property
    def tags(self) -> dict[str, str]:
        return tags_for(self.wanted, self.observed, self.instance)

    def change(self) -> Change:
        return Change("update", KEY, as_entry(self.observed), desired_entry(self.wanted), self.wanted.source)

    def changes(self) -> tuple[Change, ...]:
        entry = (self.change(),) if self.mapping_changed or self.tags_changed else ()
        return (*entry, *(p.change() for p in self.policies))


@dataclass(frozen=True)
class RecreateEntry:
    """The principal was deleted and recreated: EKS bound the entry to the old unique id."""

    wanted: OwnedEntry
    observed: ObservedAccessEntry
    policies: tuple[PolicyAction, ...] = ()
    verb = "recreate"

    @property
    def principal_arn(self) -> str:
        return self.wanted.iam_arn

    def change(self) -> Change:
        return Change("recreate", KEY, as_entry(self.observed), desired_entry(self.wanted), self.wanted.source)

    def changes(self) -> tuple[Change, ...]:
        return (self.change(), *(p.change() for p in self.policies))


@dataclass(frozen=True)
class DeleteEntry:
    """Deleting an entry deletes its associations with it (EKS cascades)."""

    observed: ObservedAccessEntry
    verb = "delete"

    @property
    def principal_arn(self) -> str:
        return self.observed.principal_arn

    def change(self) -> Change:
        return Change("remove", KEY, as_entry(self.observed), None, self.observed.tags.get(ENTRY_SOURCE_TAG, ""))

    def changes(self) -> tuple[Change, ...]:
        return (self.change(),)


EntryAction = CreateEntry | UpdateEntry | RecreateEntry | DeleteEntry


@dataclass(frozen=True)
class AccessEntriesStep:
    status: Literal["unchanged", "refused", "write"]
    actions: tuple[EntryAction, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    warnings: tuple[str, ...] = ()
    entries_after: int | None = None  # how many entries the cluster would hold, when all were listed
    instances: frozenset[str] = frozenset()  # the instance tags of the service's entries read (marked ones)

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for a in self.actions for c in a.changes())


@dataclass(frozen=True)
class Observed:
    """What a plan starts from: the entries as described, the associations read (owned entries that have
    or should have policies, by lower-case principal ARN), and the cluster's partition."""

    entries: tuple[ObservedAccessEntry, ...]
    associations: Mapping[str, Sequence[AssociatedPolicy]] = field(default_factory=dict)
    partition: str = "aws"


def plan_access_entries(
    observed: Observed | Iterable[ObservedAccessEntry],
    desired: Iterable[OwnedEntry],
    scope: Container[str] | None,
    policy: Policy,
    total: int | None = None,
) -> AccessEntriesStep:
    """``total``: every entry of the cluster (ours, foreign, nodes) when all were listed, else None."""
    seen = observed if isinstance(observed, Observed) else Observed(tuple(observed))
    current = {e.key: e for e in seen.entries}
    actions: list[EntryAction] = []
    conflicts: list[Conflict] = []
    refusals: list[Refusal] = []
    wanted = _wanted(desired, scope, refusals)
    for key, item in sorted(wanted.items()):
        entry = current.get(key)
        if entry is None:
            actions.append(CreateEntry(item, new_associations(item, seen.partition)))
        elif not owned(entry, policy.instance):
            conflicts.append(Conflict(KEY, as_entry(entry), item, other_instance(entry, policy.instance)))
        elif not _protected(entry, policy):
            actions += _kept(item, entry, seen, policy.instance)
    for key, entry in sorted(current.items()):
        if key in wanted or not owned(entry, policy.instance) or _protected(entry, policy):
            continue
        if scope is None or entry.principal_arn in scope:
            actions.append(DeleteEntry(entry))
    step = _checked(actions, conflicts, refusals, seen, policy, total)
    marks = frozenset(
        e.tags[ENTRY_INSTANCE_TAG] for e in seen.entries if owned(e, None) and e.tags.get(ENTRY_INSTANCE_TAG)
    )
    return replace(step, instances=marks)


def _kept(item: OwnedEntry, entry: ObservedAccessEntry, seen: Observed, instance: str) -> list[EntryAction]:
    """An owned entry that stays: recreated (a new principal under the same ARN), or brought in step."""
    if item.principal_id and entry.tags.get(ENTRY_PRINCIPAL_ID_TAG, item.principal_id) != item.principal_id:
        return [RecreateEntry(item, entry, new_associations(item, seen.partition))]
    policies = plan_policies(item, seen.associations.get(entry.key, ()), seen.partition)
    update = UpdateEntry(item, entry, policies, instance)
    return [update] if policies or update.mapping_changed or update.tags_changed else []


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
    seen: Observed,
    policy: Policy,
    total: int | None,
) -> AccessEntriesStep:
    warnings: list[str] = []
    blocking: list[Refusal] = []
    deletes = sum(1 for a in actions if isinstance(a, DeleteEntry))
    ours = sum(1 for e in seen.entries if owned(e, policy.instance))
    breaker = deletion_breaker(ours, deletes, policy, "owned access entries", "delete")
    if breaker is not None:
        blocking.append(breaker)
    associated = sum(len(found) for found in seen.associations.values())
    removed = sum(1 for a in actions if isinstance(a, UpdateEntry) for p in a.policies if isinstance(p, Disassociate))
    breaker = deletion_breaker(associated, removed, policy, "access-policy associations of owned entries", "remove")
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
