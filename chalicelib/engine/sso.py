"""IAM Identity Center group grants: each member of a granted group gets a RoleBinding per namespace
whose subject is the User their permission set's username renders for their session.

``read_identity_center`` reads the granted groups through the ``IdentityStorePort`` (a failed read is
that group's error, never an empty group); the rest is pure: ``sso_bindings`` (desired),
``kept_groups`` (the GROUP_LABEL values whose bindings a failed read keeps) and ``removals`` (what
the deletion breaker counts: people, not bindings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chalicelib.config import (
    SYSTEM_NAMESPACES,
    Config,
    GroupGrant,
    IdentityCenter,
    is_privileged_cluster_role,
    per_person_template_problem,
    session_username,
)
from chalicelib.engine.policies import selects
from chalicelib.errors import SyncError
from chalicelib.model.bindings import DesiredBinding, binding_name
from chalicelib.model.ownership import SSO_USER_KIND, sso_group_label
from chalicelib.model.ports import IdentityStorePort, Observer
from chalicelib.model.sources import Source
from chalicelib.model.sso import SsoGroup, SsoMember, SsoScope, SsoSnapshot

# Refusals that mean the service could not do what the configuration asks: they fail the run (alarm).
UNREAD = "identity-store-unread"
MISSING = "identity-center-group-missing"


@dataclass(frozen=True)
class SsoRefusal:
    """Shaped like desired.Refusal (which desired builds from it): principal, subject, reason, message."""

    principal: str
    subject: str
    reason: str
    message: str


def read_identity_center(
    settings: IdentityCenter, store: IdentityStorePort | SyncError, scope: SsoScope | None, observer: Observer
) -> SsoSnapshot:
    """The granted groups (``scope`` None or every group: all their members; else only whether these
    people are members). Any read that fails marks what it leaves unknown as failed, logged and
    counted; ``store`` may be the error that prevented reaching the store at all."""
    names = settings.groups()
    if isinstance(store, SyncError):
        return _failed(names, store, observer)
    if scope is None or scope.all_groups:
        return SsoSnapshot(tuple(_whole_group(store, name, observer) for name in names))
    return _people(store, names, scope.users, observer)


def _whole_group(store: IdentityStorePort, name: str, observer: Observer) -> SsoGroup:
    try:
        group_id = store.group_id(name)
        if group_id is None:
            return SsoGroup(name)
        members = []
        for user_id in store.member_ids(group_id):
            user_name = store.user_name(user_id)
            if user_name is not None:  # deleted since the membership was listed
                members.append(SsoMember(user_id, user_name))
        return SsoGroup(name, group_id, tuple(sorted(members, key=lambda m: m.user_id)))
    except SyncError as err:
        return _failed([name], err, observer).groups[0]


def _people(store: IdentityStorePort, names: list[str], users: Iterable[str], observer: Observer) -> SsoSnapshot:
    """A person's event: the granted groups' ids, then for each person their name and memberships."""
    wanted = frozenset(users)
    ids: dict[str, str | None] = {}
    try:
        for name in names:
            ids[name] = store.group_id(name)
        found = {gid: name for name, gid in ids.items() if gid is not None}
        members: dict[str, list[SsoMember]] = {name: [] for name in names}
        for user_id in sorted(wanted):
            user_name = store.user_name(user_id)
            if user_name is None or not found:
                continue  # a deleted person is a member of nothing
            for gid in store.member_of(user_id, sorted(found)):
                members[found[gid]].append(SsoMember(user_id, user_name))
    except SyncError as err:
        return SsoSnapshot(_failed(names, err, observer).groups, wanted)
    groups = tuple(SsoGroup(n, ids[n], tuple(members[n]) if ids[n] else ()) for n in names)
    return SsoSnapshot(groups, wanted)


def _failed(names: Iterable[str], err: SyncError, observer: Observer) -> SsoSnapshot:
    names = list(names)
    observer.error(
        "Identity Store read failed: these groups' RoleBindings are kept as they are",
        groups=names,
        detail=str(err)[:500],
        error=type(err).__name__,
    )
    observer.count("IdentityStoreReadFailures", len(names) or 1)
    return SsoSnapshot(tuple(SsoGroup(n, error=f"{type(err).__name__}: {err}") for n in names))


def kept_groups(snapshot: SsoSnapshot | None) -> frozenset[str]:
    """GROUP_LABEL values of the groups whose read failed: their bindings are neither changed nor deleted."""
    return frozenset(sso_group_label(g.name) for g in (snapshot.failed() if snapshot else ()))


def source_of(index: int, grant: GroupGrant) -> str:
    """The binding's source (annotation): the rule, the group and the permission set behind it."""
    return (
        f"identityCenter.groupGrants[{index}] (Identity Center group {grant.group!r}, "
        f"permission set {grant.permission_set})"
    )


