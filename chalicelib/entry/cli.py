"""The operator command line: `eks-iam-sync COMMAND` (also `python -m chalicelib`).

Same code paths as the Lambdas: AWS credentials from the standard chain, clusters reached with an
EKS token + DescribeCluster (or a kubeconfig context when given). Arguments in, exit codes out: each
command (``entry.commands``) returns a result and ``entry.output`` renders it, as text or, with
``--output json``, one JSON document on stdout. `plan` exits like `terraform plan -detailed-exitcode`:
0 no changes, 2 changes, 1 error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.config import Config, ConfigError
from chalicelib.config.settings import config_source
from chalicelib.deploy import checks as deploy_checks

if TYPE_CHECKING:
    from chalicelib.entry.commands.common import Reach
    from chalicelib.entry.output import CommandResult
    from chalicelib.run.runtime import Runtime

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def main(argv: Sequence[str] | None = None, runtime: Runtime | None = None) -> int:
    """``runtime``: the effects the commands run with (default: the current one, AWS's unless the host
    installed another)."""
    args = _parser().parse_args(argv)
    args.out = sys.stdout
    args.runtime = runtime
    from chalicelib.errors import SyncError  # noqa: PLC0415

    with _terminal_logging(), contextlib.redirect_stdout(sys.stderr):
        try:
            result: int = args.run(args)
        except SyncError as err:
            # An operator error (credentials, kubeconfig, a corrupt backup): one line, no traceback.
            print(f"eks-iam-sync: error: {err}", file=sys.stderr)
            return EXIT_ERROR
    return result


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("eks-iam-sync")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
        return "unknown (not installed)"


@contextlib.contextmanager
def _terminal_logging() -> Iterator[None]:
    """A terminal is not CloudWatch: no EMF metrics, and only errors from the service's JSON log, on
    stderr, so that stdout carries the command's own output (valid JSON with --output json). Put back
    afterwards, for whoever runs ``main`` in a longer-lived process."""
    from chalicelib.adapters.observability import audit_logger, logger  # noqa: PLC0415

    saved_metrics, saved_level = os.environ.get("POWERTOOLS_METRICS_DISABLED"), logger.log_level
    saved_audit = audit_logger.log_level
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    # The command prints every failure itself, once: the service's JSON log only when asked for.
    logger.setLevel(os.environ.get("POWERTOOLS_LOG_LEVEL", "CRITICAL"))
    # The command prints what it changed itself; the JSON audit records are the functions' trail.
    audit_logger.setLevel(os.environ.get("POWERTOOLS_LOG_LEVEL", "CRITICAL"))
    try:
        yield
    finally:
        logger.setLevel(saved_level)
        audit_logger.setLevel(saved_audit)
        if saved_metrics is None:
            os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
        else:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = saved_metrics


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eks-iam-sync", description="Keep Amazon EKS access in step with AWS IAM.")
    parser.add_argument("--version", action="version", version=f"eks-iam-sync {_version()}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def command(name: str, summary: str, run: Any, config_positional: bool = False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        where = "the YAML file (default: $EKS_IAM_SYNC_CONFIG or the shipped example)"
        sub.add_argument("--config", dest="config_option", metavar="FILE", help=where)
        if config_positional:
            sub.add_argument("config", nargs="?", help=f"{where}; same as --config")
        sub.set_defaults(run=run, config=None)
        if name != "report":  # report's --output is the file it writes (--format: html, json or csv)
            _output_option(sub)
        return sub

    validate = command(
        "validate", "Check a configuration file (and, with --live, IAM and the clusters).", _validate, True
    )
    _cluster_options(validate)
    validate.add_argument(
        "--live", action="store_true", help="also check IAM groups/roles, ClusterRoles and namespaces"
    )
    validate.add_argument(
        "--deploy",
        metavar="STAGE",
        help="also check the Chalice stage's deploy settings in .chalice/ (the policy's cluster ARNs and partition, "
        "VPC, timeouts) against the configuration (default: the stage's EKS_IAM_SYNC_CONFIG)",
    )
    command("rbac", "Print the service's own least-privilege RBAC manifest for a configuration.", _rbac, True)
    plan = command(
        "plan", "Show what a full reconcile would change; write nothing. Exit 0 none, 2 changes, 1 error.", _plan
    )
    _cluster_options(plan)
    apply = command("apply", "Run a full reconcile now (same guardrails as the Lambda).", _apply)
    _cluster_options(apply)
    apply.add_argument("--force", action="store_true", help="lift the deletion breaker (and only it)")
    removes = "Remove what the service owns in the clusters (its aws-auth backups too), and nothing else."
    uninstall = command("uninstall", removes, lambda a: _reconcile(a, dry_run=a.dry_run, force=True, uninstall=True))
    _cluster_options(uninstall)
    uninstall.add_argument("--dry-run", action="store_true", help="list what would be removed; write nothing")
    uninstall.add_argument("--keep-backups", action="store_true", help="keep the aws-auth backups (restore)")
    explain = command("explain", "Why can (or can't) a principal reach a namespace?", _explain)
    _cluster_options(explain)
    explain.add_argument("principal", help="an IAM ARN, an IAM user or role name, or a Kubernetes username")
    moves = "Move the principals the service maps from aws-auth to EKS access entries (one cluster)."
    migrate = command("migrate", moves, _migrate)
    _cluster_options(migrate)
    migrate.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    backups = command("backups", "List the kept versions of aws-auth.", _backups)
    _cluster_options(backups)
    restore = command("restore", "Bring back a kept version of aws-auth, through the guardrails.", _restore)
    _cluster_options(restore)
    restore.add_argument("version", type=int, help="the backup's sequence number (see `backups`)")
    restore.add_argument("--force", action="store_true", help="restore even over a document EKS cannot read")
    restore.add_argument("--dry-run", action="store_true", help="show what the restore would change; write nothing")
    _report_parser(command)
    return parser


def _report_parser(command: Any) -> None:
    report = command(
        "report",
        "Write who can reach which namespace, and why, as one self-contained HTML page (or JSON, CSV); read-only. "
        "`report diff OLD.json NEW.json`: what changed between two JSON reports (exit 0 none, 2 changes, 1 error).",
        _report,
    )
    _cluster_options(report)
    report.add_argument(
        "--previous", metavar="OLD.json", help="mark in the page the access added since this earlier JSON report"
    )
    report.add_argument(
        "--last-used",
        action="store_true",
        help="add IAM's last-used record of each principal with access, and flag dormant ones (IAM requests each)",
    )
    report.add_argument(
        "--dormant-days", type=int, default=90, metavar="DAYS", help="with --last-used: dormant after DAYS (90)"
    )
    actions = report.add_subparsers(dest="action", required=False, metavar="diff")
    diff = actions.add_parser(
        "diff",
        help="what changed between two reports (--format json): exit 0 none, 2 changes, 1 error",
        description="Access added and removed per principal and namespace, and new grants made outside "
        "eks-iam-sync, between two reports written with --format json. Exit 0 none, 2 changes, 1 error.",
    )
    diff.add_argument("old", metavar="OLD.json")
    diff.add_argument("new", metavar="NEW.json")
    diff.add_argument("--output", dest="diff_output", choices=["text", "json"], default="text", help="text or json")
    diff.add_argument("--format", dest="diff_output", choices=["text", "json"], help="the same as --output")
    report.add_argument(
        "--output",
        metavar="FILE",
        help="where to write the report ('-': stdout, the document alone; default access.html|.json|.csv)",
    )
    report.add_argument(
        "--format",
        choices=["html", "json", "csv"],
        default=None,
        help="html (default), json or csv; `--format json --output -` prints the JSON report on stdout",
    )


def _output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        choices=["text", "json"],
        default="text",
        help="text (default) or json: one JSON document on stdout, nothing else",
    )


def _cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", help="only this configured cluster")
    parser.add_argument("--kubeconfig", help="reach the cluster through this kubeconfig instead of an EKS token")
    parser.add_argument("--context", help="the kubeconfig context (with --kubeconfig)")


class Style:
    """ANSI colour when writing to a terminal (and NO_COLOR is unset)."""

    def __init__(self, stream: Any = sys.stdout) -> None:
        self.on = hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ

    def __call__(self, text: str, colour: str) -> str:
        codes = {"green": "32", "red": "31", "yellow": "33", "bold": "1", "dim": "2"}
        return f"\033[{codes[colour]}m{text}\033[0m" if self.on else text

    def line(self, text: str) -> str:
        colour = {"+": "green", "-": "red", "~": "yellow", "!": "yellow"}.get(text[:1])
        return self(text, colour) if colour else text


def progress(message: str) -> None:
    if sys.stderr.isatty():
        print(f"… {message}", file=sys.stderr, flush=True)


def _emit(args: argparse.Namespace, result: CommandResult, form: str = "text", styled: bool = True) -> None:
    """Writes a command's result: one JSON document on stdout, or its text (stdout and stderr, in order;
    ``styled``: coloured by a line's first character on a terminal)."""
    from chalicelib.entry import output  # noqa: PLC0415 - every command's modules, only once one ran

    if form == "json":
        print(json.dumps(output.as_json(result), indent=2), file=args.out)
        return
    style = Style(args.out)
    for stream, text in output.as_text(result):
        if stream == "err":
            print(text, end="", file=sys.stderr)
        elif styled and text.endswith("\n"):
            print(style.line(text[:-1]), file=args.out)
        else:
            print(text, end="", file=args.out)


