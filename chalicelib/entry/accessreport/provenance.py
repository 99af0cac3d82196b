"""Where a report's facts came from, so that two reports can be told apart and a reviewer can say
which state of IAM and of each cluster was signed off: the accounts, when IAM was read and a digest
of what it said, each cluster's resourceVersions and digests of its binding lists, access entries and
their policies; and a digest of the report's own model. Pure.

Digests are SHA-256 of canonical JSON (keys sorted, no spaces), so the same state read twice gives
the same digest whatever order the APIs listed it in."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.model import arns
from chalicelib.model.ports import AssociatedPolicy, ObservedAccessEntry, ObservedConfigMap, RbacBinding, RbacSnapshot
from chalicelib.model.snapshot import IamSnapshot

MODEL_DIGEST_KEY = "modelSha256"


def digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def iam_digest(snapshot: IamSnapshot) -> str:
    users = sorted([u.arn, u.id, sorted(u.groups), dict(u.tags)] for u in snapshot.users)
    roles = sorted([r.arn, r.id, dict(r.tags)] for r in snapshot.roles)
    return digest({"users": users, "roles": roles})


def accounts(snapshot: IamSnapshot, read_by: str) -> tuple[str, ...]:
    """The AWS accounts of the principals IAM listed, and of whoever read it."""
    found = {
        p.account
        for arn in (*(u.arn for u in snapshot.users), *(r.arn for r in snapshot.roles), read_by)
        if (p := arns.parse(arn))
    }
    return tuple(sorted(a for a in found if a))


def _bindings(bindings: Iterable[RbacBinding]) -> str:
    return digest(sorted([b.namespace, b.name, b.role_kind, b.role_name, sorted(b.subjects)] for b in bindings))


def cluster(
    aws_auth: ObservedConfigMap | None,
    rbac: RbacSnapshot | None,
    entries: Iterable[ObservedAccessEntry] | None,
    policies: Mapping[str, tuple[AssociatedPolicy, ...]],
) -> tuple[tuple[str, str], ...]:
    """(what, value) of one cluster as read."""
    found: list[tuple[str, str]] = []
    if aws_auth is not None:
        found.append(("aws-auth resourceVersion", aws_auth.resource_version))
        found.append(("aws-auth sha256", digest({"data": aws_auth.data, "annotations": aws_auth.annotations})))
    if rbac is not None:
        found += [(f"{kind} resourceVersion", version) for kind, version in sorted(rbac.resource_versions.items())]
        found.append(("RoleBindings sha256", _bindings(rbac.role_bindings)))
        found.append(("ClusterRoleBindings sha256", _bindings(rbac.cluster_role_bindings)))
        roles = sorted([r.namespace, r.name, sorted(map(repr, r.rules))] for r in (*rbac.roles, *rbac.cluster_roles))
        found.append(("Roles and ClusterRoles sha256", digest(roles)))
    if entries is not None:
        listed = sorted(
            [e.principal_arn, e.username, sorted(e.kubernetes_groups), e.type, dict(e.tags)] for e in entries
        )
        found.append(("access entries sha256", digest(listed)))
        attached = {
            arn: sorted([p.policy_arn, p.scope, list(p.namespaces)] for p in found_) for arn, found_ in policies.items()
        }
        found.append(("access policies sha256", digest(attached)))
    return tuple(found)


def model_digest(document: Mapping[str, Any]) -> str:
    """SHA-256 of the model (``--format json``) without this digest itself, as canonical JSON: keys
    sorted, separators ``,`` and ``:``, UTF-8 (Python: ``json.dumps(d, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)``)."""
    return digest({k: v for k, v in document.items() if k != MODEL_DIGEST_KEY})
