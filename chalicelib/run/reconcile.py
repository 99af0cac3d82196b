"""The only module that orders the stages for one cluster:
IAM snapshot -> desired state -> plan (identity step + RoleBinding actions) -> apply (or display).

Everything it reaches goes through ports (``chalicelib.model.ports``), injected by the service layer:
the cluster's stores and the identity backend built for it here. ``scope=None`` is a full reconcile
(namespaces listed, every owned object considered; what its plan would change is re-read from IAM
before writing). A PrincipalScope limits identity writes to those principals' entries and their own
bindings, and completes the namespace grants of the Kubernetes groups they are given (creating what
is missing, deleting nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from chalicelib.config import Cluster, Config, grants_everything, partition_of
from chalicelib.engine.desired import (
    DesiredState,
    Refusal,
    desired_state,
    grants_of_groups,
    group_bindings,
    label_selector,
)
from chalicelib.engine.guardrails import Policy
from chalicelib.engine.plan import BindingAction, DeleteBinding, Plan, plan_bindings
from chalicelib.engine.policies import binds_cluster_wide, needs_namespaces
from chalicelib.errors import Forbidden, NotFound, PermanentError
from chalicelib.model import arns
from chalicelib.model.ownership import DEFAULT_INSTANCE, instance_marker
from chalicelib.model.ports import ClusterPorts, ClusterRoleReader, ObservedBinding, Observer
from chalicelib.model.principals import EveryoneBut, PrincipalScope
from chalicelib.model.snapshot import IamSnapshot
from chalicelib.model.sso import SsoSnapshot
from chalicelib.run.apply import Applied, Applier, DisplayOnlyApplier
from chalicelib.run.identitycenter import kept, sso_breaker, sso_event
from chalicelib.run.instances import OwnBindings, managed_by_others
from chalicelib.run.scope import identity_scope, principals_by_key, reread_scope, touched_principals

if TYPE_CHECKING:
    # Each backend's engine is imported when a cluster needs it (identity_backend): a cold start
    # loads the one its first cluster uses, not both.
    from chalicelib.engine.accessentries.backend import AccessEntriesBackend
    from chalicelib.engine.awsauth.writer import AwsAuthWriter


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    force_deletions: bool = False
    event_id: str | None = None
    own_arns: frozenset[str] = frozenset()  # the service's own mapping: never changed
    reason: str = "full reconcile"
    rebinds: bool = True  # False: a scoped run that cannot change RoleBindings (group membership)
    # A full run's fresh IAM read (a scope: those principals; None: everyone), so that what it is
    # about to change is re-read first and an event handled meanwhile is never undone.
    reread: Callable[[PrincipalScope | None], IamSnapshot] | None = field(default=None, compare=False)
    # How the identity backends wait out their backoff (the Runtime's sleep).
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    # This install (EKS_IAM_SYNC_INSTANCE, read by the entry point that makes the options): it changes
    # only objects marked with its name or with none, and marks what it writes.
    instance: str = DEFAULT_INSTANCE
    # Refuse a cluster another instance's marks show it manages (False: uninstall and the report,
    # which remove only this instance's own objects, or write nothing).
    exclusive: bool = True


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
    sso: SsoSnapshot | None = None,
) -> ClusterReport:
    """``sso``: IAM Identity Center's granted groups as read (None: not read, their bindings left as
    they are); with a ``scope``, an Identity Store event's people or groups, planned apart."""
    options = options or Options()
    namespaces = ports.bindings.namespaces() if scope is None else None
    # Access-policy selectors and wildcards are resolved against the live namespaces in a scoped run too.
    policy_namespaces = ports.bindings.namespaces() if scope is not None and needs_namespaces(config) else None
    identities = identity_backend(config, ports, options, observer)
    full_sso = sso if scope is None else None
    if identities.name == "configMap" and config.access_policy_rules():
        # A membership changes a rule's access policies, whose RBAC equivalents are the principal's own bindings.
        options = replace(options, rebinds=True)

    def desired_from(iam: IamSnapshot) -> DesiredState:
        found = desired_state(config, iam, namespaces, options.event_id, policy_namespaces, full_sso)
        return found.for_aws_auth() if identities.name == "configMap" else found

    desired = desired_from(snapshot)
    identity_scope = _keeping_missing_groups(desired, identities, scope, observer)
    mine = OwnBindings(ports.bindings, options.instance)
    desired, plan = _planned(config, ports, identities, desired, identity_scope, scope, options, mine, observer)
    if scope is None and options.reread is not None and plan.changed:
        fresh = _reread(snapshot, plan, options.reread, observer)
        if fresh is not snapshot:
            desired = desired_from(fresh)
            desired, plan = _planned(config, ports, identities, desired, identity_scope, scope, options, mine, observer)
    if scope is not None and sso is not None:
        desired, plan = sso_event(config, ports, sso, desired, plan, options.event_id, mine)
    claim = managed_by_others(ports.name, options.instance, plan.identities.instances | mine.instances)
    if claim is not None and options.exclusive:
        raise claim  # before any write: nothing of this instance's goes where another's is
    desired, plan = sso_breaker(desired, plan, guardrail_policy(config, options), observer)
    _report_desired(desired, observer)
    bindings, refused = _without_unbounded_roles(config, plan.bindings, ports.cluster_roles, observer)
    desired = replace(desired, refusals=desired.refusals + refused)
    plan = replace(plan, bindings=bindings)
    applier = DisplayOnlyApplier() if options.dry_run else Applier(identities, ports.bindings, observer)
    return ClusterReport(ports.name, desired, plan, applier.apply(plan, options.reason), identities.name)


