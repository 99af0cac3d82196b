"""``eks-iam-sync report diff OLD.json NEW.json``: what changed between two reports (``--format
json``): access added and removed per principal and namespace, and grants made outside eks-iam-sync
that the old report did not have. Pure, over the JSON documents.

Access is what is in place when the report was made: ClusterRoles *active* or *removing* (a
reconcile was about to remove them, but they still worked); *pending* ones did not work yet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SCHEMA_PREFIX = "eks-iam-sync/access-report/"
IN_PLACE = ("active", "removing")

# (cluster, namespace, principal ARN) -> ClusterRoles
_Access = dict[tuple[str, str, str], frozenset[str]]


class NotAReport(ValueError):
    """A document that is not an access report in JSON."""


@dataclass(frozen=True)
class Change:
    cluster: str
    namespace: str
    principal: str  # ARN
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class ReportDiff:
    old: str  # generatedAt of each
    new: str
    changes: tuple[Change, ...]
    new_outside: tuple[str, ...]  # grants outside eks-iam-sync only in the new report, described
    gone_outside: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (self.changes or self.new_outside or self.gone_outside)


def _checked(document: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(document, Mapping) or not str(document.get("schema", "")).startswith(SCHEMA_PREFIX):
        raise NotAReport(f"{name}: not an access report (eks-iam-sync report --format json): no {SCHEMA_PREFIX} schema")
    for key in ("principals", "paths"):
        if not isinstance(document.get(key), list):
            raise NotAReport(f"{name}: not an access report: '{key}' is missing or not a list")
    return document


def _access(document: Mapping[str, Any]) -> _Access:
    found: _Access = {}
    for principal in document["principals"]:
        for cell in principal.get("access", []):
            roles = frozenset(r["name"] for r in cell.get("clusterRoles", []) if r.get("status") in IN_PLACE)
            if roles:
                found[(cell["cluster"], cell["namespace"], principal["arn"])] = roles
    return found


def _outside(document: Mapping[str, Any]) -> set[str]:
    """Grants outside eks-iam-sync, by what they are (not by path id, which is per report)."""
    found = set()
    for p in document["paths"]:
        if p.get("grantedOutside") and p.get("status") in IN_PLACE:
            where = "every namespace" if p["namespace"] == "*" else p["namespace"]
            grant = f"{p.get('grant', 'RoleBinding')} {p['roleBinding']} -> {p['clusterRole']}"
            found.add(f"{p['cluster']} {where}: {grant} for {p['subject']} ({p['mapping']}, {p['origin']})")
    return found


def diff(old: Any, new: Any) -> ReportDiff:
    before, after = _checked(old, "OLD"), _checked(new, "NEW")
    was, now = _access(before), _access(after)
    changes = []
    for key in sorted(was.keys() | now.keys()):
        added = now.get(key, frozenset()) - was.get(key, frozenset())
        removed = was.get(key, frozenset()) - now.get(key, frozenset())
        if added or removed:
            changes.append(Change(*key, tuple(sorted(added)), tuple(sorted(removed))))
    outside_before, outside_after = _outside(before), _outside(after)
    return ReportDiff(
        str(before.get("generatedAt", "")),
        str(after.get("generatedAt", "")),
        tuple(changes),
        tuple(sorted(outside_after - outside_before)),
        tuple(sorted(outside_before - outside_after)),
    )


def as_text(found: ReportDiff) -> list[str]:
    lines = [f"access report {found.old} -> {found.new}: {'no change' if found.empty else 'changes'}"]
    for change in found.changes:
        where = f"{change.cluster}/{change.namespace}"
        lines += [f"  + {where} {change.principal}: {role}" for role in change.added]
        lines += [f"  - {where} {change.principal}: {role}" for role in change.removed]
    lines += [f"  ! new grant outside eks-iam-sync: {text}" for text in found.new_outside]
    lines += [f"  ~ grant outside eks-iam-sync gone: {text}" for text in found.gone_outside]
    return lines


def as_json(found: ReportDiff) -> dict[str, Any]:
    return {
        "old": found.old,
        "new": found.new,
        "changed": not found.empty,
        "access": [
            {
                "cluster": c.cluster,
                "namespace": c.namespace,
                "principal": c.principal,
                "added": list(c.added),
                "removed": list(c.removed),
            }
            for c in found.changes
        ],
        "newGrantsOutside": list(found.new_outside),
        "goneGrantsOutside": list(found.gone_outside),
    }
