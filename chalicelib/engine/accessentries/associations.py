"""An owned access entry's EKS access-policy associations: desired grants x associations as read ->
what to associate and disassociate. Pure.

- One association per policy (``OwnedEntry.access_policies`` already merged them), its ARN in the
  cluster's partition.
- A policy whose scope differs is associated again with the new scope, in ONE AssociateAccessPolicy
  call (EKS replaces the scope): never a disassociate first, so access the old and the new scope
  share is never interrupted.
- A policy no rule names any more is disassociated. An owned entry's associations are the
  service's; a foreign entry's are never read nor changed.
- Associations cannot be tagged: the entry's ``eks-iam-sync/access-policies`` tag records the
  policies the service gave it, so only entries with a record or a desired policy are read (a
  full run over entries without any policy costs no ListAssociatedAccessPolicies).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from chalicelib.config import name_of_arn, policy_arn
from chalicelib.model.identities import POLICY_KEY, Change, Entry, OwnedEntry, PolicyGrant
from chalicelib.model.ownership import ENTRY_POLICIES_TAG
from chalicelib.model.ports import AssociatedPolicy, ObservedAccessEntry

_LONG_PREFIX, _SUFFIX = "AmazonEKS", "Policy"


@dataclass(frozen=True)
class Associate:
    """AssociateAccessPolicy: a new association, or a new scope for one (``before``)."""

    principal_arn: str
    policy_arn: str
    namespaces: tuple[str, ...]  # empty: cluster scope
    source: str
    before: AssociatedPolicy | None = None

    def change(self) -> Change:
        after = Entry(self.principal_arn, name_of_arn(self.policy_arn), self.namespaces)
        before = None if self.before is None else _as_entry(self.principal_arn, self.before)
        return Change("add" if before is None else "update", POLICY_KEY, before, after, self.source)


@dataclass(frozen=True)
class Disassociate:
    principal_arn: str
    observed: AssociatedPolicy

    def change(self) -> Change:
        return Change("remove", POLICY_KEY, _as_entry(self.principal_arn, self.observed), None, "no rule names it")


PolicyAction = Associate | Disassociate


def _as_entry(principal_arn: str, association: AssociatedPolicy) -> Entry:
    namespaces = () if association.scope == "cluster" else tuple(sorted(association.namespaces))
    return Entry(principal_arn, name_of_arn(association.policy_arn), namespaces)


def short_name(policy: str) -> str:
    """AmazonEKSViewPolicy -> View (the record tag holds every policy in its 256 characters)."""
    return policy.removeprefix(_LONG_PREFIX).removesuffix(_SUFFIX) or policy


def record(grants: Iterable[PolicyGrant]) -> str:
    return " ".join(sorted(short_name(g.policy) for g in grants))


def policy_tags(wanted: OwnedEntry, observed: ObservedAccessEntry | None) -> dict[str, str]:
    """The record tag an entry should carry: when it has policies, or had (then emptied)."""
    if wanted.access_policies or (observed is not None and ENTRY_POLICIES_TAG in observed.tags):
        return {ENTRY_POLICIES_TAG: record(wanted.access_policies)}
    return {}


def needs_read(observed: ObservedAccessEntry, wanted: OwnedEntry | None) -> bool:
    """Whether an owned entry's associations must be read: it should have some, or the record says it has."""
    return bool(observed.tags.get(ENTRY_POLICIES_TAG, "").strip()) or bool(wanted and wanted.access_policies)


def plan_policies(wanted: OwnedEntry, observed: Sequence[AssociatedPolicy], partition: str) -> tuple[PolicyAction, ...]:
    """What brings the entry's associations (as read) to the desired grants."""
    current: Mapping[str, AssociatedPolicy] = {a.policy_arn: a for a in observed}
    actions: list[PolicyAction] = []
    desired = {policy_arn(g.policy, partition): g for g in wanted.access_policies}
    for arn, grant in sorted(desired.items()):
        found = current.get(arn)
        if found is None or not _same_scope(found, grant):
            actions.append(Associate(wanted.iam_arn, arn, grant.namespaces, grant.source, found))
    actions += [Disassociate(wanted.iam_arn, a) for arn, a in sorted(current.items()) if arn not in desired]
    return tuple(actions)


def new_associations(wanted: OwnedEntry, partition: str) -> tuple[PolicyAction, ...]:
    """A new (or recreated) entry's associations: every desired grant."""
    return plan_policies(wanted, (), partition)


def _same_scope(found: AssociatedPolicy, grant: PolicyGrant) -> bool:
    if grant.cluster_scope:
        return found.scope == "cluster"
    return found.scope == "namespace" and tuple(sorted(set(found.namespaces))) == grant.namespaces
