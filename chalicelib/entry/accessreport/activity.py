"""Evidence of use (``report --last-used``): when each principal that has access last used AWS, as
IAM records it, and which of them are dormant: access in place, and no use recorded within the
given number of days. Pure: applied to a built report."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from chalicelib.entry.accessreport.data import ACTIVE, NEVER, REMOVING, AccessReport, Finding, Principal
from chalicelib.model.ports import LastUsed

DEFAULT_DORMANT_DAYS = 90


def in_place(principal: Principal) -> bool:
    return any(status in (ACTIVE, REMOVING) for cell in principal.cells for _, status in cell.roles)


def with_activity(
    report: AccessReport,
    used: Mapping[str, LastUsed],
    errors: Mapping[str, str],
    now: datetime,
    dormant_days: int = DEFAULT_DORMANT_DAYS,
) -> AccessReport:
    """``report`` with each principal's last use (``used`` by ARN) and a finding per dormant one;
    ``errors`` (by ARN): whose record could not be read."""
    since = now - timedelta(days=dormant_days)
    principals = []
    findings = list(report.findings)
    for principal in report.principals:
        record = used.get(principal.arn)
        if record is None:
            principals.append(principal)
            continue
        at = record.at or NEVER
        dormant = in_place(principal) and (record.at is None or datetime.fromisoformat(record.at) < since)
        principals.append(replace(principal, last_used=at, last_used_how=record.how, dormant=dormant))
        if dormant:
            last = f"last used {at} ({record.how})" if record.at else "no use recorded by IAM"
            reach = sum(1 for cell in principal.cells)
            message = f"{principal.name}: {last}; not used in {dormant_days} days, reaches {reach} namespace(s)"
            findings.append(Finding("dormant", "warning", "", "dormant", message, principal.arn))
    for arn, error in sorted(errors.items()):
        findings.append(Finding("incomplete", "error", "", "last-used-unread", f"last use of {arn}: {error}", arn))
    return replace(report, principals=tuple(principals), findings=tuple(findings))
