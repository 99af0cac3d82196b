"""Desired state: (configuration, IAM snapshot, live namespaces) -> owned identities (for aws-auth
or access entries alike), RoleBindings and refusals. Pure.

- A member of configured IAM groups gets one identity (aws-auth's mapUsers): the ARN exactly as IAM
  reports it, the IAM user name as username, the union of the groups' Kubernetes groups (sorted,
  deduplicated).
- A configured IAM role, or an IAM Identity Center role of a configured permission set, gets one
  (mapRoles): aws-auth needs its ARN without the path (STS drops paths), an access entry with it;
  the identity carries both.
- A configured group a full snapshot no longer holds is refused (``configured-group-missing``), so
  that its members are kept, never silently revoked.
- A user or role carrying tag grants gets an entry too, and one RoleBinding per granted namespace
  binding its username to the profile's ClusterRole.
- Each namespaceGrants rule gives one RoleBinding per namespace, listed or selected by labels.
- What must not be granted is refused, with the principal, the tag or rule and the reason; nothing
  is silently dropped. ``namespaces=None`` (a scoped run, namespaces not listed) leaves out the
  selector rules and skips no listed namespace: a missing one is found when the binding is created.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from chalicelib.config import (
    SESSION_TEMPLATES,
    SYSTEM_NAMESPACES,
    Config,
    NamespaceGrant,
    NamespaceSelector,
    PermissionSetIdentity,
    RoleIdentity,
    generated_username,
    is_privileged_cluster_role,
    username_problem,
)
from chalicelib.model import arns
from chalicelib.model.bindings import DesiredBinding, binding_name
from chalicelib.model.identities import MAP_ROLES, MAP_USERS, Entry, OwnedEntry, group_source
from chalicelib.model.snapshot import IamRole, IamSnapshot, IamUser

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Refusal:
    principal: str  # IAM ARN, or the configuration rule
    subject: str  # the tag "key=value", or the rule's ClusterRole
    reason: str  # unknown-profile, denied-namespace, invalid-namespace, privileged-cluster-role, cluster-wide, ...
    message: str

    def render(self) -> str:
        return f"refused ({self.reason}): {self.principal}: {self.subject}: {self.message}"


@dataclass(frozen=True)
class DesiredState:
    identities: tuple[OwnedEntry, ...] = ()  # one per principal, for whichever backend maps it
    bindings: tuple[DesiredBinding, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    skipped: tuple[str, ...] = ()  # bindings left out because their namespace does not exist (yet)
    missing_groups: tuple[str, ...] = ()  # configured IAM groups a full snapshot does not hold


def desired_state(
    config: Config,
    snapshot: IamSnapshot,
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    event_id: str | None = None,
) -> DesiredState:
    entries: list[OwnedEntry] = []
    bindings: list[DesiredBinding] = []
    refusals: list[Refusal] = []
    for user in snapshot.users:
        entry, granted, refused = _user(config, user)
        entries += entry
        bindings += granted
        refusals += refused
    shared = _roles_sharing_a_name(snapshot.roles)
    for role in snapshot.roles:
        if role.unpathed_arn.lower() in shared:
            if _role_is_wanted(config, role):
                message = "another role has the same name; STS drops paths"
                refusals.append(Refusal(role.arn, role.name, "roles-share-a-name", message))
            continue
        entry, granted, refused = _role(config, role)
        entries += entry
        bindings += granted
        refusals += refused
    rule_bindings, rule_refusals, skipped = _rule_bindings(config, namespaces)
    missing = _missing_groups(config, snapshot)
    refusals += [
        Refusal(
            group_source(group),
            group,
            "configured-group-missing",
            f"IAM has no group {group!r} (renamed or deleted?): its members keep their mappings until the "
            "configuration names the group as it is now",
        )
        for group in missing
    ]
    bindings = _dedupe(rule_bindings + bindings)
    if event_id:
        bindings = [replace(b, event_id=event_id) for b in bindings]
    return DesiredState(
        tuple(entries), tuple(bindings), tuple(refusals + rule_refusals), tuple(skipped), tuple(missing)
    )


def _missing_groups(config: Config, snapshot: IamSnapshot) -> list[str]:
    if snapshot.groups is None:
        return []
    return [g.iam_group for g in config.identities.groups if g.iam_group.lower() not in snapshot.groups]


def _user(config: Config, user: IamUser) -> tuple[list[OwnedEntry], list[DesiredBinding], list[Refusal]]:
    wanted = {arns.fold(g.iam_group): g for g in config.identities.groups}
    matched = [wanted[arns.fold(g)] for g in user.groups if arns.fold(g) in wanted]
    groups = tuple(sorted({k for g in matched for k in g.kubernetes_groups}))
    # Anyone who may create users and add them to a configured group chooses the name: under the
    # service's prefix it can never be a subject someone else bound (User ops-admin -> cluster-admin).
    username = generated_username(config.identities.username_prefix, "user", user.name)
    granted, refused = _tag_grants(config, user.tags, user.arn, username)
    if not matched and not granted:
        return [], [], refused
    sources = [group_source(g.iam_group) for g in matched] + (["tagGrants"] if granted else [])
    entry = OwnedEntry(MAP_USERS, Entry(user.arn, username, groups), ", ".join(sources), user.arn, user.id)
    return [entry], granted, refused


def _role(config: Config, role: IamRole) -> tuple[list[OwnedEntry], list[DesiredBinding], list[Refusal]]:
    configured = _configured_role(config, role)
    prefix = config.identities.username_prefix
    explicit = configured.username if isinstance(configured, RoleIdentity) else None
    if isinstance(configured, PermissionSetIdentity):
        explicit = configured.effective_username
    username = explicit or generated_username(prefix, "role", role.name)
    # validate refuses these; a configuration that reached here some other way is refused again.
    problem = username_problem(explicit, prefix) if explicit else None
    if problem:
        return [], [], [Refusal(role.arn, explicit or "", "username-collision", problem)]
    granted, refused = _tag_grants(config, role.tags, role.arn, username)
    if configured is None and not granted:
        return [], [], refused
    groups = tuple(sorted(set(configured.kubernetes_groups))) if configured else ()
    sources = ([configured_source(configured)] if configured else []) + (["tagGrants"] if granted else [])
    entry = OwnedEntry(MAP_ROLES, Entry(role.unpathed_arn, username, groups), ", ".join(sources), role.arn, role.id)
    return [entry], granted, refused


def _configured_role(config: Config, role: IamRole) -> RoleIdentity | PermissionSetIdentity | None:
    """A role configured by name, else the permission set whose Identity Center role it is."""
    named = next((r for r in config.identities.roles if arns.fold(r.iam_role) == arns.fold(role.name)), None)
    if named is not None:
        return named
    parsed = arns.parse(role.arn)
    permission_set = arns.permission_set_of(role.name, parsed.path if parsed else None)
    return next((p for p in config.identities.permission_sets if p.name == permission_set), None)


def configured_source(identity: RoleIdentity | PermissionSetIdentity) -> str:
    if isinstance(identity, PermissionSetIdentity):
        return f"identities.permissionSets[{identity.name}]"
    return f"identities.roles[{identity.iam_role}]"


def _role_is_wanted(config: Config, role: IamRole) -> bool:
    prefix = config.tag_grants.tag_prefix
    return _configured_role(config, role) is not None or any(k.startswith(prefix) for k in role.tags)


def _roles_sharing_a_name(roles: Iterable[IamRole]) -> set[str]:
    seen: dict[str, int] = {}
    for role in roles:
        seen[role.unpathed_arn.lower()] = seen.get(role.unpathed_arn.lower(), 0) + 1
    return {arn for arn, count in seen.items() if count > 1}


def _tag_grants(
    config: Config, tags: Mapping[str, str], principal: str, username: str
) -> tuple[list[DesiredBinding], list[Refusal]]:
    grants, refusals = [], []
    settings = config.tag_grants
    for key, profile in sorted(tags.items()):
        if not key.startswith(settings.tag_prefix):
            continue
        namespace = key[len(settings.tag_prefix) :]
        subject = f"{key}={profile}"
        refused = _tag_refusal(config, namespace, profile, username)
        if refused is not None:
            refusals.append(Refusal(principal, subject, *refused))
            continue
        full = settings.profile(profile)
        assert full is not None  # _tag_refusal refuses an unknown profile
        grants.append(
            DesiredBinding(
                namespace=namespace,
                name=binding_name("tag", username, profile),
                cluster_role=full.cluster_role,
                subject_kind="User",
                subject_name=username,
                source=f"tag {subject}",
                principal=principal,
            )
        )
    return grants, refusals


def _tag_refusal(config: Config, namespace: str, profile: str, username: str) -> tuple[str, str] | None:  # noqa: PLR0911 - one return per reason, in order
    """Why the tag ``<prefix><namespace>=<profile>`` grants nothing (reason, message), or None."""
    settings = config.tag_grants
    full = settings.profile(profile)
    system = namespace in SYSTEM_NAMESPACES
    if namespace in ("", "*") or namespace.startswith("*"):
        return "cluster-wide", "a tag grant is one namespace; cluster-wide grants are never made"
    if len(namespace) > 63 or not _NAMESPACE.match(namespace):
        return "invalid-namespace", f"{namespace!r} is not a valid namespace name"
    if namespace in settings.denied_namespaces:
        return "denied-namespace", f"namespace {namespace!r} is in deniedNamespaces"
    if full is None:
        return "unknown-profile", f"profile {profile!r} is not one of {sorted(settings.profiles)}"
    if system and not full.allow_system_namespaces:
        # A floor under deniedNamespaces: a list customised without kube-system must not open it.
        return "system-namespace", f"a system namespace: profile {profile!r} does not set allowSystemNamespaces"
    if not _allowed(config, full.cluster_role) or (system and is_privileged_cluster_role(full.cluster_role)):
        return "privileged-cluster-role", f"profile {profile!r} names {full.cluster_role!r}"
    if SESSION_TEMPLATES.search(username):
        # A RoleBinding names one user; each session of this role has its own name.
        return "session-username", f"the username {username!r} is per session: grant through kubernetesGroups"
    return None


def _allowed(config: Config, cluster_role: str) -> bool:
    return not is_privileged_cluster_role(cluster_role) or cluster_role in config.allow_privileged_cluster_roles


def _rule_bindings(
    config: Config, namespaces: Mapping[str, Mapping[str, str]] | None
) -> tuple[list[DesiredBinding], list[Refusal], list[str]]:
    bindings: list[DesiredBinding] = []
    refusals: list[Refusal] = []
    skipped: list[str] = []
    for index, grant in enumerate(config.namespace_grants):
        granted, refused, missing = _grant_bindings(config, index, _namespaces_of(grant, namespaces), namespaces)
        bindings += granted
        refusals += refused
        skipped += missing
    return bindings, refusals, skipped


def _grant_bindings(
    config: Config, index: int, targets: Iterable[str], live: Mapping[str, Mapping[str, str]] | None
) -> tuple[list[DesiredBinding], list[Refusal], list[str]]:
    """One namespaceGrants rule in ``targets``: its bindings, refusals and namespaces skipped for not
    existing yet (``live`` None: namespaces not listed, none skipped)."""
    grant, source = config.namespace_grants[index], f"namespaceGrants[{index}]"
    if not _allowed(config, grant.cluster_role):
        message = "add it to allowPrivilegedClusterRoles"
        return [], [Refusal(source, grant.cluster_role, "privileged-cluster-role", message)], []
    bindings, refusals, skipped = [], [], []
    for namespace in targets:
        if namespace in SYSTEM_NAMESPACES and not grant.allow_system_namespaces:
            message = "a system namespace: set allowSystemNamespaces: true on the grant"
            refusals.append(Refusal(source, f"namespace {namespace}", "system-namespace", message))
        elif live is not None and namespace not in live:
            skipped.append(f"{source}: namespace {namespace!r} does not exist yet")
        else:
            bindings.append(_rule_binding(grant, namespace, source))
    return bindings, refusals, skipped


def grants_of_groups(config: Config, groups: Iterable[str]) -> tuple[int, ...]:
    """The indices of the namespaceGrants rules that bind one of these Kubernetes groups."""
    wanted = set(groups)
    return tuple(i for i, grant in enumerate(config.namespace_grants) if grant.kubernetes_group in wanted)


def group_bindings(
    config: Config, grants: Iterable[int], selected: Mapping[int, Iterable[str]]
) -> tuple[tuple[DesiredBinding, ...], tuple[Refusal, ...]]:
    """The bindings of some namespaceGrants rules, for a run that lists no namespaces (an event): a
    rule's listed namespaces as written (a missing one is found when its binding is created), a
    selector rule's as the API server selected them (``selected[index]``)."""
    bindings: list[DesiredBinding] = []
    refusals: list[Refusal] = []
    for index in grants:
        grant = config.namespace_grants[index]
        targets = list(grant.namespaces) if grant.namespaces is not None else sorted(selected.get(index, ()))
        granted, refused, _ = _grant_bindings(config, index, targets, None)
        bindings += granted
        refusals += refused
    return tuple(_dedupe(bindings)), tuple(refusals)


