"""What the operator CLI does, with the same stages and ports as the Lambdas (service layer)."""

from __future__ import annotations

import argparse

from chalicelib import runner
from chalicelib.awsauth.parse import read_aws_auth
from chalicelib.config import Config, grantable_cluster_roles
from chalicelib.desired import desired_state
from chalicelib.errors import NotFound, SyncError
from chalicelib.explain import explain, refusals_for
from chalicelib.observability import LogObserver
from chalicelib.ports import ClusterPorts, Shell
from chalicelib.reconcile import Options, identity_backend
from chalicelib.report import Result


def shell_for(args: argparse.Namespace) -> Shell:
    if args.kubeconfig or args.context:
        from chalicelib.adapters.shell import KubeconfigShell  # noqa: PLC0415

        return KubeconfigShell(args.kubeconfig, args.context)
    return runner.make_shell()


def connect(config: Config, args: argparse.Namespace, shell: Shell) -> dict[str, ClusterPorts | SyncError]:
    if (args.kubeconfig or args.context) and len([c for c in config.clusters if args.cluster in (None, c.name)]) != 1:
        raise SystemExit("with --kubeconfig/--context, name the configured cluster it reaches with --cluster")
    return runner.connect(config, shell, args.cluster)


def full_reconcile(config: Config, args: argparse.Namespace, dry_run: bool, force: bool) -> dict[str, Result]:
    shell = shell_for(args)
    reached = connect(config, args, shell)
    snapshot = shell.iam().full_snapshot()
    options = Options(
        dry_run=dry_run,
        force_deletions=force,
        own_arns=frozenset({shell.own_arn()}),  # whoever runs this must not lock themselves out
        reason="eks-iam-sync plan" if dry_run else "eks-iam-sync apply",
    )
    return runner.reconcile_clusters(config, reached, snapshot, None, options)


def explain_text(config: Config, args: argparse.Namespace) -> tuple[list[str], bool]:
    shell = shell_for(args)
    snapshot = shell.iam().full_snapshot()
    lines: list[str] = []
    found = False
    for name, ports in connect(config, args, shell).items():
        if isinstance(ports, SyncError):
            lines.append(f"cluster {name}: FAILED: {ports}")
            continue
        desired = desired_state(config, snapshot, ports.bindings.namespaces())
        observed = identity_backend(config, ports, Options(), LogObserver(name)).read()
        reading = read_aws_auth(observed.data if observed else {})
        rules = {role: _rules(ports, role) for role in sorted({b.cluster_role for b in desired.bindings})}
        explanations = explain(args.principal, desired, reading, rules)
        lines.append(f"cluster {name}")
        for item in explanations:
            found = True
            entry = item.owned.entry
            lines.append(f"  {entry.arn} ({item.owned.key}), in aws-auth now: {'yes' if item.in_aws_auth else 'NO'}")
            lines.append(f"    username: {entry.username}")
            lines.append(f"    kubernetes groups: {', '.join(entry.groups) or '(none)'}")
            lines.append(f"    because: {item.owned.source}")
            if not item.grants:
                lines.append("    no RoleBinding applies")
            for grant in item.grants:
                b = grant.binding
                lines.append(f"    + namespace {b.namespace}: ClusterRole {b.cluster_role} via {grant.via}")
                lines += [f"        can {rule}" for rule in grant.can]
            lines += [f"    ! {r.render()}" for r in item.refusals]
        if not explanations:
            lines.append(
                f"  {args.principal}: no mapping (not in a configured group, no configured role, no tag grant)"
            )
            lines += [f"  ! {r.render()}" for r in refusals_for(args.principal, desired)]
    return lines, found


def _rules(ports: ClusterPorts, role: str) -> list[str]:
    try:
        return ports.cluster_roles.rules(role)
    except SyncError as err:
        return [f"(cannot read ClusterRole {role}: {err})"]


def backups_text(config: Config, args: argparse.Namespace) -> list[str]:
    lines = []
    for name, ports in connect(config, args, shell_for(args)).items():
        if isinstance(ports, SyncError):
            lines.append(f"cluster {name}: FAILED: {ports}")
            continue
        lines.append(f"cluster {name}")
        try:
            kept = identity_backend(config, ports, Options(), LogObserver(name)).backups()
        except SyncError as err:
            lines.append(f"  FAILED: {err}")
            continue
        if not kept:
            lines.append("  no backups yet (one is kept before each write)")
        for backup in kept:
            entries = read_aws_auth(backup.data)
            count = len(entries.entries("mapRoles")) + len(entries.entries("mapUsers"))
            version = f"rv {backup.resource_version:<10}"
            lines.append(f"  {backup.sequence:>5}  {backup.taken_at}  {count:>4} entries  {version} {backup.reason}")
    return lines


def restore(config: Config, args: argparse.Namespace) -> tuple[bool, list[str]]:
    shell = shell_for(args)
    reached = connect(config, args, shell)
    if len(reached) != 1:
        return False, ["restore works on one cluster: name it with --cluster"]
    ((name, ports),) = reached.items()
    if isinstance(ports, SyncError):
        return False, [f"cluster {name}: FAILED: {ports}"]
    # Restores protect what the Lambdas protect (break-glass entries), and whoever runs them.
    options = Options(own_arns=frozenset({shell.own_arn()}), reason="eks-iam-sync restore")
    writer = identity_backend(config, ports, options, LogObserver(name))
    try:
        outcome = writer.restore(args.version, force=args.force)
    except NotFound as err:
        return False, [str(err)]
    lines = [f"cluster {name}: restore of backup {args.version}: {outcome.status}"]
    lines += [f"  ! {r.render()}" for r in outcome.refusals]
    if outcome.backup_sequence:
        lines.append(f"  the version it replaced is backup {outcome.backup_sequence} (restore it to undo)")
    return outcome.status in ("written", "unchanged"), lines


def live_problems(config: Config, args: argparse.Namespace) -> list[str]:
    shell = shell_for(args)
    problems = shell.iam().missing(
        [g.iam_group for g in config.identities.groups], [r.iam_role for r in config.identities.roles]
    )
    listed = {ns for g in config.namespace_grants for ns in g.namespaces or ()}
    for name, ports in connect(config, args, shell).items():
        if isinstance(ports, SyncError):
            problems.append(f"cluster {name}: unreachable: {ports}")
            continue
        for cluster_role in grantable_cluster_roles(config):
            try:
                ports.cluster_roles.rules(cluster_role)
            except NotFound:
                problems.append(f"cluster {name}: ClusterRole {cluster_role!r}: missing")
            except SyncError as err:
                problems.append(f"cluster {name}: ClusterRole {cluster_role!r}: {err}")
        existing = ports.bindings.namespaces()
        problems += [f"cluster {name}: namespace {ns!r} does not exist" for ns in sorted(listed - set(existing))]
    return problems
