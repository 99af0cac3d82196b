"""Renders every command's result, once, as text and as JSON (``--output text|json``). Pure: the
commands return frozen results and print nothing; the CLI writes what this returns.

Text is a list of chunks, each for stdout or stderr and written as it is (a line ends in its
newline), so that a command's verdict stays on stdout and its problems on stderr, in order. JSON is
one document for stdout alone. A reconcile's result (``plan``, ``apply``) renders as the Lambdas'
does (``run.results``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

from chalicelib.entry.accessreport import diff as report_diff
from chalicelib.entry.accessreport.data import FINDING_KINDS
from chalicelib.entry.commands.backups import Backups, ClusterBackups
from chalicelib.entry.commands.common import Declined, Failed
from chalicelib.entry.commands.explain import Explained
from chalicelib.entry.commands.migrate import Migrated
from chalicelib.entry.commands.plan_apply import Reconciled
from chalicelib.entry.commands.rbac import Manifest
from chalicelib.entry.commands.report import Written
from chalicelib.entry.commands.report_diff import Diffed
from chalicelib.entry.commands.restore import Restored
from chalicelib.entry.commands.validate import Validated
from chalicelib.entry.explainoutput import mapped_json, mapped_lines
from chalicelib.entry.ssooutput import person_json, person_lines
from chalicelib.model.identities import Outcome
from chalicelib.run import results

Stream = Literal["out", "err"]
Chunk = tuple[Stream, str]
CommandResult = (
    Validated | Manifest | Reconciled | Explained | Backups | Restored | Migrated | Written | Diffed | Failed | Declined
)


def as_text(result: CommandResult) -> list[Chunk]:
    render: Callable[[Any], list[Chunk]] = _TEXT[type(result)]
    return render(result)


def as_json(result: CommandResult) -> Any:
    render: Callable[[Any], Any] = _JSON[type(result)]
    return render(result)


def out(lines: Iterable[str]) -> list[Chunk]:
    return [("out", f"{line}\n") for line in lines]


def err(lines: Iterable[str]) -> list[Chunk]:
    return [("err", f"{line}\n") for line in lines]


# --- validate, rbac --------------------------------------------------------------------------------


def _validated_text(result: Validated) -> list[Chunk]:
    if result.problems:
        n = len(result.problems)
        verdict = f"{result.source}: invalid ({n} problem{'s' * (n != 1)})"
        return err([*(p.render(result.source) for p in result.problems), verdict])
    chunks = out([f"{result.source}: valid: {result.summary}"])
    if result.deploy is not None:
        problems = result.deploy.problems
        chunks += err(f"deploy: {p}" for p in problems)
        chunks += out([f"deploy checks ({result.deploy.stage}): {_verdict(problems)}"])
    if result.live is not None and result.live.error:
        chunks += err([f"eks-iam-sync: error: {result.live.error}"])
    elif result.live is not None:
        chunks += err(f"live: {p}" for p in result.live.problems)
        chunks += out(f"live: note: {n}" for n in result.live.notes)
        chunks += out([f"live checks: {_verdict(result.live.problems)}"])
    return chunks


def _verdict(problems: tuple[str, ...]) -> str:
    return "ok" if not problems else f"{len(problems)} problem(s)"


def _validated_json(result: Validated) -> dict[str, Any]:
    deploy, live = result.deploy, result.live
    return {
        "source": result.source,
        "valid": not result.problems,
        "summary": result.summary,
        "problems": [{"path": p.path, "line": p.line, "message": p.message} for p in result.problems],
        "deploy": None if deploy is None else {"stage": deploy.stage, "problems": list(deploy.problems)},
        "live": None
        if live is None
        else {"problems": list(live.problems), "notes": list(live.notes), "error": live.error or None},
        "ok": result.ok,
    }


def _manifest_json(result: Manifest) -> dict[str, Any]:
    """One kubectl List: ``eks-iam-sync rbac --output json | kubectl apply -f -`` works too."""
    return {"apiVersion": "v1", "kind": "List", "items": list(result.documents)}


# --- plan, apply -----------------------------------------------------------------------------------


def _reconciled_text(result: Reconciled) -> list[Chunk]:
    lines = [line for name, r in result.clusters for line in results.as_text(name, r, result.dry_run)]
    for b in result.backups:  # uninstall's
        lines += [f"cluster {b.cluster}: {'would remove' if result.dry_run else 'removed'} {n}" for n in b.names]
        lines += [f"cluster {b.cluster}: FAILED to remove the backups: {b.error}"] if b.error else []
        lines += [f"cluster {b.cluster}: backups kept: {b.kept}"] if b.kept else []
    return out(lines)


def _reconciled_json(result: Reconciled) -> dict[str, Any]:
    removed = {
        b.cluster: {"backups": {"removed": list(b.names), "error": b.error, "kept": b.kept}} for b in result.backups
    }
    return {name: results.as_json(r) | removed.get(name, {}) for name, r in result.clusters}


# --- explain ---------------------------------------------------------------------------------------


def _explained_text(result: Explained) -> list[Chunk]:
    lines: list[str] = []
    for cluster in result.clusters:
        if isinstance(cluster, Failed):
            lines += _failed_lines(cluster)
            continue
        through = results.BACKEND_LABELS.get(cluster.backend, cluster.backend)
        mode = f" (authentication mode {cluster.authentication_mode})" if cluster.authentication_mode else ""
        lines.append(f"cluster {cluster.cluster}: mapped through {through}{mode}")
        for mapped in cluster.mappings:
            lines += mapped_lines(cluster, mapped)
        lines += [f"  ! {w}" for w in cluster.warnings]
        lines += person_lines(result.principal, cluster)
        if not cluster.mappings and not cluster.people:
            why = "not in a configured group, no configured role, no tag grant"
            lines.append(f"  {result.principal}: no mapping ({why})")
            lines += [f"  ! {r.render()}" for r in cluster.refusals]
    return out(lines)


def _explained_json(result: Explained) -> dict[str, Any]:
    clusters: dict[str, Any] = {}
    for cluster in result.clusters:
        if isinstance(cluster, Failed):
            clusters[cluster.cluster] = _failed_json(cluster)
            continue
        clusters[cluster.cluster] = {
            "status": "read",
            "backend": cluster.backend,
            "authenticationMode": cluster.authentication_mode,
            "mappings": [mapped_json(cluster, m) for m in cluster.mappings],
            "identityCenter": [person_json(cluster, p) for p in cluster.people],
            "grantRefusals": [results.refusal_json(r) for r in cluster.refusals],
            "warnings": list(cluster.warnings),
        }
    return {"principal": result.principal, "found": result.found, "clusters": clusters}


# --- backups, restore, migrate ---------------------------------------------------------------------


def _backups_text(result: Backups) -> list[Chunk]:
    lines: list[str] = []
    for cluster in result.clusters:
        if isinstance(cluster, Failed):
            lines += _failed_lines(cluster)
            continue
        lines.append(f"cluster {cluster.cluster}")
        if not cluster.any_slot:
            lines.append("  no backups yet (one is kept before each write)")
        for v in cluster.versions:
            foreign = "  (the last version not written by eks-iam-sync)" if v.foreign else ""
            version = f"rv {v.resource_version:<10}"
            lines.append(f"  {v.sequence:>5}  {v.taken_at}  {v.entries:>4} entries  {version} {v.reason}{foreign}")
        for slot in cluster.unusable:
            lines.append(f"  ! {slot.slot}: {'CORRUPT' if slot.corrupt else 'UNREADABLE'}: {slot.problem}")
    return out(lines)


def _backups_json(result: Backups) -> dict[str, Any]:
    return {c.cluster: _cluster_backups_json(c) for c in result.clusters}


def _cluster_backups_json(cluster: ClusterBackups | Failed) -> dict[str, Any]:
    if isinstance(cluster, Failed):
        return _failed_json(cluster)
    versions = [
        {
            "sequence": v.sequence,
            "takenAt": v.taken_at,
            "resourceVersion": v.resource_version,
            "reason": v.reason,
            "entries": v.entries,
            "foreign": v.foreign,
        }
        for v in cluster.versions
    ]
    unusable = [{"slot": u.slot, "problem": u.problem, "corrupt": u.corrupt} for u in cluster.unusable]
    return {"status": "read", "backups": versions, "unusable": unusable}


def _outcome_lines(outcome: Outcome) -> list[str]:
    lines = [f"  {c.describe()}" for c in outcome.changes]
    lines += [f"  {c.describe()}" for c in outcome.conflicts]
    return lines + [f"  ! {r.render()}" for r in outcome.refusals]


def _restored_text(result: Restored) -> list[Chunk]:
    outcome = result.outcome
    dry = " (dry run)" if result.dry_run else ""
    lines = [f"cluster {result.cluster}: restore of backup {result.version}{dry}: {outcome.status}"]
    lines += _outcome_lines(outcome)
    if outcome.backup_sequence:
        lines.append(f"  the version it replaced is backup {outcome.backup_sequence} (restore it to undo)")
    return out(lines)


def _restored_json(result: Restored) -> dict[str, Any]:
    return {
        "cluster": result.cluster,
        "version": result.version,
        "dryRun": result.dry_run,
        "ok": result.ok,
        "awsAuth": results.outcome_json(result.outcome),
    }


def _migrated_text(result: Migrated) -> list[Chunk]:
    dry = " (dry run)" if result.dry_run else ""
    lines = [f"cluster {result.cluster}: migrate aws-auth -> access entries{dry}"]
    lines += [f"  access entries: {result.access_entries.status}", *_outcome_lines(result.access_entries)]
    lines += [f"  ! kept in aws-auth (no access entry in place): {e.describe()}" for e in result.kept_in_aws_auth]
    lines += [f"  aws-auth: {result.aws_auth.status}", *_outcome_lines(result.aws_auth)]
    return out(lines)


def _migrated_json(result: Migrated) -> dict[str, Any]:
    return {
        "cluster": result.cluster,
        "dryRun": result.dry_run,
        "ok": result.ok,
        "accessEntries": results.outcome_json(result.access_entries),
        "keptInAwsAuth": [results.entry_json(e) for e in result.kept_in_aws_auth],
        "awsAuth": results.outcome_json(result.aws_auth),
    }


# --- report, report diff ---------------------------------------------------------------------------


def _written_text(result: Written) -> list[Chunk]:
    """The document itself on stdout when it goes there (``-``); what was written and found, on stdout
    or, when stdout carries the document, on stderr."""
    report = result.report
    where = "stdout" if result.destination == "-" else result.destination
    size = len(result.document.encode())
    lines = [f"access report ({result.form}): {where} ({size / 1024:.1f} KiB)"]
    for cluster in report.clusters:
        if cluster.status == "failed":
            lines.append(f"! cluster {cluster.name}: FAILED: {cluster.error}")
        else:
            lines.append(f"  cluster {cluster.name}: read ({cluster.authentication_mode or 'mode not described'})")
    lines.append(
        f"  {len(report.principals)} principals, {len(report.columns)} namespaces, {len(report.paths)} grant paths"
    )
    counted = [(kind, len(report.findings_of(kind))) for kind in FINDING_KINDS]
    lines.append(f"  findings: {', '.join(f'{n} {kind}' for kind, n in counted if n) or 'none'}")
    lines.append(f"  configuration {report.meta.config_source} sha256 {report.meta.config_sha256}")
    if result.destination == "-":
        return [("out", result.document), *err(lines)]
    return out(lines)


def _diffed_text(result: Diffed) -> list[Chunk]:
    return out(report_diff.as_text(result.found))


def _diffed_json(result: Diffed) -> dict[str, Any]:
    return report_diff.as_json(result.found)


# --- what every command may answer -----------------------------------------------------------------


def _failed_lines(failed: Failed) -> list[str]:
    return [f"cluster {failed.cluster}: FAILED: {failed.error}"]


def _failed_json(failed: Failed) -> dict[str, Any]:
    """As a failed cluster's part of a reconcile's JSON, with its name."""
    kind, name = failed.error_kind, failed.error_type
    return {"cluster": failed.cluster, "status": "failed", "error": failed.error, "errorKind": kind, "errorType": name}


def _declined_json(result: Declined) -> dict[str, Any]:
    return {"status": "declined", "error": result.message}


_TEXT: dict[type, Callable[[Any], list[Chunk]]] = {
    Validated: _validated_text,
    Manifest: lambda m: [("out", m.text)],
    Reconciled: _reconciled_text,
    Explained: _explained_text,
    Backups: _backups_text,
    Restored: _restored_text,
    Migrated: _migrated_text,
    Written: _written_text,
    Diffed: _diffed_text,
    Failed: lambda f: out(_failed_lines(f)),
    Declined: lambda d: out([d.message]),
}
_JSON: dict[type, Callable[[Any], Any]] = {
    Validated: _validated_json,
    Manifest: _manifest_json,
    Reconciled: _reconciled_json,
    Explained: _explained_json,
    Backups: _backups_json,
    Restored: _restored_json,
    Migrated: _migrated_json,
    Diffed: _diffed_json,
    Failed: _failed_json,
    Declined: _declined_json,
}
