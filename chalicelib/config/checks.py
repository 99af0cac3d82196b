"""Checks of a configuration that span several keys (duplicates, usernames against the prefix,
tag profiles against the allowlist and system namespaces); each yields (key path, message)."""

from __future__ import annotations

from collections.abc import Iterator

from chalicelib.config.accesspolicies import (
    CATALOGUE,
    CATALOGUE_DATE,
    PRIVILEGED_AT_CLUSTER_SCOPE,
    parse_policy,
    partition_of,
    policy_name,
    wildcard_matches,
)
from chalicelib.config.document import Config
from chalicelib.config.identitycenter import IdentityCenter, per_person_template_problem
from chalicelib.config.schema import (
    SYSTEM_NAMESPACES,
    AccessPolicyRule,
    is_privileged_cluster_role,
)
from chalicelib.config.usernames import username_problem

KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def semantic_problems(config: Config) -> Iterator[tuple[KeyPath, str]]:
    """Checks that span several keys; yields (path, message)."""
    yield from _duplicates(((("clusters", i, "name"), c.name) for i, c in enumerate(config.clusters)), "cluster")
    for index, cluster in enumerate(config.clusters):
        if cluster.external_id is not None and cluster.role_arn is None:
            yield (
                ("clusters", index, "externalId"),
                "externalId is sent when assuming roleArn: give the cluster's roleArn too",
            )
    groups = config.identities.groups
    yield from _duplicates(
        ((("identities", "groups", i, "iamGroup"), g.iam_group) for i, g in enumerate(groups)), "IAM group"
    )
    sets = config.identities.permission_sets
    yield from _duplicates(
        ((("identities", "permissionSets", i, "name"), p.name) for i, p in enumerate(sets)), "permission set"
    )
    roles = config.identities.roles
    yield from _duplicates(
        ((("identities", "roles", i, "iamRole"), r.iam_role.lower()) for i, r in enumerate(roles)),
        "IAM role (role names are compared case-insensitively, as aws-iam-authenticator matches ARNs)",
    )
    allowed = set(config.allow_privileged_cluster_roles)
    for index, grant in enumerate(config.namespace_grants):
        if (grant.namespaces is None) == (grant.namespace_selector is None):
            yield ("namespaceGrants", index), "give exactly one of 'namespaces' or 'namespaceSelector'"
        if is_privileged_cluster_role(grant.cluster_role) and grant.cluster_role not in allowed:
            yield (
                ("namespaceGrants", index, "clusterRole"),
                f"{grant.cluster_role!r} is privileged: name it in allowPrivilegedClusterRoles to grant it",
            )
        for position, namespace in enumerate(grant.namespaces or ()):
            if namespace in SYSTEM_NAMESPACES and not grant.allow_system_namespaces:
                yield (
                    ("namespaceGrants", index, "namespaces", position),
                    f"{namespace!r} is a system namespace: set allowSystemNamespaces: true on this grant to grant it",
                )
    yield from _username_problems(config)
    yield from _profile_problems(config, allowed)
    yield from _access_policy_problems(config)
    if config.identity_center is not None:
        yield from _identity_center_problems(config, config.identity_center, allowed)


def _username_problems(config: Config) -> Iterator[tuple[KeyPath, str]]:
    prefix = config.identities.username_prefix
    for index, role in enumerate(config.identities.roles):
        problem = username_problem(role.username, prefix) if role.username is not None else None
        if problem:
            yield ("identities", "roles", index, "username"), problem
    for index, permission_set in enumerate(config.identities.permission_sets):
        problem = username_problem(permission_set.effective_username, prefix)
        if problem:
            yield ("identities", "permissionSets", index, "username"), problem