def _reach(args: argparse.Namespace) -> Reach:
    from chalicelib.entry.commands.common import Reach  # noqa: PLC0415

    return Reach(args.cluster, args.kubeconfig, args.context, args.runtime)


def _read(args: argparse.Namespace) -> tuple[str, Config | ConfigError]:
    path = args.config_option or args.config or config_source()
    from chalicelib.entry.service import read_config  # noqa: PLC0415 - Powertools only when a command runs

    try:
        return path, read_config(path)
    except ConfigError as err:
        return path, err


def _load(args: argparse.Namespace) -> tuple[str, Config | None]:
    path, config = _read(args)
    if isinstance(config, ConfigError):
        print(config, file=sys.stderr)
        print(f"{path}: invalid ({len(config.problems)} problem{'s' * (len(config.problems) != 1)})", file=sys.stderr)
        return path, None
    return path, config if _known_cluster(args, path, config) else None


def _known_cluster(args: argparse.Namespace, path: str, config: Config) -> bool:
    cluster = getattr(args, "cluster", None)
    if cluster and cluster not in {c.name for c in config.clusters}:
        known = ", ".join(c.name for c in config.clusters)
        print(f"eks-iam-sync: error: --cluster {cluster!r} is not in {path} (configured: {known})", file=sys.stderr)
        return False
    return True


