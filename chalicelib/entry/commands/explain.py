"""``explain PRINCIPAL``: why can (or can't) a principal reach a namespace? Per cluster: which identity
backend maps it and whether the mapping is in place (asked of the backend, ``mapping_of``), the rule or
tag behind it, every RoleBinding that applies and what its ClusterRole allows; and, on an
``API_AND_CONFIG_MAP`` cluster, an aws-auth mapping of the same principal that the access entry
shadows (or that still maps it, before the entry exists)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chalicelib.config import Config, name_of_arn
from chalicelib.config.accesspolicies import EDIT as EDIT_POLICY
from chalicelib.config.settings import instance
from chalicelib.engine.desired import Refusal, desired_state
from chalicelib.engine.explain import (
    Explanation,
    PersonGrant,
    PolicyAccess,
    explain,
    explain_person,
    policy_access,
    refusals_for,
    scope_text,
)
from chalicelib.entry.commands.common import Failed, Reach, connect, runtime_for
from chalicelib.errors import SyncError
from chalicelib.model import arns
from chalicelib.model.identities import CurrentMapping, Entry, OwnedEntry
from chalicelib.model.ports import ClusterPorts, IdentityBackend, Observer
from chalicelib.model.snapshot import IamSnapshot
from chalicelib.model.sso import SsoSnapshot
from chalicelib.run import runner
from chalicelib.run.reconcile import Options, aws_auth_writer, guardrail_policy, identity_backend


@dataclass(frozen=True)
class Mapped:
    explanation: Explanation
    current: Entry | None  # how the backend maps the principal now (None: not at all)
    also_in_aws_auth: Entry | None = None  # API_AND_CONFIG_MAP: aws-auth maps it too, through the other backend


@dataclass(frozen=True)
class ClusterExplained:
    cluster: str
    backend: str  # configMap | accessEntries
    authentication_mode: str | None
    mappings: tuple[Mapped, ...]
    refusals: tuple[Refusal, ...] = ()  # nothing maps the principal: the grants refused to it
    warnings: tuple[str, ...] = ()
    # An IAM Identity Center person: their groups' bindings, through their permission set's roles.
    people: tuple[PersonGrant, ...] = ()
    roles_in_place: frozenset[str] = frozenset()  # principal ARNs of those roles the cluster maps as desired


@dataclass(frozen=True)
class Explained:
    principal: str
    clusters: tuple[ClusterExplained | Failed, ...]

    @property
    def found(self) -> bool:
        return any(isinstance(c, ClusterExplained) and (c.mappings or c.people) for c in self.clusters)


def explain_principal(config: Config, reach: Reach, principal: str) -> Explained:
    runtime = runtime_for(reach)
    shell = runtime.shell()
    snapshot = shell.iam(config.iam_role).full_snapshot()
    sso = runner.identity_center(config, shell, None, runtime.observer("")) if _a_person(config, principal) else None
    clusters: list[ClusterExplained | Failed] = []
    for name, ports in connect(config, reach, shell).items():
        if isinstance(ports, SyncError):
            clusters.append(Failed.of(name, ports))
            continue
        try:
            clusters.append(_explain_cluster(config, principal, snapshot, ports, runtime.observer(name), sso))
        except SyncError as err:
            clusters.append(Failed.of(name, err))
    return Explained(principal, tuple(clusters))


def _a_person(config: Config, principal: str) -> bool:
    """Whether ``principal`` may be an Identity Center person (Identity Center is read only then)."""
    parsed = arns.parse(principal)
    return config.identity_center is not None and (parsed is None or parsed.kind == "assumed-role")


def _explain_cluster(
    config: Config,
    principal: str,
    snapshot: IamSnapshot,
    ports: ClusterPorts,
    observer: Observer,
    sso: SsoSnapshot | None = None,
) -> ClusterExplained:
    backend: IdentityBackend[Any] = identity_backend(
        config, ports, Options(instance=instance()), observer
    )  # asked through the port
    desired = desired_state(config, snapshot, ports.bindings.namespaces(), sso=sso)
    if backend.name == "configMap":
        desired = desired.for_aws_auth()  # access policies through their RBAC equivalents
    current: dict[OwnedEntry, CurrentMapping | None] = {}

    def in_place(owned: OwnedEntry) -> bool:
        current[owned] = backend.mapping_of(owned)
        found = current[owned]
        return found is not None and found.as_desired

    rules = {role: _rules(ports, role) for role in sorted({b.cluster_role for b in desired.bindings})}
    explanations = explain(principal, desired, in_place, rules)
    shadowing = backend.name == "accessEntries" and ports.authentication_mode == "API_AND_CONFIG_MAP"
    aws_auth = (
        aws_auth_writer(config, ports, guardrail_policy(config, Options(instance=instance())), observer)
        if shadowing
        else None
    )
    mappings = []
    for found in explanations:
        now = current.get(found.owned)
        also = aws_auth.mapping_of(found.owned) if aws_auth else None
        item = found
        if backend.name == "accessEntries" and found.owned.access_policies:
            item = replace(found, policies=policy_access(found.owned, _associated(ports, found.owned, now)))
        mappings.append(Mapped(item, now.entry if now else None, also.entry if also else None))
    people = tuple(explain_person(principal, config, desired, rules))
    roles = {owned for person in people for owned in person.roles}
    placed = frozenset(owned.iam_arn for owned in roles if in_place(owned))
    refusals = () if explanations or people else tuple(refusals_for(principal, desired))
    warnings = _edit_without_crds(ports, [p for m in mappings for p in m.explanation.policies])
    mode = ports.authentication_mode
    return ClusterExplained(ports.name, backend.name, mode, tuple(mappings), refusals, tuple(warnings), people, placed)


def _associated(ports: ClusterPorts, owned: OwnedEntry, now: CurrentMapping | None) -> dict[str, str]:
    """The entry's associations now, by policy name (none without an entry)."""
    if now is None or ports.access_entries is None:
        return {}
    found = ports.access_entries.associated_policies(owned.iam_arn)
    return {name_of_arn(a.policy_arn): "cluster" if a.scope == "cluster" else scope_text(a.namespaces) for a in found}


def _edit_without_crds(ports: ClusterPorts, policies: list[PolicyAccess]) -> list[str]:
    """AmazonEKSEditPolicy lists Kubernetes' own resources: custom resources are not in it (the `edit`
    ClusterRole aggregates them; the policy does not)."""
    if ports.rbac is None or not any(p.grant.policy == EDIT_POLICY for p in policies):
        return []
    crds = ports.rbac.custom_resources()
    if not crds:
        return []
    return [
        f"AmazonEKSEditPolicy grants no custom resources, and this cluster has {len(crds)} CRDs "
        f"({', '.join(crds[:3])}{', ...' if len(crds) > 3 else ''}): grant those through RBAC (kubernetesGroups)"
    ]


def _rules(ports: ClusterPorts, role: str) -> tuple[str, ...]:
    try:
        return tuple(ports.cluster_roles.rules(role))
    except SyncError as err:
        return (f"(cannot read ClusterRole {role}: {err})",)