def _profile_problems(config: Config, allowed: set[str]) -> Iterator[tuple[KeyPath, str]]:
    settings = config.tag_grants
    by_role: dict[str, str] = {}
    for profile in settings.profiles:
        full = settings.profile(profile)
        if full is None:
            continue
        if (full.cluster_role is None) == (full.access_policy is None):
            yield ("tagGrants", "profiles", profile), "give exactly one of 'clusterRole' or 'accessPolicy'"
            continue
        if full.access_policy is not None:
            yield from _profile_policy_problems(config, profile, full.access_policy, full.allow_system_namespaces)
            continue
        role = full.cluster_role or ""
        if is_privileged_cluster_role(role) and full.allow_system_namespaces:
            # Whoever may tag a principal would hold kube-system's secrets and service accounts: a grant
            # like that belongs in namespaceGrants, reviewed with the configuration, not in a tag.
            yield (
                ("tagGrants", "profiles", profile, "allowSystemNamespaces"),
                f"{role!r} is privileged: a tag never grants it in a system namespace, allowPrivilegedClusterRoles "
                "or not (grant it through namespaceGrants with allowSystemNamespaces)",
            )
        elif is_privileged_cluster_role(role) and role not in allowed:
            yield (
                ("tagGrants", "profiles", profile),
                f"{role!r} is privileged: name it in allowPrivilegedClusterRoles to let a tag grant it",
            )
        reachable = SYSTEM_NAMESPACES - set(settings.denied_namespaces)
        if full.allow_system_namespaces and not reachable:
            yield (
                ("tagGrants", "profiles", profile, "allowSystemNamespaces"),
                "every system namespace is in tagGrants.deniedNamespaces, so this opt-in grants nothing: "
                "take the namespace out of deniedNamespaces or drop allowSystemNamespaces",
            )
        if role in by_role:
            yield (
                ("tagGrants", "profiles", profile),
                f"ClusterRole {role!r} is already named by profile {by_role[role]!r}; one profile per ClusterRole",
            )
        by_role.setdefault(role, profile)


def _access_policy_problems(config: Config) -> Iterator[tuple[KeyPath, str]]:
    ids = config.identities
    kinds: list[tuple[str, tuple[tuple[AccessPolicyRule, ...], ...]]] = [
        ("groups", tuple(g.access_policies for g in ids.groups)),
        ("roles", tuple(r.access_policies for r in ids.roles)),
        ("permissionSets", tuple(p.access_policies for p in ids.permission_sets)),
    ]
    for kind, rules_of in kinds:
        for index, rules in enumerate(rules_of):
            for position, rule in enumerate(rules):
                yield from _rule_problems(config, ("identities", kind, index, "accessPolicies", position), rule)
    for position, value in enumerate(config.allow_privileged_access_policies):
        yield from _policy_name_problems(config, ("allowPrivilegedAccessPolicies", position), value)


def _rule_problems(config: Config, path: KeyPath, rule: AccessPolicyRule) -> Iterator[tuple[KeyPath, str]]:
    if rule.namespaces is not None and rule.namespace_selector is not None:
        yield path, "give at most one of 'namespaces' or 'namespaceSelector' (neither: cluster scope)"
    if rule.namespaces == ():
        yield (*path, "namespaces"), "give at least one namespace, or leave 'namespaces' out for cluster scope"
    yield from _policy_name_problems(config, (*path, "policy"), rule.policy)
    if rule.name in CATALOGUE and not config.policy_allowed(rule.name, rule.cluster_scope):
        scope = "at cluster scope " if rule.cluster_scope and rule.name in PRIVILEGED_AT_CLUSTER_SCOPE else ""
        yield (
            (*path, "policy"),
            f"{rule.name!r} {scope}is privileged: name it in allowPrivilegedAccessPolicies to grant it"
            + (", or scope it to namespaces" if rule.cluster_scope and config.policy_allowed(rule.name, False) else ""),
        )
    for position, namespace in enumerate(rule.namespaces or ()):
        covered = sorted(s for s in SYSTEM_NAMESPACES if wildcard_matches(namespace, s))
        if covered and not rule.allow_system_namespaces:
            yield (
                (*path, "namespaces", position),
                f"{namespace!r} covers the system namespace {covered[0]!r}: set allowSystemNamespaces: true on this "
                "rule to grant it",
            )


