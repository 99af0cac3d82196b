"""IAM Identity Center group grants in a cluster's run: what a full run leaves alone (``kept``), an
Identity Store event's own part (``sso_event``) and the deletion breaker over their bindings
(``sso_breaker``). Called by ``reconcile`` only."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Protocol

from chalicelib.config import Config
from chalicelib.engine.desired import DesiredState, Refusal, label_selector
from chalicelib.engine.guardrails import Policy, deletion_breaker
from chalicelib.engine.plan import DeleteBinding, Plan, plan_bindings
from chalicelib.engine.sso import kept_groups, removals, sso_bindings
from chalicelib.model.ownership import (
    SSO_GROUP_LABEL_PREFIX,
    SSO_USER_KIND,
    instance_marker,
    sso_group_label,
    sso_user_label,
)
from chalicelib.model.ports import ClusterPorts, ObservedBinding, Observer
from chalicelib.model.sso import SsoSnapshot


class OwnedBindings(Protocol):
    """The bindings an instance owns, of those a store lists (``run.instances.OwnBindings``)."""

    instance: str

    def list_owned(self, principals: Collection[str] | None = None) -> list[ObservedBinding]: ...
    def list_owned_of_groups(self, groups: Collection[str]) -> list[ObservedBinding]: ...


# The refusal of Identity Center binding deletions held back by the breaker (a failure: it alarms).
SSO_BREAKER = "identity-center-deletion-breaker"


def kept(binding: ObservedBinding, desired: DesiredState) -> bool:
    """An Identity Center binding a full run leaves as it is: its group's read failed, or the run did
    not read Identity Center at all (an error, or a command that does not, is never an empty group)."""
    label = binding.group_label or ""
    return label in desired.kept or (not desired.sso_read and label.startswith(SSO_GROUP_LABEL_PREFIX))


def sso_event(
    config: Config,
    ports: ClusterPorts,
    sso: SsoSnapshot,
    desired: DesiredState,
    plan: Plan,
    event_id: str | None,
    mine: OwnedBindings,
) -> tuple[DesiredState, Plan]:
    """An Identity Store event's part: the bindings of its people (listed by their label) or of every
    granted group (by the groups' labels), planned whole: what they no longer hold is deleted (of
    ``mine``: this instance's own; another's are kept aside there)."""
    settings = config.identity_center
    if settings is None:
        return desired, plan
    selected: dict[int, tuple[str, ...]] = {}
    for index, grant in enumerate(settings.group_grants):
        if grant.namespaces is None and grant.namespace_selector is not None:
            selector = label_selector(grant.namespace_selector)
            selected[index] = () if selector is None else tuple(ports.bindings.namespaces(selector))
    granted, refused, _ = sso_bindings(config, sso, None, selected)
    granted = [replace(b, event_id=event_id, instance=instance_marker(mine.instance)) for b in granted]
    if sso.users is None:
        observed = mine.list_owned_of_groups({sso_group_label(name) for name in settings.groups()})
    else:
        observed = mine.list_owned({sso_user_label(user) for user in sso.users})
    kept = kept_groups(sso)
    actions = plan_bindings(granted, [b for b in observed if b.group_label not in kept], None)
    refusals = tuple(Refusal(r.principal, r.subject, r.reason, r.message) for r in refused)
    desired = replace(desired, bindings=desired.bindings + tuple(granted), refusals=desired.refusals + refusals)
    return desired, replace(plan, bindings=plan.bindings + actions)


def sso_breaker(desired: DesiredState, plan: Plan, policy: Policy, observer: Observer) -> tuple[DesiredState, Plan]:
    """The deletion breaker over Identity Center bindings, in people: one person's removal never
    trips it; a deleted group that takes most of them does, unless forced."""
    deleted = [a.observed.principal_label for a in plan.bindings if isinstance(a, DeleteBinding)]
    owned, removed = removals(desired.bindings, deleted)
    truth = "the Identity Store's group memberships"
    refusal = deletion_breaker(owned, removed, policy, "people's Identity Center access", "remove", truth=truth)
    if refusal is None:
        return desired, plan
    held = tuple(
        a
        for a in plan.bindings
        if isinstance(a, DeleteBinding) and (a.observed.principal_label or "").startswith(f"{SSO_USER_KIND}-")
    )
    observer.error("deletion breaker: Identity Center RoleBindings held back", detail=refusal.message, held=len(held))
    observer.count("GuardrailRefusals", reason="deletion-breaker")
    refused = Refusal("identityCenter", f"{len(held)} RoleBindings", SSO_BREAKER, refusal.message)
    plan = replace(plan, bindings=tuple(a for a in plan.bindings if a not in held))
    return replace(desired, refusals=(*desired.refusals, refused)), plan
