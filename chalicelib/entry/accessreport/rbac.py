"""What RBAC rules allow, for the access report: whether a cluster-wide grant reaches namespaces, the
rules as text (API group, resource, verbs), their risk flags, and EKS access policies as the
Kubernetes ClusterRoles EKS documents as their equivalents. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from chalicelib.model.ports import RbacRule

# Resources that are not namespaced (kubectl api-resources --namespaced=false on EKS 1.30): a
# ClusterRoleBinding whose rules name only these (or non-resource URLs) reaches no namespace.
CLUSTER_SCOPED = frozenset(
    {
        "apiservices",
        "certificatesigningrequests",
        "clusterrolebindings",
        "clusterroles",
        "componentstatuses",
        "csidrivers",
        "csinodes",
        "customresourcedefinitions",
        "flowschemas",
        "ingressclasses",
        "mutatingwebhookconfigurations",
        "namespaces",
        "nodes",
        "persistentvolumes",
        "priorityclasses",
        "prioritylevelconfigurations",
        "runtimeclasses",
        "selfsubjectaccessreviews",
        "selfsubjectreviews",
        "selfsubjectrulesreviews",
        "storageclasses",
        "subjectaccessreviews",
        "tokenreviews",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "validatingwebhookconfigurations",
        "volumeattachments",
    }
)
READ = frozenset({"get", "list", "watch", "*"})
WRITE = frozenset({"create", "update", "patch", "delete", "deletecollection", "*"})
WORKLOADS = frozenset({"pods", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs"})
RBAC_OBJECTS = frozenset({"roles", "rolebindings", "clusterroles", "clusterrolebindings"})

# Risk flags, most dangerous first; CRITICAL ones let a principal give itself (or anyone) more.
SYSTEM_MASTERS = "system:masters (bypasses RBAC)"
ALL = "* (every verb or resource)"
AWS_AUTH_WRITE = "rewrites aws-auth"
IMPERSONATE, ESCALATE, BIND = "impersonate", "escalate", "bind"
RBAC_WRITE = "writes RBAC"
SECRETS_READ, EXEC, CREATE_PODS = "reads secrets", "pods/exec", "creates pods"
ACCESS_ENTRY_WRITE = "creates access entries"  # the service's IAM policy: not visible in the cluster
FLAGS = (
    SYSTEM_MASTERS,
    ALL,
    AWS_AUTH_WRITE,
    IMPERSONATE,
    ESCALATE,
    BIND,
    ACCESS_ENTRY_WRITE,
    RBAC_WRITE,
    SECRETS_READ,
    EXEC,
    CREATE_PODS,
)
CRITICAL = frozenset({SYSTEM_MASTERS, ALL, AWS_AUTH_WRITE, IMPERSONATE, ESCALATE, BIND})
RISKS = ("critical", "high", "low", "none")


@dataclass(frozen=True)
class AccessPolicy:
    name: str
    equivalent: str  # the Kubernetes ClusterRole EKS documents as equivalent
    summary: str


ACCESS_POLICIES = {
    p.name: p
    for p in (
        AccessPolicy("AmazonEKSClusterAdminPolicy", "cluster-admin", "every verb on every resource"),
        AccessPolicy("AmazonEKSAdminPolicy", "admin", "admin: most resources, RBAC within its scope, secrets"),
        AccessPolicy("AmazonEKSEditPolicy", "edit", "edit: workloads, secrets, exec; no RBAC"),
        AccessPolicy("AmazonEKSAdminViewPolicy", "view", "read everything, secrets included"),
        AccessPolicy("AmazonEKSViewPolicy", "view", "view: read most resources, no secrets"),
    )
}
# When the cluster's own equivalent ClusterRole was not read, these rules stand in for it.
_FALLBACK_RULES = {
    "cluster-admin": (RbacRule(("*",), ("*",), ("*",)), RbacRule(("*",), non_resource_urls=("*",))),
    "admin": (
        RbacRule(("*",), ("", "apps", "batch"), ("pods", "pods/exec", "secrets", "deployments", "jobs")),
        RbacRule(("*",), ("rbac.authorization.k8s.io",), ("roles", "rolebindings")),
    ),
    "edit": (RbacRule(("*",), ("", "apps", "batch"), ("pods", "pods/exec", "secrets", "deployments", "jobs")),),
    "view": (RbacRule(("get", "list", "watch"), ("", "apps", "batch"), ("pods", "deployments", "jobs")),),
}
_ADMIN_VIEW_EXTRA = RbacRule(("get", "list", "watch"), ("",), ("secrets",))


def policy_name(policy_arn: str) -> str:
    return policy_arn.rsplit("/", 1)[-1]


def policy_rules(name: str, cluster_roles: dict[str, tuple[RbacRule, ...]]) -> tuple[RbacRule, ...]:
    """An access policy's rules: those of its equivalent ClusterRole in this cluster (EKS returns none)."""
    policy = ACCESS_POLICIES.get(name)
    if policy is None:
        return ()
    rules = cluster_roles.get(policy.equivalent) or _FALLBACK_RULES[policy.equivalent]
    return (*rules, _ADMIN_VIEW_EXTRA) if name == "AmazonEKSAdminViewPolicy" else rules


