"""``report``: who can reach which namespace, and why. Reads IAM and each cluster through the same
ports and ``Shell`` as every other command, strictly read-only, renders the report (HTML, JSON or CSV)
and writes it to its file; ``-`` leaves the document in the result for the CLI to print.

Read-only, twice over: each cluster's drift is the plan of a display-only reconcile
(``Options(dry_run=True)`` -> ``DisplayOnlyApplier``, which holds no store), and every port the run and
the report read through is wrapped so that a write is refused before it reaches the store
(``accessreport.readonly``). The configuration is read once; its SHA-256 is of exactly those bytes,
so ``sha256sum`` of the file matches the report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from chalicelib.config import MAX_CONFIG_BYTES, Cluster, Config, ConfigError, Problem, parse_config
from chalicelib.config.settings import instance, is_remote
from chalicelib.entry.accessreport import diff as report_diff
from chalicelib.entry.accessreport.activity import DEFAULT_DORMANT_DAYS, with_activity
from chalicelib.entry.accessreport.csvform import render_csv
from chalicelib.entry.accessreport.data import AccessReport, ClusterFailed, ClusterRead, Meta
from chalicelib.entry.accessreport.model import build_report
from chalicelib.entry.accessreport.readonly import ReadOnlyCluster, read_only
from chalicelib.entry.accessreport.render import render_html, render_json
from chalicelib.entry.commands.common import Reach, connect, shell_for
from chalicelib.errors import Forbidden, NotFound, PermanentError, SyncError, TransientError
from chalicelib.model.ownership import AWS_AUTH_NAME, AWS_AUTH_NAMESPACE
from chalicelib.model.ports import (
    ActivityShell,
    AssociatedPolicy,
    BindingStore,
    ClusterPorts,
    LastUsed,
    ObservedAccessEntry,
    ObservedBinding,
    RbacReader,
    RbacSnapshot,
)
from chalicelib.model.snapshot import IamSnapshot
from chalicelib.run.reconcile import Options, reconcile_cluster

FORMATS = ("html", "json", "csv")
API_MODES = ("API", "API_AND_CONFIG_MAP")


@dataclass(frozen=True)
class ReportOptions:
    form: str = "html"  # html | json | csv
    destination: str = "access.html"  # a file, or "-": stdout (the CLI prints ``Written.document``)
    previous: str | None = None  # an earlier JSON report whose access the page marks as not new
    last_used: bool = False
    dormant_days: int = DEFAULT_DORMANT_DAYS


@dataclass(frozen=True)
class Written:
    """A report rendered and written (or, for ``-``, to be printed): the document and what it found."""

    form: str
    destination: str
    document: str
    report: AccessReport

    @property
    def ok(self) -> bool:
        """Every cluster was read."""
        return not self.report.failed


class _Quiet:
    """The Observer of a report: it reports in the page, not in logs or metrics."""

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        return None

    def milliseconds(self, name: str, value: float) -> None:
        return None

    def percent(self, name: str, value: float, **dimensions: str) -> None:
        return None

    def info(self, message: str, **fields: Any) -> None:
        return None

    def warning(self, message: str, **fields: Any) -> None:
        return None

    def error(self, message: str, **fields: Any) -> None:
        return None

    def change(self, message: str, **fields: Any) -> None:
        return None  # a report reads through ports that refuse every write: nothing changes


def configuration(source: str) -> tuple[Config, str]:
    """The configuration and the SHA-256 of the very text it was parsed from."""
    if is_remote(source):
        from chalicelib.adapters.config_source import read_source  # noqa: PLC0415 - boto3 only when needed

        raw = read_source(source).encode()
    else:
        try:
            raw = Path(source).read_bytes()
        except OSError as err:
            raise ConfigError(source, [Problem("", None, f"cannot read the file: {err}")]) from err
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(source, [Problem("", None, f"the file is over {MAX_CONFIG_BYTES // 1024} KiB")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(source, [Problem("", None, f"cannot read the file: {err}")]) from err
    return parse_config(text, source), hashlib.sha256(raw).hexdigest()


def build(
    source: str,
    reach: Reach,
    options: ReportOptions,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AccessReport:
    config, digest = configuration(source)
    shell = shell_for(reach)
    reached = connect(config, reach, shell)
    snapshot = shell.iam(config.iam_role).full_snapshot()
    iam_read_at = _iso(clock())
    read_by = shell.own_arn()
    clusters = [read_cluster(config, config.cluster(name), ports, snapshot, read_by) for name, ports in reached.items()]
    meta = Meta(
        generated_at=_iso(clock()),
        config_source=source,
        config_sha256=digest,
        version=_version(),
        read_by=read_by,
        iam_read_at=iam_read_at,
    )
    report = build_report(config, snapshot, clusters, meta)
    if options.last_used:
        report = _evidence_of_use(report, shell, config, clock(), options.dormant_days)
    return report


def _evidence_of_use(report: AccessReport, shell: object, config: Config, now: datetime, days: int) -> AccessReport:
    """IAM's last-used record of every principal in IAM that has access (a request or more each)."""
    if not isinstance(shell, ActivityShell):
        raise PermanentError("--last-used: this shell cannot read IAM's last-used records")
    reader = shell.iam_activity(config.iam_role)
    used: dict[str, LastUsed] = {}
    errors: dict[str, str] = {}
    for principal in report.principals:
        if not principal.in_iam or not principal.cells:
            continue
        try:
            used[principal.arn] = reader.last_used(principal.arn)
        except SyncError as err:
            errors[principal.arn] = f"{type(err).__name__}: {err}"
    return with_activity(report, used, errors, now, days)


