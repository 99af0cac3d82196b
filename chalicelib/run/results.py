"""Renders the result of a run, once, for every audience: the Lambda's return value and the CLI's
``--output json`` share ``as_json``; the CLI's text and the demo use ``as_text``. Pure."""

from __future__ import annotations

from typing import Any

from chalicelib.engine.desired import Refusal as GrantRefusal
from chalicelib.engine.plan import BindingAction, DeleteBinding
from chalicelib.engine.sso import MISSING, UNREAD
from chalicelib.errors import ManagedByOtherInstance, SyncError, TransientError
from chalicelib.model.bindings import kind_of
from chalicelib.model.identities import Change, Entry, Outcome
from chalicelib.run.identitycenter import SSO_BREAKER
from chalicelib.run.reconcile import ClusterReport

Result = ClusterReport | SyncError
BACKEND_LABELS = {"configMap": "aws-auth", "accessEntries": "access entries"}
# Refused grants that mean the configuration no longer matches IAM (or Identity Center), or that
# what it asks could not be done (an Identity Store read failed, its breaker tripped): failures, so that they alarm.
ALARMING_GRANT_REFUSALS = frozenset({"configured-group-missing", UNREAD, MISSING, SSO_BREAKER})


def succeeded(result: Result) -> bool:
    """The CLI's verdict and the Lambdas' are one: a cluster succeeded when it has no failure."""
    return failure(result) is None


def failure(result: Result) -> str | None:
    """Why a cluster's run did not achieve what it should have, or None when it did."""
    if isinstance(result, SyncError):
        return f"{type(result).__name__}: {result}"
    applied = result.applied
    reasons = [r.render() for r in applied.identities.refusals]
    reasons += [r.render() for r in result.desired.refusals if r.reason in ALARMING_GRANT_REFUSALS]
    reasons += applied.bindings.refused + applied.bindings.failed
    return "; ".join(reasons) if reasons else None


def changed(result: Result) -> bool:
    return isinstance(result, ClusterReport) and result.changed


def as_json(result: Result) -> dict[str, Any]:
    if isinstance(result, SyncError):
        kind = "transient" if isinstance(result, TransientError) else "permanent"
        found = {"status": "failed", "error": str(result), "errorKind": kind, "errorType": type(result).__name__}
        if isinstance(result, ManagedByOtherInstance):
            return {**found, "reason": result.kind, "managedBy": list(result.owners)}
        return found
    outcome, bindings = result.applied.identities, result.applied.bindings
    return {
        "status": "changes" if result.changed else "no-changes",
        "backend": result.backend,
        "identities": outcome_json(outcome),
        "roleBindings": [_binding(a) for a in result.plan.bindings],
        "roleBindingsDone": len(bindings.done),
        "grantRefusals": [refusal_json(r) for r in result.desired.refusals],
        "skipped": list(result.desired.skipped),
        "problems": bindings.problems,
    }


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """An identity step's outcome (a reconcile's, a restore's, a migration's two)."""
    return {
        "status": outcome.status,
        "changes": [_change(c) for c in outcome.changes],
        "conflicts": [c.describe() for c in outcome.conflicts],
        "refusals": [{"reason": r.reason, "message": r.message} for r in outcome.refusals],
        "warnings": list(outcome.warnings),
        **({"backup": outcome.backup_sequence} if outcome.backup_sequence else {}),
    }


def as_text(name: str, result: Result, display_only: bool = False) -> list[str]:
    if isinstance(result, SyncError):
        return [f"cluster {name}: FAILED: {result}"]
    outcome, bindings = result.applied.identities, result.applied.bindings
    lines = [
        f"cluster {name}: " + ("changes" if result.changed else "no changes") + (" (plan)" if display_only else "")
    ]
    lines.append(f"  {BACKEND_LABELS.get(result.backend, result.backend)}: {outcome.status}")
    lines += [f"  {c.describe()}" for c in outcome.changes]
    lines += [f"  {c.describe()}" for c in outcome.conflicts]
    lines += [f"  ! {r.render()}" for r in outcome.refusals]
    lines.append(f"  rolebindings: {len(result.plan.bindings)} change(s)")
    lines += [f"  {a.describe()}" for a in result.plan.bindings]
    lines += [f"  ! {r.render()}" for r in result.desired.refusals]
    lines += [f"  ! skipped: {s}" for s in result.desired.skipped]
    lines += [f"  ! {p}" for p in bindings.problems]
    return lines


def _change(change: Change) -> dict[str, Any]:
    return {
        "action": change.action,
        "key": change.key,
        "arn": change.arn,
        "before": entry_json(change.before),
        "after": entry_json(change.after),
        "source": change.source,
        "text": change.describe(),
    }


def refusal_json(refusal: GrantRefusal) -> dict[str, Any]:
    """A grant the desired state refused (a tag naming a denied namespace, a privileged ClusterRole)."""
    r = refusal
    return {"principal": r.principal, "subject": r.subject, "reason": r.reason, "message": r.message}


def entry_json(entry: Entry | None) -> dict[str, Any] | None:
    return None if entry is None else {"arn": entry.arn, "username": entry.username, "groups": list(entry.groups)}


def _binding(action: BindingAction) -> dict[str, Any]:
    namespace, name = action.key
    found: dict[str, Any] = {
        "action": action.verb,
        "kind": kind_of(namespace),  # a ClusterRoleBinding has no namespace
        "namespace": namespace,
        "name": name,
        "text": action.describe(),
    }
    if isinstance(action, DeleteBinding):
        return {**found, "clusterRole": action.observed.cluster_role, "subject": None, "source": action.observed.source}
    desired = action.desired
    subject = f"{desired.subject_kind}/{desired.subject_name}"
    return {**found, "clusterRole": desired.cluster_role, "subject": subject, "source": desired.source}