def sso_bindings(
    config: Config,
    snapshot: SsoSnapshot,
    namespaces: Mapping[str, Mapping[str, str]] | None,
    selected: Mapping[int, Iterable[str]] | None = None,
) -> tuple[list[DesiredBinding], list[SsoRefusal], list[str]]:
    """Every granted group's members' bindings. ``namespaces`` (a full run) lists the live
    namespaces: a listed one missing is skipped, a selector is evaluated on them; None (an event): a
    selector rule's namespaces are ``selected[index]`` as the API server selected them."""
    settings = config.identity_center
    if settings is None:
        return [], [], []
    bindings: list[DesiredBinding] = []
    refusals = _group_refusals(snapshot)
    skipped: list[str] = []
    for index, grant in enumerate(settings.group_grants):
        group = snapshot.group(grant.group)
        if group is None or not group.read or group.group_id is None:
            continue
        username, refused = _template(config, index, grant)
        if refused is not None:
            refusals.append(refused)
            continue
        targets = _targets(grant, namespaces, (selected or {}).get(index, ()))
        for namespace in targets:
            if namespace in SYSTEM_NAMESPACES and not grant.allow_system_namespaces:
                message = "a system namespace: set allowSystemNamespaces: true on the grant"
                refusals.append(
                    SsoRefusal(source_of(index, grant), f"namespace {namespace}", "system-namespace", message)
                )
            elif namespaces is not None and namespace not in namespaces:
                skipped.append(f"{source_of(index, grant)}: namespace {namespace!r} does not exist yet")
            else:
                bindings += [_binding(index, grant, member, username, namespace) for member in group.members]
    return bindings, refusals, skipped


def _group_refusals(snapshot: SsoSnapshot) -> list[SsoRefusal]:
    refusals = [
        SsoRefusal(
            f"identityCenter group {g.name!r}",
            g.name,
            UNREAD,
            f"the Identity Store could not be read ({g.error}): its members' RoleBindings are kept as they are",
        )
        for g in snapshot.failed()
    ]
    refusals += [
        SsoRefusal(
            f"identityCenter group {g.name!r}",
            g.name,
            MISSING,
            "the Identity Store has no group of this DisplayName (deleted, or renamed: then name it as it is now "
            "in identityCenter.groupGrants[].group): its members' RoleBindings are removed",
        )
        for g in snapshot.missing()
    ]
    return refusals


def _template(config: Config, index: int, grant: GroupGrant) -> tuple[str, SsoRefusal | None]:
    """The permission set's username template; validate refuses what this refuses again at run time."""
    permission_set = next((p for p in config.identities.permission_sets if p.name == grant.permission_set), None)
    if permission_set is None:
        message = f"permission set {grant.permission_set!r} is not in identities.permissionSets"
        return "", SsoRefusal(source_of(index, grant), grant.permission_set, "session-username", message)
    template = permission_set.effective_username
    problem = per_person_template_problem(template)
    if problem is not None:
        return "", SsoRefusal(source_of(index, grant), template, "session-username", problem)
    if (
        is_privileged_cluster_role(grant.cluster_role)
        and grant.cluster_role not in config.allow_privileged_cluster_roles
    ):
        message = "add it to allowPrivilegedClusterRoles"
        return "", SsoRefusal(source_of(index, grant), grant.cluster_role, "privileged-cluster-role", message)
    return template, None


def _targets(grant: GroupGrant, live: Mapping[str, Mapping[str, str]] | None, selected: Iterable[str]) -> list[str]:
    if grant.namespaces is not None:
        return list(grant.namespaces)
    if grant.namespace_selector is None:
        return []
    if live is None:
        return sorted(selected)
    return sorted(name for name, labels in live.items() if selects(grant.namespace_selector, labels))


def _binding(index: int, grant: GroupGrant, member: SsoMember, template: str, namespace: str) -> DesiredBinding:
    username = session_username(template, member.user_name)
    return DesiredBinding(
        namespace=namespace,
        name=binding_name("sso", f"{grant.group}:{username}", grant.cluster_role),
        cluster_role=grant.cluster_role,
        subject_kind="User",
        subject_name=username,
        # Kept as written by model.sources (a kind it does not parse): "; " or ", " inside the
        # parentheses never splits it.
        sources=(Source("unknown", source_of(index, grant)),),
        sso_user=member.user_id,
        sso_group=grant.group,
    )


def removals(desired: Iterable[DesiredBinding], deleted: Iterable[str | None]) -> tuple[int, int]:
    """What the deletion breaker weighs for Identity Center bindings, in people: (people holding
    them after or before the plan, people losing every one). ``deleted`` are the PRINCIPAL_LABEL
    values of the bindings the plan deletes; a rename deletes and creates, so it removes nobody."""
    prefix = f"{SSO_USER_KIND}-"
    staying = {b.principal_label for b in desired if b.sso_user is not None}
    leaving = {label for label in deleted if label and label.startswith(prefix)} - staying
    return len(staying | leaving), len(leaving)