def read_cluster(
    config: Config, cluster: Cluster, reached: ClusterPorts | SyncError, snapshot: IamSnapshot, read_by: str
) -> ClusterRead | ClusterFailed:
    """One cluster, read once through read-only ports: the display-only reconcile, then what the
    report adds (aws-auth, every access entry, the owned RoleBindings, the rules of their ClusterRoles)."""
    if isinstance(reached, SyncError):
        return _failed(cluster, reached)
    ports = read_only(reached)
    options = Options(
        dry_run=True, own_arns=frozenset({read_by}), reason="eks-iam-sync report", instance=instance(), exclusive=False
    )
    mode = reached.authentication_mode
    try:
        run = reconcile_cluster(config, ports.ports, snapshot, _Quiet(), None, options)
        if not run.applied.display_only:
            raise AssertionError("the report computed with an applier that writes")
        aws_auth = ports.config_maps.read(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME) if mode != "API" else None
        entries = ports.access_entries.all() if ports.access_entries is not None and mode in API_MODES else None
        bindings = (*ports.bindings.list_owned(), *_owned_cluster_bindings(ports.bindings))
        namespaces = ports.bindings.namespaces()
    except SyncError as err:
        return _failed(cluster, err)
    rbac, rbac_error = _rbac(ports.rbac)
    policies, policy_errors = _policies(ports, entries)
    rules: dict[str, tuple[str, ...]] = {}
    errors: dict[str, str] = {}
    for role in sorted({b.cluster_role for b in run.desired.bindings} | {b.cluster_role for b in bindings}):
        try:
            rules[role] = tuple(ports.cluster_roles.rules(role))
        except NotFound:
            errors[role] = "no such ClusterRole: it grants nothing until it exists"
        except SyncError as err:
            errors[role] = str(err)
    return ClusterRead(
        cluster.name,
        cluster.region,
        mode,
        run,
        aws_auth,
        entries,
        bindings,
        rules,
        errors,
        len(namespaces),
        tuple(sorted(namespaces)),
        rbac,
        rbac_error,
        policies,
        policy_errors,
        _custom_resources(ports.rbac, policies),
    )