def _validate(args: argparse.Namespace) -> int:
    from chalicelib.entry.commands.validate import validate  # noqa: PLC0415

    if args.deploy and not (args.config_option or args.config):
        args.config = deploy_checks.stage_source(Path.cwd(), args.deploy)
    path, config = _read(args)
    if isinstance(config, Config) and not _known_cluster(args, path, config):
        return EXIT_ERROR
    result = validate(path, config, args.deploy, _reach(args) if args.live else None, Path.cwd())
    _emit(args, result, args.output, styled=False)
    return EXIT_OK if result.ok else EXIT_ERROR


def _rbac(args: argparse.Namespace) -> int:
    _, config = _load(args)
    if config is None:
        return EXIT_ERROR
    from chalicelib.entry.commands.rbac import rbac  # noqa: PLC0415

    _emit(args, rbac(config), args.output, styled=False)
    return EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    return _reconcile(args, dry_run=True, force=False)


def _apply(args: argparse.Namespace) -> int:
    if args.force:
        print("warning: --force lifts the deletion breaker for this run", file=sys.stderr)
    return _reconcile(args, dry_run=False, force=args.force)


def _reconcile(args: argparse.Namespace, dry_run: bool, force: bool, uninstall: bool = False) -> int:
    _, config = _load(args)
    if config is None:
        return EXIT_ERROR
    from chalicelib.entry.commands import plan_apply  # noqa: PLC0415
    from chalicelib.entry.commands import uninstall as removal  # noqa: PLC0415

    progress("reading IAM (full snapshot) and the clusters")
    if uninstall:
        result = removal.uninstall(config, _reach(args), dry_run, args.keep_backups)
    else:
        result = plan_apply.reconcile(config, _reach(args), dry_run=dry_run, force=force)
    _emit(args, result, args.output)
    if not result.ok:
        return EXIT_ERROR
    return EXIT_CHANGES if dry_run and result.changed else EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    _, config = _load(args)
    if config is None:
        return EXIT_ERROR
    from chalicelib.entry.commands.explain import explain_principal  # noqa: PLC0415

    progress("reading IAM and the clusters")
    result = explain_principal(config, _reach(args), args.principal)
    _emit(args, result, args.output)
    return EXIT_OK if result.found else EXIT_ERROR