def label_selector(selector: NamespaceSelector) -> str | None:
    """The Kubernetes label selector that selects what ``selects`` does (the API server evaluates it);
    None when it can select nothing (``In`` with no values, which the API server would reject)."""
    terms = [f"{key}={value}" for key, value in sorted(selector.match_labels.items())]
    for expression in selector.match_expressions:
        values = ",".join(sorted(expression.values))
        if expression.operator == "In" and not expression.values:
            return None
        match expression.operator:
            case "In":
                terms.append(f"{expression.key} in ({values})")
            case "NotIn" if expression.values:
                terms.append(f"{expression.key} notin ({values})")
            case "Exists":
                terms.append(expression.key)
            case "DoesNotExist":
                terms.append(f"!{expression.key}")
    return ",".join(terms)


def _namespaces_of(grant: NamespaceGrant, live: Mapping[str, Mapping[str, str]] | None) -> list[str]:
    if grant.namespaces is not None:
        return list(grant.namespaces)
    if live is None or grant.namespace_selector is None:
        return []
    return sorted(name for name, labels in live.items() if selects(grant.namespace_selector, labels))


def selects(selector: NamespaceSelector, labels: Mapping[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.match_labels.items()):
        return False
    for expression in selector.match_expressions:
        present = expression.key in labels
        value = labels.get(expression.key)
        if (
            (expression.operator == "In" and value not in expression.values)
            or (expression.operator == "NotIn" and present and value in expression.values)
            or (expression.operator == "Exists" and not present)
            or (expression.operator == "DoesNotExist" and present)
        ):
            return False
    return True


def _rule_binding(grant: NamespaceGrant, namespace: str, source: str) -> DesiredBinding:
    return DesiredBinding(
        namespace=namespace,
        name=binding_name("group", grant.kubernetes_group, grant.cluster_role),
        cluster_role=grant.cluster_role,
        subject_kind="Group",
        subject_name=grant.kubernetes_group,
        source=source,
    )


def _dedupe(bindings: list[DesiredBinding]) -> list[DesiredBinding]:
    """Two sources of the same binding (same namespace and name) become one."""
    merged: dict[tuple[str, str], DesiredBinding] = {}
    for binding in bindings:
        if binding.key in merged:
            first = merged[binding.key]
            merged[binding.key] = replace(first, source=f"{first.source}; {binding.source}")
        else:
            merged[binding.key] = binding
    return list(merged.values())