def _planned(
    config: Config,
    ports: ClusterPorts,
    identities: AwsAuthWriter | AccessEntriesBackend,
    desired: DesiredState,
    identity_scope: PrincipalScope | EveryoneBut | None,
    scope: PrincipalScope | None,
    options: Options,
    mine: OwnBindings,
    observer: Observer,
) -> tuple[DesiredState, Plan]:
    identity_step = identities.plan(desired.identities, identity_scope)
    desired = _scoped_bindings(config, desired, ports, scope, options)
    marker = instance_marker(options.instance)
    desired = replace(desired, bindings=tuple(replace(b, instance=marker) for b in desired.bindings))
    # A scoped run lists the principals' ClusterRoleBindings only where the configuration makes some.
    wide = scope is not None and identities.name == "configMap" and binds_cluster_wide(config)
    actions, refused = mine.claimed(_plan_bindings(desired, mine, scope, options, wide, observer))
    return replace(desired, refusals=desired.refusals + refused), Plan(identity_step, actions)


def _reread(
    snapshot: IamSnapshot,
    plan: Plan,
    reread: Callable[[PrincipalScope | None], IamSnapshot],
    observer: Observer,
) -> IamSnapshot:
    """A full run's snapshot may be minutes old when it reaches a cluster, and an event may have
    revoked (or granted) since: the principals the plan would change are read again, and the plan
    is made from what IAM says now. Level-triggered, so the newest read always wins."""
    touched = touched_principals(plan, snapshot)
    if not touched:
        return snapshot
    keys = frozenset((kind, arns.fold(name)) for kind, name in touched)
    scope = reread_scope(touched)
    fresh = reread(None) if scope is None else _merged(snapshot, reread(scope), keys)
    changed = _differing(snapshot, fresh, keys)
    observer.info("principals re-read before writing", principals=len(touched), changed=len(changed))
    if changed:
        observer.warning(
            "IAM changed since this run's snapshot: planned again from the fresh read",
            principals=sorted(f"{kind} {name}" for kind, name in changed)[:20],
        )
        observer.count("PrincipalsChangedDuringRun", len(changed))
        return fresh
    return snapshot


def _merged(snapshot: IamSnapshot, fresh: IamSnapshot, keys: frozenset[tuple[str, str]]) -> IamSnapshot:
    """``snapshot`` with the principals of ``keys`` as ``fresh`` has them (absent there: deleted since)."""
    users = [u for u in snapshot.users if ("user", arns.fold(u.name)) not in keys] + list(fresh.users)
    roles = [r for r in snapshot.roles if ("role", arns.fold(r.name)) not in keys] + list(fresh.roles)
    return replace(snapshot, users=tuple(users), roles=tuple(roles))


def _differing(before: IamSnapshot, after: IamSnapshot, keys: frozenset[tuple[str, str]]) -> list[tuple[str, str]]:
    old, new = principals_by_key(before), principals_by_key(after)
    return [key for key in sorted(keys) if old.get(key) != new.get(key)]


def _keeping_missing_groups(
    desired: DesiredState,
    identities: AwsAuthWriter | AccessEntriesBackend,
    scope: PrincipalScope | None,
    observer: Observer,
) -> PrincipalScope | EveryoneBut | None:
    """A configured group IAM no longer has (renamed, deleted by mistake) must not revoke everyone it
    mapped: its former members are left out of the run until the configuration names the group again."""
    narrowed, kept = identity_scope(scope, desired.missing_groups, identities.members_of)
    if desired.missing_groups:
        observer.error(
            "configured IAM groups missing: their members' mappings are kept",
            groups=list(desired.missing_groups),
            kept=len(kept),
        )
    return narrowed


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
    desired: DesiredState,
    bindings: OwnBindings,
    scope: PrincipalScope | None,
    options: Options,
    cluster_wide: bool,
    observer: Observer,
) -> tuple[BindingAction, ...]:
    """A full run lists every owned binding. A scoped run lists only the bindings of its groups and
    principals, by label (its cost stays bounded by theirs, whatever the cluster holds), and the
    principals' ClusterRoleBindings only when ``cluster_wide`` (the configuration binds some); it never
    deletes a grant's binding (only a full run sees a rule gone), and a membership event leaves the
    principals' own tag-grant bindings alone (memberships do not change them)."""
    if scope is None:
        observed = [b for b in bindings.list_owned() if not kept(b, desired)]
        observed += _owned_cluster_bindings(desired, bindings, observer)
        return plan_bindings(desired.bindings, observed, None)
    of_groups = [b for b in desired.bindings if b.group_label]
    labels = {b.group_label for b in of_groups if b.group_label}
    actions = plan_bindings(of_groups, bindings.list_owned_of_groups(labels), ()) if labels else ()
    if options.rebinds:
        theirs = [b for b in desired.bindings if not b.group_label]
        observed = bindings.list_owned(scope.labels())
        if cluster_wide:
            observed += bindings.list_owned_cluster(scope.labels())
        actions += plan_bindings(theirs, observed, scope)
    return actions