def _backups(args: argparse.Namespace) -> int:
    _, config = _load(args)
    if config is None:
        return EXIT_ERROR
    from chalicelib.entry.commands.backups import backups  # noqa: PLC0415

    result = backups(config, _reach(args))
    _emit(args, result, args.output, styled=False)
    return EXIT_OK if result.complete else EXIT_ERROR


def _migrate(args: argparse.Namespace) -> int:
    _, config = _load(args)
    if config is None:
        return EXIT_ERROR
    from chalicelib.entry.commands.migrate import Migrated, migrate  # noqa: PLC0415

    progress("reading IAM, aws-auth and the access entries")
    result = migrate(config, _reach(args), args.dry_run)
    _emit(args, result, args.output)
    return EXIT_OK if isinstance(result, Migrated) and result.ok else EXIT_ERROR


def _restore(args: argparse.Namespace) -> int:
    _, config = _load(args)
    if config is None:
        return EXIT_ERROR
    from chalicelib.entry.commands.restore import Restored, restore  # noqa: PLC0415

    progress(f"restoring backup {args.version}")
    result = restore(config, _reach(args), args.version, force=args.force, dry_run=args.dry_run)
    _emit(args, result, args.output)
    return EXIT_OK if isinstance(result, Restored) and result.ok else EXIT_ERROR


def _report_diff(args: argparse.Namespace) -> int:
    from chalicelib.entry.commands.report_diff import DiffError, diff_files  # noqa: PLC0415

    try:
        result = diff_files(args.old, args.new)
    except DiffError as err:
        print(f"eks-iam-sync report diff: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    _emit(args, result, args.diff_output, styled=False)
    return EXIT_CHANGES if result.changed else EXIT_OK


def _report(args: argparse.Namespace) -> int:
    if args.action == "diff":
        return _report_diff(args)
    form = args.format or "html"
    source, config = _load(args)
    if config is None:
        return EXIT_ERROR
    from chalicelib.entry.commands.report import ReportOptions, write  # noqa: PLC0415

    options = ReportOptions(form, args.output or f"access.{form}", args.previous, args.last_used, args.dormant_days)
    progress("reading IAM and the clusters (read-only)")
    result = write(source, _reach(args), options)
    _emit(args, result, styled=False)
    return EXIT_OK if result.ok else EXIT_ERROR
