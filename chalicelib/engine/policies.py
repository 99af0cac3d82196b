"""EKS access policies in desired state. Pure.

- An identity rule's ``accessPolicies`` become ``PolicyGrant``s of the identity: no scope is cluster
  scope; listed namespaces (and declared ``prefix-*`` wildcards) as written; a ``namespaceSelector``
  resolved to the live namespaces it selects (a system one only with ``allowSystemNamespaces``).
- A tag whose profile names an access policy grants it in the tag's namespace.
- On an aws-auth cluster EKS cannot associate policies: each grant becomes its RBAC equivalent
  (View -> view, Edit -> edit, Admin -> admin, AdminView -> the manifest's read-all ClusterRole),
  bound to the principal's username: RoleBindings in the grant's namespaces (a wildcard expanded to
  the live namespaces it covers), a ClusterRoleBinding at cluster scope (a ``DesiredBinding`` without
  a namespace, named and labelled as the RoleBindings). ClusterAdmin, a policy without an equivalent
  and per-session usernames are refused.

Refusals are returned as (principal, subject, reason, message), which ``desired`` turns into its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from chalicelib.config import (
    RBAC_EQUIVALENTS,
    SESSION_TEMPLATES,
    SYSTEM_NAMESPACES,
    AccessPolicyRule,
    Config,
    NamespaceSelector,
    cluster_wide_equivalents,
    wildcard_matches,
)
from chalicelib.model import sources
from chalicelib.model.bindings import DesiredBinding, binding_name
from chalicelib.model.identities import OwnedEntry, PolicyGrant
from chalicelib.model.sources import Source

GrantRefusal = tuple[str, str, str, str]  # principal (or rule), subject, reason, message
Live = Mapping[str, Mapping[str, str]]


def rule_grants(
    rules: Iterable[AccessPolicyRule], source: str, live: Live | None
) -> tuple[list[PolicyGrant], list[GrantRefusal]]:
    """The grants of one identity rule's access policies. ``live``: every namespace and its labels
    (a selector needs them; the caller lists them whenever a rule has one)."""
    grants: list[PolicyGrant] = []
    refusals: list[GrantRefusal] = []
    for rule in rules:
        if rule.namespace_selector is None:
            grants.append(PolicyGrant(rule.name, tuple(sorted(set(rule.namespaces or ()))), source))
            continue
        chosen = selected(rule.namespace_selector, live or {})
        system = sorted(n for n in chosen if n in SYSTEM_NAMESPACES and not rule.allow_system_namespaces)
        refusals += [
            (source, f"{rule.name} namespace {n}", "system-namespace", "set allowSystemNamespaces: true on the rule")
            for n in system
        ]
        names = tuple(n for n in chosen if n not in system)
        if names:
            grants.append(PolicyGrant(rule.name, names, source))
    return grants, refusals


def selected(selector: NamespaceSelector, live: Live) -> tuple[str, ...]:
    return tuple(sorted(name for name, labels in live.items() if selects(selector, labels)))


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


def needs_namespaces(config: Config) -> bool:
    """Whether access policies need the live namespaces even in a scoped run: a rule with a selector,
    or a wildcard (its RBAC equivalent on an aws-auth cluster binds the namespaces it covers)."""
    return any(
        rule.namespace_selector is not None or any(n.endswith("*") for n in rule.namespaces or ())
        for _, rule in config.access_policy_rules()
    )


def binds_cluster_wide(config: Config) -> bool:
    """Whether an aws-auth cluster gets ClusterRoleBindings from this configuration (a rule grants a
    policy with an RBAC equivalent at cluster scope)."""
    return bool(cluster_wide_equivalents(config))


def policy_bindings(
    identities: Iterable[OwnedEntry], live: Live | None
) -> tuple[list[DesiredBinding], list[GrantRefusal]]:
    """On an aws-auth cluster: every identity's access policies as RoleBindings of their RBAC
    equivalents to its username (a wildcard: the ``live`` namespaces it covers), or one
    ClusterRoleBinding at cluster scope."""
    bindings: list[DesiredBinding] = []
    refusals: list[GrantRefusal] = []
    for owned in identities:
        for grant in owned.access_policies:
            made, refused = _equivalent(owned, grant, live)
            bindings += made
            refusals += refused
    return bindings, refusals


def _equivalent(
    owned: OwnedEntry, grant: PolicyGrant, live: Live | None
) -> tuple[list[DesiredBinding], list[GrantRefusal]]:
    role = RBAC_EQUIVALENTS.get(grant.policy)
    username = owned.entry.username
    subject = grant.describe()
    if role is None:
        message = "EKS cannot associate access policies on an aws-auth cluster and it has no RBAC equivalent here"
        return [], [(owned.iam_arn, subject, "access-policy-on-aws-auth", message)]
    if SESSION_TEMPLATES.search(username):
        message = f"the username {username!r} is per session: a RoleBinding or ClusterRoleBinding names one user"
        return [], [(owned.iam_arn, subject, "session-username", message)]
    # Cluster scope: one ClusterRoleBinding (namespace empty) of the same name.
    namespaces = [""] if grant.cluster_scope else _expanded(grant.namespaces, live)
    bindings = [
        DesiredBinding(
            namespace=namespace,
            name=binding_name("policy", username, role),
            cluster_role=role,
            subject_kind="User",
            subject_name=username,
            sources=(Source.access_policy(grant.policy, sources.parse(grant.source)),),
            principal=owned.iam_arn,
        )
        for namespace in namespaces
    ]
    return bindings, []


def _expanded(namespaces: Iterable[str], live: Live | None) -> list[str]:
    found: list[str] = []
    for pattern in namespaces:
        if not pattern.endswith("*"):
            found.append(pattern)
        elif live is not None:
            found += sorted(n for n in live if wildcard_matches(pattern, n))
    return sorted(set(found))