def _profile_policy_problems(config: Config, profile: str, policy: str, system: bool) -> Iterator[tuple[KeyPath, str]]:
    path: KeyPath = ("tagGrants", "profiles", profile, "accessPolicy")
    yield from _policy_name_problems(config, path, policy)
    name = policy_name(policy)
    if name in CATALOGUE and not config.policy_allowed(name, False):
        yield path, f"{name!r} is privileged: name it in allowPrivilegedAccessPolicies to let a tag grant it"
    elif system and name in PRIVILEGED_AT_CLUSTER_SCOPE:
        yield (
            ("tagGrants", "profiles", profile, "allowSystemNamespaces"),
            f"{name!r} grants write access: a tag never grants it in a system namespace",
        )


def _policy_name_problems(config: Config, path: KeyPath, value: str) -> Iterator[tuple[KeyPath, str]]:
    parsed = parse_policy(value)
    if parsed is None:
        return
    name, partition = parsed
    if name not in CATALOGUE:
        yield (
            path,
            f"{name!r} is not an EKS access policy (the catalogue of {CATALOGUE_DATE}); "
            "`eks-iam-sync validate --live` compares the catalogue with EKS's ListAccessPolicies",
        )
    partitions = sorted({partition_of(c.region) for c in config.clusters})
    if partition is not None and partition not in partitions:
        yield path, f"{value!r} is in partition {partition!r}; the clusters are in {', '.join(partitions)}"


def _identity_center_problems(
    config: Config, settings: IdentityCenter, allowed: set[str]
) -> Iterator[tuple[KeyPath, str]]:
    """Each group grant against the permission sets, the allowlist and the system namespaces."""
    if settings.external_id is not None and settings.role_arn is None:
        yield ("identityCenter", "externalId"), "externalId is sent when assuming roleArn: give roleArn too"
    sets = {p.name: p for p in config.identities.permission_sets}
    seen: dict[tuple[str, str, str], int] = {}
    for index, grant in enumerate(settings.group_grants):
        path: KeyPath = ("identityCenter", "groupGrants", index)
        if (grant.namespaces is None) == (grant.namespace_selector is None):
            yield path, "give exactly one of 'namespaces' or 'namespaceSelector'"
        permission_set = sets.get(grant.permission_set)
        if permission_set is None:
            yield (
                (*path, "permissionSet"),
                f"permission set {grant.permission_set!r} is not mapped: add it to identities.permissionSets "
                f"(name: {grant.permission_set}) so its sessions are let in with a per-person username",
            )
        elif problem := per_person_template_problem(permission_set.effective_username):
            yield (*path, "permissionSet"), f"permission set {grant.permission_set!r}: {problem}"
        if is_privileged_cluster_role(grant.cluster_role) and grant.cluster_role not in allowed:
            yield (
                (*path, "clusterRole"),
                f"{grant.cluster_role!r} is privileged: name it in allowPrivilegedClusterRoles to grant it",
            )
        for position, namespace in enumerate(grant.namespaces or ()):
            if namespace in SYSTEM_NAMESPACES and not grant.allow_system_namespaces:
                yield (
                    (*path, "namespaces", position),
                    f"{namespace!r} is a system namespace: set allowSystemNamespaces: true on this grant to grant it",
                )
        key = (grant.group, grant.permission_set, grant.cluster_role)
        if key in seen:
            yield (
                path,
                f"duplicate grant of {grant.cluster_role!r} to {grant.group!r} (first at groupGrants[{seen[key]}])",
            )
        seen.setdefault(key, index)


def _duplicates(items: Iterator[tuple[KeyPath, str]], what: str) -> Iterator[tuple[KeyPath, str]]:
    seen: dict[str, KeyPath] = {}
    for path, value in items:
        if value in seen:
            yield path, f"duplicate {what} {value!r} (first at {dotted(seen[value])})"
        seen.setdefault(value, path)
