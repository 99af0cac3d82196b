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
    SYSTEM_NAMESPACES,
    AccessPolicyRule,
    Config,
    NamespaceGrant,
    NamespaceSelector,
    PermissionSetIdentity,
    RoleIdentity,
    generated_username,
    username_problem,
)
from chalicelib.engine.policies import GrantRefusal, Live, policy_bindings, rule_grants, selects
from chalicelib.engine.sso import kept_groups, sso_bindings
from chalicelib.engine.tags import allowed_cluster_role, tag_grants
from chalicelib.model import arns
from chalicelib.model.bindings import DesiredBinding, binding_name
from chalicelib.model.identities import (
    MAP_ROLES,
    MAP_USERS,
    Entry,
    OwnedEntry,
    PolicyGrant,
    merged_grants,
)
from chalicelib.model.snapshot import IamRole, IamSnapshot, IamUser
from chalicelib.model.sources import Source
from chalicelib.model.sso import SsoSnapshot

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
    # aws-auth clusters only (EKS cannot associate access policies there): the identities' access
    # policies as RoleBindings of their RBAC equivalents, and what cannot be granted that way.
    policy_bindings: tuple[DesiredBinding, ...] = ()
    policy_refusals: tuple[Refusal, ...] = ()
    # GROUP_LABEL values of Identity Center groups whose read failed: their bindings are left as they are.
    kept: frozenset[str] = frozenset()
    sso_read: bool = False  # False: Identity Center is granted but was not read (its bindings are left as they are)

    def for_aws_auth(self) -> DesiredState:
        """The state an aws-auth cluster applies: access policies through their RBAC equivalents."""
        bindings = _dedupe([*self.bindings, *self.policy_bindings])
        return replace(self, bindings=tuple(bindings), refusals=self.refusals + self.policy_refusals)


def desired_state(
    config: Config,
    snapshot: IamSnapshot,
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    event_id: str | None = None,
    policy_namespaces: Live | None = None,
    sso: SsoSnapshot | None = None,
) -> DesiredState:
    """``policy_namespaces``: the live namespaces for access-policy selectors and wildcards when
    ``namespaces`` is None (a scoped run; ``policies.needs_namespaces`` says when they are needed).
    ``sso``: the Identity Center groups as read, for a full run (an event's are planned apart)."""
    live = namespaces if namespaces is not None else policy_namespaces
    entries: list[OwnedEntry] = []
    bindings: list[DesiredBinding] = []
    refusals: list[Refusal] = []
    for user in snapshot.users:
        entry, granted, refused = _user(config, user, live)
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
        entry, granted, refused = _role(config, role, live)
        entries += entry
        bindings += granted
        refusals += refused
    rule_bindings, rule_refusals, skipped = _rule_bindings(config, namespaces)
    if sso is not None:
        sso_granted, sso_refused, sso_skipped = sso_bindings(config, sso, namespaces)
        bindings += sso_granted
        refusals += [Refusal(r.principal, r.subject, r.reason, r.message) for r in sso_refused]
        skipped += sso_skipped
    missing = _missing_groups(config, snapshot)
    refusals += [
        Refusal(
            Source.group(group).render(),
            group,
            "configured-group-missing",
            f"IAM has no group {group!r} (renamed or deleted?): its members keep their mappings until the "
            "configuration names the group as it is now",
        )
        for group in missing
    ]
    bindings = _dedupe(rule_bindings + bindings)
    equivalents, not_equivalent = policy_bindings(entries, live)
    if event_id:
        bindings = [replace(b, event_id=event_id) for b in bindings]
        equivalents = [replace(b, event_id=event_id) for b in equivalents]
    return DesiredState(
        tuple(entries),
        tuple(bindings),
        tuple(refusals + rule_refusals),
        tuple(skipped),
        tuple(missing),
        tuple(equivalents),
        tuple(Refusal(*r) for r in not_equivalent),
        kept_groups(sso),
        # Nothing to read when nothing is granted: an Identity Center binding then is no longer desired.
        sso is not None or not (config.identity_center and config.identity_center.group_grants),
    )


def _missing_groups(config: Config, snapshot: IamSnapshot) -> list[str]:
    if snapshot.groups is None:
        return []
    return [g.iam_group for g in config.identities.groups if g.iam_group.lower() not in snapshot.groups]


