"""The only module that orders the stages for one cluster:
IAM snapshot -> desired state -> plan (identity step + RoleBinding actions) -> apply (or display).

Everything it reaches goes through ports (``chalicelib.ports``), injected by the service layer:
the cluster's stores and the identity backend built for it here. ``scope=None`` is a full reconcile
(namespaces listed, every owned object considered); a PrincipalScope limits every write to those
principals' entries and bindings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from chalicelib.accessentries.backend import AccessEntriesBackend
from chalicelib.apply import Applied, Applier, DisplayOnlyApplier
from chalicelib.awsauth.guardrails import Policy
from chalicelib.awsauth.writer import AwsAuthWriter, WriterSettings
from chalicelib.config import Cluster, Config, grants_everything
from chalicelib.desired import (
    DesiredState,
    Refusal,
    desired_state,
    grants_of_groups,
    group_bindings,
    label_selector,
)
from chalicelib.errors import Forbidden, NotFound, PermanentError
from chalicelib.plan import BindingAction, DeleteBinding, Plan, plan_bindings
from chalicelib.ports import ClusterPorts, ClusterRoleReader, Observer
from chalicelib.principals import EveryoneBut, PrincipalScope
from chalicelib.snapshot import IamSnapshot


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    force_deletions: bool = False
    event_id: str | None = None
    own_arns: frozenset[str] = frozenset()  # the service's own mapping: never changed
    reason: str = "full reconcile"
    rebinds: bool = True  # False: a scoped run that cannot change RoleBindings (group membership)


@dataclass(frozen=True)
class ClusterReport:
    cluster: str
    desired: DesiredState
    plan: Plan
    applied: Applied
    backend: str = "configMap"  # configMap (aws-auth) | accessEntries

    @property
    def changed(self) -> bool:
        return self.plan.changed


def reconcile_cluster(
    config: Config,
    ports: ClusterPorts,
    snapshot: IamSnapshot,
    observer: Observer,
    scope: PrincipalScope | None = None,
    options: Options | None = None,
) -> ClusterReport:
    options = options or Options()
    namespaces = ports.bindings.namespaces() if scope is None else None
    desired = desired_state(config, snapshot, namespaces, options.event_id)
    _report_desired(desired, observer)
    identities = identity_backend(config, ports, options, observer)
    identity_scope = _keeping_missing_groups(desired, identities, scope, observer)
    desired = _scoped_bindings(config, desired, ports, scope, options)
    bindings = _plan_bindings(desired, ports, scope, options)
    bindings, refused = _without_unbounded_roles(config, bindings, ports.cluster_roles, observer)
    desired = replace(desired, refusals=desired.refusals + refused)
    plan = Plan(identities.plan(desired.identities, identity_scope), bindings)
    applier = DisplayOnlyApplier() if options.dry_run else Applier(identities, ports.bindings, observer)
    return ClusterReport(ports.name, desired, plan, applier.apply(plan, options.reason), identities.name)


def _keeping_missing_groups(
    desired: DesiredState,
    identities: AwsAuthWriter | AccessEntriesBackend,
    scope: PrincipalScope | None,
    observer: Observer,
) -> PrincipalScope | EveryoneBut | None:
    """A configured group IAM no longer has (renamed, deleted by mistake) must not revoke everyone it
    mapped: its former members are left out of the run until the configuration names the group again."""
    if not desired.missing_groups:
        return scope
    kept = frozenset(name.lower() for name in identities.members_of(desired.missing_groups))
    observer.error(
        "configured IAM groups missing: their members' mappings are kept",
        groups=list(desired.missing_groups),
        kept=len(kept),
    )
    return EveryoneBut(kept) if scope is None else scope.without(kept)


def _scoped_bindings(
    config: Config, desired: DesiredState, ports: ClusterPorts, scope: PrincipalScope | None, options: Options
) -> DesiredState:
    """What a scoped run binds: the namespace grants of every Kubernetes group its principals are
    given (so access is complete the moment an event maps someone, before any full run), and, unless
    only memberships changed, its principals' own tag grants. A full run binds everything."""
    if scope is None:
        return desired
    groups = {group for owned in desired.identities for group in owned.entry.groups}
    grants = grants_of_groups(config, groups)
    selected: dict[int, tuple[str, ...]] = {}
    for index in grants:
        grant = config.namespace_grants[index]
        if grant.namespaces is None and grant.namespace_selector is not None:
            selector = label_selector(grant.namespace_selector)
            selected[index] = () if selector is None else tuple(ports.bindings.namespaces(selector))
    of_groups, refusals = group_bindings(config, grants, selected)
    of_groups = tuple(replace(b, event_id=options.event_id) for b in of_groups)
    theirs = tuple(b for b in desired.bindings if options.rebinds and b.principal is not None and b.principal in scope)
    new_refusals = tuple(r for r in refusals if r not in desired.refusals)
    return replace(desired, bindings=of_groups + theirs, refusals=desired.refusals + new_refusals)


