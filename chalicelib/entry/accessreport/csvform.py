"""The report as CSV (``--format csv``): one row per principal, namespace and grant path, for a
spreadsheet or a script. Pure.

Safe to open in a spreadsheet: IAM names, usernames and groups are anyone's text, and a cell starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be read as a formula (OWASP's CSV
injection); such a cell gets a leading ``'``, which spreadsheets show as text and do not display."""

from __future__ import annotations

import csv
import io

from chalicelib.entry.accessreport.data import AccessReport

HEADER = (
    "cluster",
    "namespace",
    "principal",
    "arn",
    "kind",
    "in IAM",
    "status",
    "ClusterRole",
    "grant",
    "binding",
    "granted outside eks-iam-sync",
    "mapping",
    "managed mapping",
    "origin",
    "subject",
    "risk",
    "flags",
    "rules",
    "path",
    "last used",
    "dormant",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA) else value


def render_csv(report: AccessReport) -> str:
    paths = {p.id: p for p in report.paths}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for principal in report.principals:
        for cell in principal.cells:
            column = report.columns[cell.column]
            for path in (paths[i] for i in cell.paths):
                row = (
                    column.cluster,
                    column.namespace,
                    principal.name,
                    principal.arn,
                    principal.kind,
                    "yes" if principal.in_iam else "no",
                    path.status,
                    path.cluster_role,
                    path.kind,
                    path.binding,
                    "yes" if path.foreign else "no",
                    path.mapping,
                    "yes" if path.managed else "no",
                    path.origin,
                    path.subject,
                    path.risk,
                    "; ".join(path.flags),
                    "; ".join(path.rules),
                    path.id,
                    " ".join(filter(None, (principal.last_used, principal.last_used_how))),
                    "yes" if principal.dormant else "",
                )
                writer.writerow([safe(str(v)) for v in row])
    return out.getvalue()