def _user(
    config: Config, user: IamUser, live: Live | None
) -> tuple[list[OwnedEntry], list[DesiredBinding], list[Refusal]]:
    wanted = {arns.fold(g.iam_group): g for g in config.identities.groups}
    matched = [wanted[arns.fold(g)] for g in user.groups if arns.fold(g) in wanted]
    groups = tuple(sorted({k for g in matched for k in g.kubernetes_groups}))
    # Anyone who may create users and add them to a configured group chooses the name: under the
    # service's prefix it can never be a subject someone else bound (User ops-admin -> cluster-admin).
    username = generated_username(config.identities.username_prefix, "user", user.name)
    granted, tagged, tag_refused = tag_grants(config, user.tags, user.arn, username)
    refused = [Refusal(*r) for r in tag_refused]
    if not matched and not granted and not tagged:
        return [], [], refused
    rules = [(Source.group(g.iam_group).render(), g.access_policies) for g in matched]
    policies, policy_refused = _policies(rules, live)
    sources = (*(Source.group(g.iam_group) for g in matched), *((Source.tag_grants(),) if granted or tagged else ()))
    entry = OwnedEntry(
        MAP_USERS,
        Entry(user.arn, username, groups),
        sources,
        user.arn,
        user.id,
        merged_grants(policies + tagged),
    )
    return [entry], granted, refused + policy_refused


def _policies(
    rules: list[tuple[str, tuple[AccessPolicyRule, ...]]], live: Live | None
) -> tuple[list[PolicyGrant], list[Refusal]]:
    grants: list[PolicyGrant] = []
    refusals: list[GrantRefusal] = []
    for source, found in rules:
        made, refused = rule_grants(found, source, live)
        grants += made
        refusals += refused
    return grants, [Refusal(*r) for r in refusals]


def _role(
    config: Config, role: IamRole, live: Live | None
) -> tuple[list[OwnedEntry], list[DesiredBinding], list[Refusal]]:
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
    granted, tagged, tag_refused = tag_grants(config, role.tags, role.arn, username)
    refused = [Refusal(*r) for r in tag_refused]
    if configured is None and not granted and not tagged:
        return [], [], refused
    groups = tuple(sorted(set(configured.kubernetes_groups))) if configured else ()
    rules = [(configured_source(configured).render(), configured.access_policies)] if configured else []
    policies, policy_refused = _policies(rules, live)
    tag_source = (Source.tag_grants(),) if granted or tagged else ()
    sources = (*((configured_source(configured),) if configured else ()), *tag_source)
    entry = OwnedEntry(
        MAP_ROLES,
        Entry(role.unpathed_arn, username, groups),
        sources,
        role.arn,
        role.id,
        merged_grants(policies + tagged),
    )
    return [entry], granted, refused + policy_refused


def _configured_role(config: Config, role: IamRole) -> RoleIdentity | PermissionSetIdentity | None:
    """A role configured by name, else the permission set whose Identity Center role it is."""
    named = next((r for r in config.identities.roles if arns.fold(r.iam_role) == arns.fold(role.name)), None)
    if named is not None:
        return named
    parsed = arns.parse(role.arn)
    permission_set = arns.permission_set_of(role.name, parsed.path if parsed else None)
    return next((p for p in config.identities.permission_sets if p.name == permission_set), None)


def configured_source(identity: RoleIdentity | PermissionSetIdentity) -> Source:
    if isinstance(identity, PermissionSetIdentity):
        return Source.permission_set(identity.name)
    return Source.role(identity.iam_role)


def _role_is_wanted(config: Config, role: IamRole) -> bool:
    prefix = config.tag_grants.tag_prefix
    return _configured_role(config, role) is not None or any(k.startswith(prefix) for k in role.tags)


def _roles_sharing_a_name(roles: Iterable[IamRole]) -> set[str]:
    seen: dict[str, int] = {}
    for role in roles:
        seen[role.unpathed_arn.lower()] = seen.get(role.unpathed_arn.lower(), 0) + 1
    return {arn for arn, count in seen.items() if count > 1}


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
    grant, source = config.namespace_grants[index], Source.namespace_grant(index).render()
    if not allowed_cluster_role(config, grant.cluster_role):
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
            bindings.append(_rule_binding(grant, namespace, index))
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


def _rule_binding(grant: NamespaceGrant, namespace: str, index: int) -> DesiredBinding:
    return DesiredBinding(
        namespace=namespace,
        name=binding_name("group", grant.kubernetes_group, grant.cluster_role),
        cluster_role=grant.cluster_role,
        subject_kind="Group",
        subject_name=grant.kubernetes_group,
        sources=(Source.namespace_grant(index),),
    )


def _dedupe(bindings: list[DesiredBinding]) -> list[DesiredBinding]:
    """Two sources of the same binding (same namespace and name) become one."""
    merged: dict[tuple[str, str], DesiredBinding] = {}
    for binding in bindings:
        if binding.key in merged:
            first = merged[binding.key]
            merged[binding.key] = replace(first, sources=first.sources + binding.sources)
        else:
            merged[binding.key] = binding
    return list(merged.values())