def _plan_bindings(
    desired: DesiredState, ports: ClusterPorts, scope: PrincipalScope | None, options: Options
) -> tuple[BindingAction, ...]:
    """A full run lists every owned binding. A scoped run lists only the bindings of its groups and
    principals, by label (its cost stays bounded by theirs, whatever the cluster holds); it never
    deletes a grant's binding (only a full run sees a rule gone), and a membership event leaves the
    principals' own tag-grant bindings alone (memberships do not change them)."""
    if scope is None:
        return plan_bindings(desired.bindings, ports.bindings.list_owned(), None)
    of_groups = [b for b in desired.bindings if b.group_label]
    labels = {b.group_label for b in of_groups if b.group_label}
    actions = plan_bindings(of_groups, ports.bindings.list_owned_of_groups(labels), ()) if labels else ()
    if options.rebinds:
        theirs = [b for b in desired.bindings if not b.group_label]
        actions += plan_bindings(theirs, ports.bindings.list_owned(scope.labels()), scope)
    return actions


def identity_backend(
    config: Config, ports: ClusterPorts, options: Options, observer: Observer
) -> AwsAuthWriter | AccessEntriesBackend:
    """The one way to build a cluster's identity backend: break-glass and the caller's own ARNs are
    protected, and so is the role the service reaches this cluster as (a cluster in another account)."""
    policy = guardrail_policy(config, options, ports.caller_arn)
    if choose_backend(config.cluster(ports.name), ports.authentication_mode) == "configMap":
        return aws_auth_writer(config, ports, policy, observer)
    if ports.access_entries is None:
        raise PermanentError(f"cluster {ports.name}: the EKS access-entry API is not reachable from here")
    return AccessEntriesBackend(ports.access_entries, observer, policy)


def aws_auth_writer(config: Config, ports: ClusterPorts, policy: Policy, observer: Observer) -> AwsAuthWriter:
    return AwsAuthWriter(ports.config_maps, observer, policy, WriterSettings(backups=config.aws_auth.backups))


def guardrail_policy(config: Config, options: Options, caller_arn: str | None = None) -> Policy:
    """What a cluster's writes must never change: break-glass ARNs, the service's own ARNs and
    ``caller_arn``, whom that cluster sees as the service (``ClusterPorts.caller_arn``)."""
    callers = (*options.own_arns, *((caller_arn,) if caller_arn else ()))
    return Policy(
        protected_arns=frozenset(a.lower() for a in (*config.aws_auth.break_glass_arns, *callers)),
        max_deletion_share=config.aws_auth.max_deletion_share,
        force_deletions=options.force_deletions,
    )


def choose_backend(cluster: Cluster, mode: str | None) -> Literal["configMap", "accessEntries"]:
    """``auto`` follows the authentication mode; an explicit choice the cluster cannot honour is an error."""
    if cluster.backend == "auto":
        return "accessEntries" if mode in ("API", "API_AND_CONFIG_MAP") else "configMap"
    if cluster.backend == "configMap" and mode == "API":
        raise PermanentError(
            f"cluster {cluster.name} authenticates with access entries only (mode API): EKS ignores aws-auth; "
            "set backend: accessEntries (or auto)"
        )
    if cluster.backend == "accessEntries" and mode == "CONFIG_MAP":
        raise PermanentError(
            f"cluster {cluster.name} is in CONFIG_MAP mode, which has no access entries; switch it with "
            f"`aws eks update-cluster-config --name {cluster.name} --region {cluster.region} "
            "--access-config authenticationMode=API_AND_CONFIG_MAP` (one-way), or set backend: configMap"
        )
    return cluster.backend


def _without_unbounded_roles(
    config: Config, actions: tuple[BindingAction, ...], cluster_roles: ClusterRoleReader, observer: Observer
) -> tuple[tuple[BindingAction, ...], tuple[Refusal, ...]]:
    """Defence in depth: a binding that would grant a ClusterRole whose rules hold '*' (read live, as a
    role can change after the configuration was validated) is refused unless the role is allowed."""
    roles = {a.desired.cluster_role for a in actions if not isinstance(a, DeleteBinding)}
    unbounded = set()
    for role in sorted(roles - set(config.allow_privileged_cluster_roles)):
        try:
            if grants_everything(cluster_roles.rules(role)):
                unbounded.add(role)
        except NotFound:
            continue  # RBAC allows binding a role that does not exist yet; it grants nothing until it does
        except Forbidden:
            continue  # not in the service's RBAC (rbac.yaml): the API server refuses to bind it anyway
    kept, refused = [], []
    for action in actions:
        if isinstance(action, DeleteBinding) or action.desired.cluster_role not in unbounded:
            kept.append(action)
            continue
        role = action.desired.cluster_role
        message = f"ClusterRole {role!r} grants '*': name it in allowPrivilegedClusterRoles to grant it"
        refused.append(Refusal(action.desired.source, role, "privileged-cluster-role", message))
        observer.error("grant refused", subject=role, reason="privileged-cluster-role", detail=message)
        observer.count("Refusals", reason="privileged-cluster-role")
    return tuple(kept), tuple(refused)


def _report_desired(desired: DesiredState, observer: Observer) -> None:
    for refusal in desired.refusals:
        observer.warning(
            "grant refused",
            principal=refusal.principal,
            subject=refusal.subject,
            reason=refusal.reason,
            detail=refusal.message,
        )
        observer.count("Refusals", reason=refusal.reason)
    for skipped in desired.skipped:
        observer.warning("binding skipped", detail=skipped)
