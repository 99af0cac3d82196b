"""``explain``'s mappings rendered, as text and as JSON (``output`` calls these): per principal, how
the cluster maps it, the rule or tag behind it, every binding that applies (a ClusterRoleBinding link
by link: rule -> policy -> ClusterRoleBinding -> ClusterRole) and what its ClusterRole allows, and
access from EKS access policies (rule -> access entry -> policy -> scope)."""

from __future__ import annotations

from typing import Any

from chalicelib.engine.explain import INVISIBLE, PolicyAccess, scope_text
from chalicelib.entry.commands.explain import ClusterExplained, Mapped
from chalicelib.run import results


def _where(cluster: ClusterExplained, mapped: Mapped) -> str:
    return "access entry" if cluster.backend == "accessEntries" else f"aws-auth {mapped.explanation.owned.key}"


def mapped_lines(cluster: ClusterExplained, mapped: Mapped) -> list[str]:
    item = mapped.explanation
    entry = item.owned.entry
    lines = [f"  {item.owned.iam_arn} ({_where(cluster, mapped)}), in place now: {'yes' if item.in_place else 'NO'}"]
    if mapped.also_in_aws_auth is not None and mapped.current is None:
        lines.append("    ! no access entry yet: EKS maps it through its aws-auth entry for now")
    elif mapped.also_in_aws_auth is not None:
        lines.append(
            f"    ! aws-auth maps it too ({mapped.also_in_aws_auth.describe()}); "
            "EKS uses the access entry and ignores that mapping"
        )
    lines += [
        f"    username: {entry.username}",
        f"    kubernetes groups: {', '.join(entry.groups) or '(none)'}",
        f"    because: {item.owned.source}",
    ]
    if not item.grants:
        lines.append("    no RoleBinding applies")
    for grant in item.grants:
        lines.append(f"    + {grant.describe()}")
        lines += [f"        can {rule}" for rule in grant.can]
    lines += _policy_lines(item.policies)
    return lines + [f"    ! {r.render()}" for r in item.refusals]


def _policy_lines(policies: tuple[PolicyAccess, ...]) -> list[str]:
    """rule -> access entry -> policy -> scope, and whether EKS holds it so now."""
    lines = []
    for access in policies:
        grant = access.grant
        now = "yes" if access.in_place else f"NO (now: {access.associated or 'not associated'})"
        lines.append(
            f"    + access policy {grant.policy}, scope {scope_text(grant.namespaces)}: "
            f"{grant.source} -> access entry -> {grant.policy}; associated now: {now}"
        )
    return lines + ([f"      ({INVISIBLE})"] if policies else [])


def mapped_json(cluster: ClusterExplained, mapped: Mapped) -> dict[str, Any]:
    item = mapped.explanation
    return {
        "arn": item.owned.iam_arn,
        "where": _where(cluster, mapped),
        "inPlace": item.in_place,
        "desired": results.entry_json(item.owned.entry),
        "current": results.entry_json(mapped.current),
        "alsoInAwsAuth": results.entry_json(mapped.also_in_aws_auth),
        "because": item.owned.source,
        "grants": [
            {
                "kind": g.binding.kind,
                "name": g.binding.name,
                "namespace": g.binding.namespace,
                "clusterRole": g.binding.cluster_role,
                "via": g.via,
                "can": list(g.can),
            }
            for g in item.grants
        ],
        "grantRefusals": [results.refusal_json(r) for r in item.refusals],
        "accessPolicies": [
            {
                "policy": p.grant.policy,
                "scope": scope_text(p.grant.namespaces),
                "because": p.grant.source,
                "associatedNow": p.associated,
                "inPlace": p.in_place,
                "visibleToRbac": False,
            }
            for p in item.policies
        ],
    }
