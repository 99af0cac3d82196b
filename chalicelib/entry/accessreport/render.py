"""Renders an ``AccessReport``: one self-contained HTML page (Jinja2, autoescaped; CSS and JS inline,
no network: its Content-Security-Policy allows no request and only its own script, by hash) or the
model as JSON. Pure.

Everything is rendered here except the matrix's rows: with 5 000 principals and dozens of namespaces
a server-rendered table would be mostly empty cells (several MB), so the rows travel as compact JSON
(only the cells that hold access, ClusterRole names interned, the account's ARN prefix once) that the
page's script turns into the table's rows, with text nodes only. The grant paths, the ClusterRoles'
rules, the findings and every header are plain HTML, readable and printable as they are.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from chalicelib.entry.accessreport import diff as report_diff
from chalicelib.entry.accessreport import rbac
from chalicelib.entry.accessreport.data import (
    ACCESS_ENTRY,
    AWS_AUTH,
    FINDING_KINDS,
    KINDS,
    NOT_MANAGED,
    SEVERITIES,
    AccessReport,
    Finding,
)
from chalicelib.entry.accessreport.jsonform import as_json
from chalicelib.entry.accessreport.provenance import MODEL_DIGEST_KEY

MAX_RISKY_NAMED = 50  # in the summary shown when scripts are off
MAX_FINDINGS_SHOWN = 500  # per kind in the page; the JSON (--format json) holds every one
STATUS_CODES = {"active": "a", "pending": "p", "removing": "r", "ineffective": "i"}
KIND_CODES = {"user": "u", "role": "r", "permission set": "s", "other": "o"}
MECHANISM_CODES = {AWS_AUTH: "a", ACCESS_ENTRY: "e", NOT_MANAGED: "f"}
RISK_CODES = {"critical": "c", "high": "h", "low": "l", "none": ""}
MECHANISM_LABELS = {
    AWS_AUTH: "aws-auth (eks-iam-sync)",
    ACCESS_ENTRY: "access entry (eks-iam-sync)",
    NOT_MANAGED: "not managed by eks-iam-sync",
}

_environment = Environment(
    loader=PackageLoader("chalicelib.entry.accessreport", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)
# tojson: compact (the matrix's rows), in the model's order; it escapes <, >, & and ' for <script>.
_environment.policies["json.dumps_kwargs"] = {"sort_keys": False, "separators": (",", ":")}


@dataclass(frozen=True)
class FindingsView:
    kind: str
    label: str
    total: int
    shown: tuple[Finding, ...]
    severities: tuple[tuple[str, int], ...]


def render_json(report: AccessReport) -> str:
    return json.dumps(as_json(report), indent=2) + "\n"


def render_html(report: AccessReport, previous: Mapping[str, Any] | None = None) -> str:
    """The page; with ``previous`` (an earlier report's JSON) the access added since is marked new."""
    script = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    groups = _groups(report)
    clusters: list[tuple[str, int]] = []
    for column in report.columns:
        if clusters and clusters[-1][0] == column.cluster:
            clusters[-1] = (column.cluster, clusters[-1][1] + 1)
        else:
            clusters.append((column.cluster, 1))
    roles = sorted({(p.cluster, p.cluster_role): p.rules for p in report.paths}.items())
    role_ids = {key: f"r{i + 1}" for i, (key, _) in enumerate(roles)}
    severity = Counter(f.severity for f in report.findings)
    since = report_diff.diff(previous, as_json(report)) if previous is not None else None
    added = {(c.cluster, c.namespace, c.principal) for c in since.changes if c.added} if since else set()
    risky = [p for p in report.principals if p.risk == "critical"]
    return _environment.get_template("report.html.j2").render(
        report=report,
        risky=risky[:MAX_RISKY_NAMED],
        risky_more=max(0, len(risky) - MAX_RISKY_NAMED),
        cluster_wide_counts=Counter(cluster for p in report.principals for cluster in p.cluster_wide),
        model_sha256=as_json(report)[MODEL_DIGEST_KEY],
        meta=report.meta,
        matrix=matrix_data(report, groups, added),
        since=since,
        cluster_spans=clusters,
        groups=groups,
        roles=[(role_ids[key], key[0], key[1], rules) for key, rules in roles],
        role_ids=role_ids,
        findings=_findings(report),
        severity_counts=[(s, severity[s]) for s in SEVERITIES],
        kinds=[k for k in KINDS if any(p.kind == k for p in report.principals)],
        kind_codes=KIND_CODES,
        mechanisms=[(MECHANISM_CODES[m], MECHANISM_LABELS[m]) for m in MECHANISM_CODES],
        status_codes=STATUS_CODES,
        style=Markup(_asset("report.css")),  # our own files: verbatim, and the script hashed as sent
        script=Markup(script),
        csp=csp,
    )


def matrix_data(
    report: AccessReport,
    groups: tuple[tuple[str, str], ...],
    added: Collection[tuple[str, str, str]] = (),
) -> dict[str, Any]:
    """The rows of the matrix, compact: ``prefix`` (the ARN prefix most principals share), ``roles``
    (ClusterRole names), ``flags`` (risk flags), ``allowed`` (the distinct tables of verbs per
    resource, ``[[resource[.group][ names], "verb verb"], ...]``), and per principal ``[name, ARN or
    [ARN without the prefix], kind code, in IAM (1|0), [group option indices], mechanism codes, cells,
    risk code, reaches every namespace of a cluster (1|0), last used ('' not read), dormant (1|0)]``;
    a cell is ``[column, [role index, status code, ...], [path number, ...], [flag index, ...],
    granted outside (1|0), index into allowed, new since the previous report (1|0)]``."""
    prefix = _common_prefix(p.arn for p in report.principals)
    roles = sorted({role for p in report.principals for c in p.cells for role, _ in c.roles})
    role_index = {role: i for i, role in enumerate(roles)}
    group_index = {group: i for i, group in enumerate(groups)}
    flag_index = {flag: i for i, flag in enumerate(rbac.FLAGS)}
    allowed_index: dict[tuple[rbac.Allowed, ...], int] = {}
    rows = []
    for p in report.principals:
        arn: str | list[str] = [p.arn[len(prefix) :]] if prefix and p.arn.startswith(prefix) else p.arn
        indices = [group_index[("IAM group", g)] for g in p.iam_groups]
        indices += [group_index[("Kubernetes group", g)] for g in p.kubernetes_groups]
        cells: list[list[Any]] = []
        for cell in p.cells:
            if cell.allowed not in allowed_index:
                allowed_index[cell.allowed] = len(allowed_index)
            found: list[Any] = [
                cell.column,
                [x for role, status in cell.roles for x in (role_index[role], STATUS_CODES[status])],
                [int(path[1:]) for path in cell.paths],
                [flag_index[f] for f in cell.flags],
                int(cell.foreign),
                allowed_index[cell.allowed],
                int((report.columns[cell.column].cluster, report.columns[cell.column].namespace, p.arn) in added),
            ]
            cells.append(found)
        mechanisms = "".join(MECHANISM_CODES[m] for m in p.mechanisms)
        row = [p.name, arn, KIND_CODES[p.kind], int(p.in_iam), sorted(indices), mechanisms, cells]
        used = f"{p.last_used} ({p.last_used_how})" if p.last_used_how else p.last_used
        rows.append([*row, RISK_CODES[p.risk], int(bool(p.cluster_wide)), used, int(p.dormant)])
    allowed = [[[_resource(g, r, n), " ".join(v)] for g, r, v, n in table] for table in allowed_index]
    return {"prefix": prefix, "roles": roles, "flags": list(rbac.FLAGS), "allowed": allowed, "rows": rows}


def _resource(group: str, resource: str, names: tuple[str, ...]) -> str:
    """``resource.group`` as kubectl names it (core resources without a group), names after a space."""
    return rbac.resource_label(group, resource) + (f" {','.join(names)}" if names else "")


def _common_prefix(principal_arns: Iterable[str]) -> str:
    """``arn:<partition>:iam::<account>:`` of most principals, or empty."""
    counted: Counter[str] = Counter()
    for arn in principal_arns:
        fields = arn.split(":", 5)
        if len(fields) == 6 and fields[0] == "arn" and fields[2] == "iam":
            counted[":".join(fields[:5]) + ":"] += 1
    return counted.most_common(1)[0][0] if counted else ""


def _asset(name: str) -> str:
    return (resources.files("chalicelib.entry.accessreport") / "templates" / name).read_text(encoding="utf-8")


def _groups(report: AccessReport) -> tuple[tuple[str, str], ...]:
    """The group filter's options: (kind, name), IAM groups first."""
    iam = sorted({g for p in report.principals for g in p.iam_groups}, key=str.lower)
    kubernetes = sorted({g for p in report.principals for g in p.kubernetes_groups}, key=str.lower)
    return tuple([("IAM group", g) for g in iam] + [("Kubernetes group", g) for g in kubernetes])


def _findings(report: AccessReport) -> tuple[FindingsView, ...]:
    views = []
    for kind, label in FINDING_KINDS.items():
        found = report.findings_of(kind)
        if not found:
            continue
        counted = Counter(f.severity for f in found)
        severities = tuple((s, counted[s]) for s in SEVERITIES if counted[s])
        views.append(FindingsView(kind, label, len(found), found[:MAX_FINDINGS_SHOWN], severities))
    return tuple(views)