def scope_covers(patterns: Iterable[str], namespace: str) -> bool:
    """An access scope's namespaces: exact names, or a prefix ending in ``*``."""
    return any(namespace.startswith(p[:-1]) if p.endswith("*") else namespace == p for p in patterns)


def _base(resource: str) -> str:
    return resource.split("/", 1)[0]


def reaches_namespaces(rules: Iterable[RbacRule]) -> bool:
    """Whether a cluster-wide grant of these rules allows anything inside namespaces."""
    return any(
        r.verbs and any(_base(res) == "*" or _base(res) not in CLUSTER_SCOPED for res in r.resources) for r in rules
    )


def resource_label(group: str, resource: str) -> str:
    """``resource.group`` as kubectl names it; core resources (and ``*`` of every group) without one."""
    return resource if not group or (group == "*" and resource == "*") else f"{resource}.{group}"


def describe(rule: RbacRule) -> str:
    """One line: ``resource.group: verbs`` (core resources without a group), names and URLs as given."""
    if rule.non_resource_urls and not rule.resources:
        text = f"URLs {', '.join(rule.non_resource_urls)}: {', '.join(rule.verbs)}"
    else:
        groups = [g for g in rule.api_groups if g] or [""]
        targets = [resource_label(g, r) for g in groups for r in rule.resources]
        text = f"{', '.join(targets)}: {', '.join(rule.verbs)}"
    return text + (f" (only {', '.join(rule.resource_names)})" if rule.resource_names else "")


def _allows(rule: RbacRule, verbs: frozenset[str], resources: Iterable[str], core: bool = True) -> bool:
    if not verbs.intersection(rule.verbs):
        return False
    if core and rule.api_groups and not {"", "*"}.intersection(rule.api_groups):
        return False
    wanted = set(resources)
    return any(r == "*" or r in wanted for r in rule.resources)


def _writes_aws_auth(rule: RbacRule, namespace: str) -> bool:
    named = not rule.resource_names or "aws-auth" in rule.resource_names
    return (
        namespace in ("", "kube-system")
        and named
        and _allows(rule, frozenset({"update", "patch", "*"}), ("configmaps",))
    )


# (flag, whether a rule raises it in a namespace: '' for cluster-wide, every namespace)
_CHECKS: tuple[tuple[str, Callable[[RbacRule, str], bool]], ...] = (
    (ALL, lambda rule, _: "*" in rule.verbs or "*" in rule.resources),
    (IMPERSONATE, lambda rule, _: "impersonate" in rule.verbs),
    (ESCALATE, lambda rule, _: "escalate" in rule.verbs),
    (BIND, lambda rule, _: "bind" in rule.verbs),
    (RBAC_WRITE, lambda rule, _: _allows(rule, WRITE - {"delete", "deletecollection"}, RBAC_OBJECTS, core=False)),
    (SECRETS_READ, lambda rule, _: _allows(rule, READ, ("secrets",))),
    (EXEC, lambda rule, _: _allows(rule, frozenset({"create", "get", "*"}), ("pods/exec", "pods/attach"))),
    (CREATE_PODS, lambda rule, _: _allows(rule, frozenset({"create", "*"}), WORKLOADS, core=False)),
    (AWS_AUTH_WRITE, _writes_aws_auth),
)


def flags(rules: Iterable[RbacRule], namespace: str) -> tuple[str, ...]:
    """The risk flags of what ``rules`` allow in ``namespace`` ('' for cluster-wide: every namespace)."""
    found = {flag for rule in rules for flag, raised in _CHECKS if raised(rule, namespace)}
    return tuple(f for f in FLAGS if f in found)


def risk(found: Iterable[str]) -> str:
    """critical: can grant itself or anyone more (or bypasses RBAC); high: secrets, exec, workloads,
    RBAC writes; low: anything else."""
    present = set(found)
    if present & CRITICAL:
        return "critical"
    return "high" if present else "low"


# (API group, resource, verbs, resource names): what rules allow inside one namespace
Allowed = tuple[str, str, tuple[str, ...], tuple[str, ...]]


def effective(rules: Iterable[RbacRule]) -> tuple[Allowed, ...]:
    """Verbs per namespaced resource (and API group, and resource names when a rule names some), merged
    over ``rules``: what a cell of the matrix allows. Cluster-scoped resources and URLs are left out
    (a RoleBinding cannot grant them, and a ClusterRoleBinding grants them outside any namespace)."""
    table: dict[tuple[str, str, tuple[str, ...]], set[str]] = {}
    for rule in rules:
        for group in rule.api_groups or ("",):
            for resource in rule.resources:
                if _base(resource) in CLUSTER_SCOPED:
                    continue
                table.setdefault((group, resource, tuple(sorted(rule.resource_names))), set()).update(rule.verbs)
    return tuple(
        (group, resource, ("*",) if "*" in verbs else tuple(sorted(verbs)), names)
        for (group, resource, names), verbs in sorted(table.items())
    )
