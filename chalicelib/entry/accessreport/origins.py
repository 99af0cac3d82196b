"""Why a grant exists, as the report says it: for a mapping eks-iam-sync made, the configured rule
(IAM group, role, permission set) or IAM tag behind it; for any other, which mapping it is. Pure."""

from __future__ import annotations

from chalicelib.config import Config
from chalicelib.entry.accessreport.grants import Grant, Mapped
from chalicelib.model import sources


def managed_origin(config: Config, mapping: Mapped, binding: Grant, subject_kind: str, subject: str) -> str:
    """The origin of a grant to ``subject`` (a Kubernetes ``subject_kind``) through ``mapping`` and ``binding``."""
    if not mapping.managed:
        return f"{mapping.label} for {mapping.arn}"
    if subject_kind == "User":
        parsed = sources.parse(binding.source)
        # An access policy's RBAC equivalent (aws-auth): rule -> policy (-> binding -> ClusterRole).
        policies = [f"{sources.render(s.via)} -> access policy {s.name}" for s in parsed if s.kind == "accessPolicy"]
        tags = [f"IAM {s.render()}" for s in parsed if s.kind == "tag"]
        return ", ".join(policies + tags) or f"Kubernetes user {subject}"
    identities = config.identities
    found: list[str] = []
    for source in sources.parse(mapping.source):
        kind, name = source.kind, source.name
        if kind == "group" and any(g.iam_group == name and subject in g.kubernetes_groups for g in identities.groups):
            found.append(f"IAM group {name}")
        elif kind == "role" and any(r.iam_role == name and subject in r.kubernetes_groups for r in identities.roles):
            found.append(f"IAM role {name} (identities.roles)")
        elif kind == "permissionSet" and any(
            p.name == name and subject in p.kubernetes_groups for p in identities.permission_sets
        ):
            found.append(f"permission set {name} (identities.permissionSets)")
    return ", ".join(found) or mapping.source or "eks-iam-sync"