def _owned_cluster_bindings(bindings: BindingStore) -> list[ObservedBinding]:
    """The owned ClusterRoleBindings (the reconcile read them already); none where the RBAC of whoever
    reads grants none (the reconcile failed the cluster when it wanted some)."""
    try:
        return bindings.list_owned_cluster()
    except Forbidden:
        return []


def _custom_resources(reader: RbacReader | None, policies: dict[str, tuple[AssociatedPolicy, ...]]) -> tuple[str, ...]:
    """The cluster's CRDs, read only when an access entry holds AmazonEKSEditPolicy (which grants none of
    them); unreadable: none (the report says already what the reader may not list)."""
    edit = any(p.policy_arn.endswith("/AmazonEKSEditPolicy") for found in policies.values() for p in found)
    if reader is None or not edit:
        return ()
    try:
        return tuple(reader.custom_resources())
    except SyncError:
        return ()


def _rbac(reader: RbacReader | None) -> tuple[RbacSnapshot | None, str]:
    """Every RBAC object, or why not: a reader without list on them (the service's own RBAC lists only
    its RoleBindings) still gets the rest of the report, which then says what it could not see."""
    if reader is None:
        return None, "no RBAC reader for this cluster"
    try:
        return reader.snapshot(), ""
    except SyncError as err:
        return None, f"{type(err).__name__}: {err}"


def _policies(
    ports: ReadOnlyCluster, entries: tuple[ObservedAccessEntry, ...] | None
) -> tuple[dict[str, tuple[AssociatedPolicy, ...]], dict[str, str]]:
    """The access policies of every STANDARD access entry (EKS refuses the question for node entries)."""
    found: dict[str, tuple[AssociatedPolicy, ...]] = {}
    errors: dict[str, str] = {}
    if ports.access_policies is None or entries is None:
        return found, errors
    for entry in entries:
        if entry.type != "STANDARD":
            continue
        try:
            found[entry.key] = tuple(ports.access_policies.associated_policies(entry.principal_arn))
        except Forbidden as err:
            # The reader may not ask (the functions' own policy does not allow it): the same for every
            # entry, so one answer for the cluster ("" for every principal) instead of one per entry.
            return {}, {"": f"{type(err).__name__}: {err}"}
        except SyncError as err:
            errors[entry.key] = f"{type(err).__name__}: {err}"
    return found, errors


def render(report: AccessReport, form: str, previous: Any = None) -> str:
    if form == "csv":
        return render_csv(report)
    return render_json(report) if form == "json" else render_html(report, previous)


def _previous(name: str | None) -> Any:
    """The earlier report (``--previous``) the page marks new access against, checked before any read."""
    if name is None:
        return None
    try:
        document = json.loads(Path(name).read_text(encoding="utf-8"))
        report_diff.diff(document, document)  # refuses what is not a report
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, report_diff.NotAReport) as err:
        reason = str(err).removeprefix("OLD: ")
        raise ConfigError(name, [Problem("", None, f"--previous: not a readable access report: {reason}")]) from err
    return document


def write(source: str, reach: Reach, options: ReportOptions) -> Written:
    """Builds and renders the report and writes it to ``options.destination`` (not ``-``: stdout is the CLI's)."""
    previous = _previous(options.previous)
    report = build(source, reach, options)
    document = render(report, options.form, previous)
    if options.destination != "-":
        Path(options.destination).write_text(document, encoding="utf-8")
    return Written(options.form, options.destination, document, report)


def _failed(cluster: Cluster, err: SyncError) -> ClusterFailed:
    kind = "transient" if isinstance(err, TransientError) else "permanent"
    return ClusterFailed(cluster.name, cluster.region, f"{type(err).__name__}: {err}", kind)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _version() -> str:
    try:
        return metadata.version("eks-iam-sync")
    except metadata.PackageNotFoundError:
        return "unknown"