def _owned_cluster_bindings(desired: DesiredState, bindings: OwnBindings, observer: Observer) -> list[ObservedBinding]:
    """A full run lists the owned ClusterRoleBindings of every cluster, so that those no rule makes any
    more (a rule removed or scoped, a cluster moved to access entries, ``uninstall``) are deleted. The
    service's RBAC grants ClusterRoleBindings only to a configuration that binds some (``rbac``): without
    them, and with none to bind, the run goes on without (a manifest regenerated before a run removed
    them leaves them: docs/backends.md)."""
    try:
        return bindings.list_owned_cluster()
    except Forbidden:
        if any(b.cluster_wide for b in desired.bindings):
            raise
        observer.info("owned clusterrolebindings not listed: the service's RBAC grants none (none is desired)")
        return []


def identity_backend(
    config: Config, ports: ClusterPorts, options: Options, observer: Observer
) -> AwsAuthWriter | AccessEntriesBackend:
    """The one way to build a cluster's identity backend: break-glass and the caller's own ARNs are
    protected, and so is the role the service reaches this cluster as (a cluster in another account)."""
    policy = guardrail_policy(config, options, ports.caller_arn)
    if choose_backend(config.cluster(ports.name), ports.authentication_mode) == "configMap":
        return aws_auth_writer(config, ports, policy, observer, options.sleep)
    if ports.access_entries is None:
        raise PermanentError(f"cluster {ports.name}: the EKS access-entry API is not reachable from here")
    partition = partition_of(config.cluster(ports.name).region)
    from chalicelib.engine.accessentries.backend import AccessEntriesBackend  # noqa: PLC0415 - only where used

    return AccessEntriesBackend(ports.access_entries, observer, policy, sleep=options.sleep, partition=partition)


def aws_auth_writer(
    config: Config,
    ports: ClusterPorts,
    policy: Policy,
    observer: Observer,
    sleep: Callable[[float], None] = time.sleep,
) -> AwsAuthWriter:
    from chalicelib.engine.awsauth.writer import AwsAuthWriter, WriterSettings  # noqa: PLC0415 - only where used

    settings = WriterSettings(backups=config.aws_auth.backups)
    return AwsAuthWriter(ports.config_maps, observer, policy, settings, sleep=sleep)


def guardrail_policy(config: Config, options: Options, caller_arn: str | None = None) -> Policy:
    """What a cluster's writes must never change: break-glass ARNs, the service's own ARNs and
    ``caller_arn``, whom that cluster sees as the service (``ClusterPorts.caller_arn``)."""
    callers = (*options.own_arns, *((caller_arn,) if caller_arn else ()))
    return Policy(
        protected_arns=frozenset(a.lower() for a in (*config.aws_auth.break_glass_arns, *callers)),
        max_deletion_share=config.aws_auth.max_deletion_share,
        force_deletions=options.force_deletions,
        instance=options.instance,
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
    # An access policy's RBAC equivalent (the read-all ClusterRole of AdminView reads '*') was judged as the
    # policy it stands for (allowPrivilegedAccessPolicies); every other binding by its ClusterRole's rules.
    roles = {a.desired.cluster_role for a in actions if not isinstance(a, DeleteBinding) and not _equivalent(a)}
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
        if isinstance(action, DeleteBinding) or _equivalent(action) or action.desired.cluster_role not in unbounded:
            kept.append(action)
            continue
        role = action.desired.cluster_role
        message = f"ClusterRole {role!r} grants '*': name it in allowPrivilegedClusterRoles to grant it"
        refused.append(Refusal(action.desired.source, role, "privileged-cluster-role", message))
        observer.error("grant refused", subject=role, reason="privileged-cluster-role", detail=message)
        observer.count("Refusals", reason="privileged-cluster-role")
    return tuple(kept), tuple(refused)


def _equivalent(action: BindingAction) -> bool:
    """Whether the binding is an access policy's RBAC equivalent (an aws-auth cluster's)."""
    return (
        not isinstance(action, DeleteBinding)
        and action.desired.sources[:1] != ()
        and action.desired.sources[0].kind == "accessPolicy"
    )


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
