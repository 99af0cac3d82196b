"""``explain``'s Identity Center part, rendered: person -> Identity Center group -> permission set ->
role entries -> User RoleBinding -> ClusterRole, as text and as JSON (``output`` calls these)."""

from __future__ import annotations

from typing import Any

from chalicelib.engine.explain import PersonGrant
from chalicelib.entry.commands.explain import ClusterExplained


def person_lines(principal: str, cluster: ClusterExplained) -> list[str]:
    """person -> Identity Center group -> permission set -> role entries -> User RoleBinding -> ClusterRole."""
    lines: list[str] = []
    for person in cluster.people:
        b = person.binding
        lines += [
            f"  {principal} (Identity Center user {person.user_id})",
            f"    -> Identity Center group {person.group!r} ({person.grant})",
            f"    -> permission set {person.permission_set}, signed in as {b.subject_name}",
        ]
        lines += [
            f"    -> role {o.iam_arn} -> {o.entry.username!r}, in place now: "
            f"{'yes' if o.iam_arn in cluster.roles_in_place else 'NO'}"
            for o in person.roles
        ] or ["    -> ! no role of this permission set is mapped (none provisioned yet?)"]
        lines.append(
            f"    -> RoleBinding {b.namespace}/{b.name}: User {b.subject_name} -> ClusterRole {b.cluster_role}"
        )
        lines += [f"        can {rule}" for rule in person.can]
    return lines


def person_json(cluster: ClusterExplained, p: PersonGrant) -> dict[str, Any]:
    placed = cluster.roles_in_place
    roles = [{"arn": o.iam_arn, "username": o.entry.username, "inPlace": o.iam_arn in placed} for o in p.roles]
    binding = {"namespace": p.binding.namespace, "name": p.binding.name, "username": p.binding.subject_name}
    found = {"userId": p.user_id, "group": p.group, "grant": p.grant, "permissionSet": p.permission_set}
    return found | {"roles": roles, "roleBinding": binding, "clusterRole": p.binding.cluster_role, "can": list(p.can)}
