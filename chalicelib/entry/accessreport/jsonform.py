"""The model as JSON (``--format json``): every field of the report, and its SHA-256. Pure."""

from __future__ import annotations

from typing import Any

from chalicelib.entry.accessreport import provenance
from chalicelib.entry.accessreport.data import (
    SCHEMA,
    AccessReport,
    ClusterSummary,
)


def as_json(report: AccessReport) -> dict[str, Any]:
    """The model; its last key, ``modelSha256``, the SHA-256 of all the others (provenance.model_digest)."""
    document = _document(report)
    document[provenance.MODEL_DIGEST_KEY] = provenance.model_digest(document)
    return document


def _document(report: AccessReport) -> dict[str, Any]:
    meta = report.meta
    columns = report.columns
    return {
        "schema": SCHEMA,
        "generatedAt": meta.generated_at,
        "configuration": {"source": meta.config_source, "sha256": meta.config_sha256},
        "version": meta.version,
        "readBy": meta.read_by,
        "provenance": {
            "accounts": list(report.accounts),
            "iamReadAt": meta.iam_read_at,
            "iamSha256": report.iam_sha256,
            "clusters": {c.name: dict(c.provenance) for c in report.clusters if c.status == "read"},
        },
        "clusters": [_cluster_json(c) for c in report.clusters],
        "namespaces": [{"cluster": c.cluster, "namespace": c.namespace, "principals": c.principals} for c in columns],
        "principals": [
            {
                "arn": p.arn,
                "name": p.name,
                "kind": p.kind,
                "inIam": p.in_iam,
                "iamGroups": list(p.iam_groups),
                "kubernetesGroups": list(p.kubernetes_groups),
                "usernames": list(p.usernames),
                "mechanisms": list(p.mechanisms),
                "clusterWide": list(p.cluster_wide),
                "lastUsed": {"at": p.last_used, "how": p.last_used_how} if p.last_used else None,
                "dormant": p.dormant,
                "risk": p.risk,
                "flags": list(p.flags),
                "access": [
                    {
                        "cluster": columns[cell.column].cluster,
                        "namespace": columns[cell.column].namespace,
                        "status": cell.status,
                        "clusterRoles": [{"name": role, "status": status} for role, status in cell.roles],
                        "paths": list(cell.paths),
                        "flags": list(cell.flags),
                        "grantedOutside": cell.foreign,
                        "allowed": [
                            {"apiGroup": g, "resource": r, "verbs": list(v), "resourceNames": list(n)}
                            for g, r, v, n in cell.allowed
                        ],
                    }
                    for cell in p.cells
                ],
            }
            for p in report.principals
        ],
        "paths": [
            {
                "id": p.id,
                "cluster": p.cluster,
                "namespace": p.namespace,
                "clusterRole": p.cluster_role,
                "status": p.status,
                "mechanism": p.mechanism,
                "mapping": p.mapping,
                "managed": p.managed,
                "origin": p.origin,
                "subject": p.subject,
                "grant": p.kind,
                "roleBinding": p.binding,
                "roleBindingSource": p.binding_source,
                "grantedOutside": p.foreign,
                "rules": list(p.rules),
                "flags": list(p.flags),
                "risk": p.risk,
                "principals": p.principals,
                "chain": [{"step": step, "what": what} for step, what in p.chain],
            }
            for p in report.paths
        ],
        "findings": [
            {
                "kind": f.kind,
                "severity": f.severity,
                "cluster": f.cluster,
                "reason": f.reason,
                "principal": f.principal,
                "message": f.message,
            }
            for f in report.findings
        ],
    }


def _cluster_json(cluster: ClusterSummary) -> dict[str, Any]:
    found: dict[str, Any] = {"name": cluster.name, "region": cluster.region, "status": cluster.status}
    if cluster.status == "failed":
        return {**found, "error": cluster.error}
    return {
        **found,
        "authenticationMode": cluster.authentication_mode,
        "backend": cluster.backend,
        "namespaces": cluster.namespaces,
        "roleBindings": cluster.bindings,
        "mappings": cluster.mappings,
        "drift": cluster.drift,
        "limits": [{"what": m.what, "used": m.used, "limit": m.limit, "unit": m.unit} for m in cluster.measures],
    }
