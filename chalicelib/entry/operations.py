"""What the operator CLI does, with the same stages and ports as the Lambdas (service layer)."""

from __future__ import annotations

import argparse

from chalicelib.adapters.observability import LogObserver
from chalicelib.config import Cluster, Config, grantable_cluster_roles
from chalicelib.engine.accessentries.backend import AccessEntriesBackend
from chalicelib.engine.accessentries.plan import AccessEntriesStep, as_entry, desired_entry
from chalicelib.engine.awsauth.model import ENTRY_KEYS
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.desired import desired_state
from chalicelib.engine.explain import Explanation, explain, refusals_for
from chalicelib.errors import NotFound, SyncError
from chalicelib.model.identities import Entry, OwnedEntry, preview
from chalicelib.model.ownership import AWS_AUTH_NAME, AWS_AUTH_NAMESPACE
from chalicelib.model.ports import ClusterPorts, ObservedAccessEntry, Shell
from chalicelib.model.snapshot import IamSnapshot
from chalicelib.run import runner
from chalicelib.run.reconcile import Options, aws_auth_writer, choose_backend, guardrail_policy
from chalicelib.run.results import Result


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
    view = runner.IamView(shell.iam(config.iam_role))
    options = Options(
        dry_run=dry_run,
        force_deletions=force,
        own_arns=frozenset({shell.own_arn()}),  # whoever runs this must not lock themselves out
        reason="eks-iam-sync plan" if dry_run else "eks-iam-sync apply",
    )
    return runner.reconcile_clusters(config, reached, view, None, options)


def explain_text(config: Config, args: argparse.Namespace) -> tuple[list[str], bool]:
    shell = shell_for(args)
    snapshot = shell.iam(config.iam_role).full_snapshot()
    lines: list[str] = []
    found = False
    for name, ports in connect(config, args, shell).items():
        if isinstance(ports, SyncError):
            lines.append(f"cluster {name}: FAILED: {ports}")
            continue
        try:
            explained, mapped = _explain_cluster(config, args.principal, snapshot, ports)
        except SyncError as err:
            lines.append(f"cluster {name}: FAILED: {err}")
            continue
        lines += explained
        found = found or mapped
    return lines, found


def _explain_cluster(
    config: Config, principal: str, snapshot: IamSnapshot, ports: ClusterPorts
) -> tuple[list[str], bool]:
    backend = choose_backend(config.cluster(ports.name), ports.authentication_mode)
    desired = desired_state(config, snapshot, ports.bindings.namespaces())
    observed = ports.config_maps.read(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME) if ports.authentication_mode != "API" else None
    reading = read_aws_auth(observed.data if observed else {})
    in_aws_auth = {e.key: e.core() for key in ENTRY_KEYS for e in reading.entries(key)}
    entries = ports.access_entries if backend == "accessEntries" else None
    described: dict[str, ObservedAccessEntry | None] = {}

    def entry_of(owned: OwnedEntry) -> ObservedAccessEntry | None:
        if entries is not None and owned.iam_arn not in described:
            described[owned.iam_arn] = entries.describe(owned.iam_arn)
        return described.get(owned.iam_arn)

    def in_place(owned: OwnedEntry) -> bool:
        if entries is None:
            return in_aws_auth.get(owned.entry.key) == owned.entry.core()
        found = entry_of(owned)
        return found is not None and as_entry(found) == desired_entry(owned)

    rules = {role: _rules(ports, role) for role in sorted({b.cluster_role for b in desired.bindings})}
    explanations = explain(principal, desired, in_place, rules)
    mode = f" (authentication mode {ports.authentication_mode})" if ports.authentication_mode else ""
    lines = [f"cluster {ports.name}: mapped through {'access entries' if entries else 'aws-auth'}{mode}"]
    for item in explanations:
        entry = item.owned.entry
        where = "access entry" if entries else f"aws-auth {item.owned.key}"
        lines.append(f"  {item.owned.iam_arn} ({where}), in place now: {'yes' if item.in_place else 'NO'}")
        if entries and ports.authentication_mode == "API_AND_CONFIG_MAP" and entry.key in in_aws_auth:
            lines.append(_shadowed(in_aws_auth[entry.key], has_entry=entry_of(item.owned) is not None))
        lines += _explained(item)
    if not explanations:
        lines.append(f"  {principal}: no mapping (not in a configured group, no configured role, no tag grant)")
        lines += [f"  ! {r.render()}" for r in refusals_for(principal, desired)]
    return lines, bool(explanations)


def _shadowed(mapping: Entry, has_entry: bool) -> str:
    """What an API_AND_CONFIG_MAP cluster does with an aws-auth mapping of a principal the service
    maps through access entries."""
    if not has_entry:
        return "    ! no access entry yet: EKS maps it through its aws-auth entry for now"
    return f"    ! aws-auth maps it too ({mapping.describe()}); EKS uses the access entry and ignores that mapping"


def _explained(item: Explanation) -> list[str]:
    entry = item.owned.entry
    lines = [
        f"    username: {entry.username}",
        f"    kubernetes groups: {', '.join(entry.groups) or '(none)'}",
        f"    because: {item.owned.source}",
    ]
    if not item.grants:
        lines.append("    no RoleBinding applies")
    for grant in item.grants:
        b = grant.binding
        lines.append(f"    + namespace {b.namespace}: ClusterRole {b.cluster_role} via {grant.via}")
        lines += [f"        can {rule}" for rule in grant.can]
    return lines + [f"    ! {r.render()}" for r in item.refusals]


def _rules(ports: ClusterPorts, role: str) -> list[str]:
    try:
        return ports.cluster_roles.rules(role)
    except SyncError as err:
        return [f"(cannot read ClusterRole {role}: {err})"]


def backups_text(config: Config, args: argparse.Namespace) -> tuple[list[str], bool]:
    """Every readable backup of each cluster and every slot that cannot be used, with why; False
    when a cluster (or one of its slots) could not be read, so the listing may be incomplete."""
    lines, complete = [], True
    for name, ports in connect(config, args, shell_for(args)).items():
        if isinstance(ports, SyncError):
            lines.append(f"cluster {name}: FAILED: {ports}")
            complete = False
            continue
        lines.append(f"cluster {name}")
        try:
            policy = guardrail_policy(config, Options(), ports.caller_arn)
            kept = aws_auth_writer(config, ports, policy, LogObserver(name)).kept()
        except SyncError as err:
            lines.append(f"  FAILED: {err}")
            complete = False
            continue
        if not kept.slots:
            lines.append("  no backups yet (one is kept before each write)")
        for backup in kept.backups:
            entries = read_aws_auth(backup.data)
            count = len(entries.entries("mapRoles")) + len(entries.entries("mapUsers"))
            version = f"rv {backup.resource_version:<10}"
            foreign = "  (the last version not written by eks-iam-sync)" if kept.foreign(backup) else ""
            lines.append(
                f"  {backup.sequence:>5}  {backup.taken_at}  {count:>4} entries  {version} {backup.reason}{foreign}"
            )
        for slot in kept.unreadable:
            lines.append(f"  ! {slot.name}: {'CORRUPT' if slot.corrupt else 'UNREADABLE'}: {slot.problem}")
            complete = complete and slot.corrupt
    return lines, complete


def restore(config: Config, args: argparse.Namespace) -> tuple[list[str], bool]:
    shell = shell_for(args)
    reached = connect(config, args, shell)
    if len(reached) != 1:
        return ["restore works on one cluster: name it with --cluster"], False
    ((name, ports),) = reached.items()
    if isinstance(ports, SyncError):
        return [f"cluster {name}: FAILED: {ports}"], False
    # Restores protect what the Lambdas protect (break-glass entries), and whoever runs them.
    options = Options(own_arns=frozenset({shell.own_arn()}), reason="eks-iam-sync restore")
    writer = aws_auth_writer(config, ports, guardrail_policy(config, options, ports.caller_arn), LogObserver(name))
    try:
        outcome = writer.restore(args.version, force=args.force)
    except NotFound as err:
        return [str(err)], False
    lines = [f"cluster {name}: restore of backup {args.version}: {outcome.status}"]
    lines += [f"  ! {r.render()}" for r in outcome.refusals]
    if outcome.backup_sequence:
        lines.append(f"  the version it replaced is backup {outcome.backup_sequence} (restore it to undo)")
    return lines, outcome.status in ("written", "unchanged")


def live_problems(config: Config, args: argparse.Namespace) -> list[str]:
    shell = shell_for(args)
    problems = shell.iam(config.iam_role).missing(
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


def migrate(config: Config, args: argparse.Namespace) -> tuple[list[str], bool]:
    """aws-auth -> access entries for one cluster: create (and verify) an entry for every principal the
    service maps, then remove the service's own aws-auth entries. Foreign aws-auth entries (nodes,
    break-glass, anyone else's) stay. Idempotent; ``--dry-run`` writes nothing."""
    shell = shell_for(args)
    reached = connect(config, args, shell)
    if len(reached) != 1 or not args.cluster:
        return ["migrate works on one cluster: name it with --cluster"], False
    ((name, ports),) = reached.items()
    if isinstance(ports, SyncError):
        return [f"cluster {name}: FAILED: {ports}"], False
    cluster = config.cluster(name)
    refused = _migration_refusal(cluster, ports)
    if refused:
        return [f"cluster {name}: {refused}"], False
    observer = LogObserver(name)
    options = Options(own_arns=frozenset({shell.own_arn()}), dry_run=args.dry_run, reason="eks-iam-sync migrate")
    desired = desired_state(config, shell.iam(config.iam_role).full_snapshot(), ports.bindings.namespaces())
    assert ports.access_entries is not None  # checked by _migration_refusal
    entries = AccessEntriesBackend(ports.access_entries, observer, guardrail_policy(config, options, ports.caller_arn))
    step = entries.plan(desired.identities, None)
    created = preview(step) if args.dry_run else entries.apply(step, options.reason)
    lines = [f"cluster {name}: migrate aws-auth -> access entries" + (" (dry run)" if args.dry_run else "")]
    lines += [f"  access entries: {created.status}"] + [f"  {c.describe()}" for c in created.changes]
    lines += [f"  {c.describe()}" for c in created.conflicts] + [f"  ! {r.render()}" for r in created.refusals]
    moved = _entries_in_place(entries, desired.identities, step, verify=not args.dry_run)
    kept = [o for o in desired.identities if o.entry.key not in moved]
    lines += [f"  ! kept in aws-auth (no access entry in place): {o.entry.describe()}" for o in kept]
    # Everything the service owns in aws-auth goes, except what still has no entry; the deletion
    # breaker is lifted (removing them all is the point), every other guardrail holds.
    policy = guardrail_policy(config, Options(own_arns=options.own_arns, force_deletions=True), ports.caller_arn)
    writer = aws_auth_writer(config, ports, policy, observer)
    scope = _AllBut(frozenset(o.entry.key for o in kept))
    removal = writer.plan((), scope)
    removed = preview(removal) if args.dry_run else writer.apply(removal, options.reason)
    lines += [f"  aws-auth: {removed.status}"] + [f"  {c.describe()}" for c in removed.changes]
    lines += [f"  ! {r.render()}" for r in removed.refusals]
    ok = not created.refusals and not removed.refusals and not created.conflicts
    return lines, ok


def _migration_refusal(cluster: Cluster, ports: ClusterPorts) -> str | None:
    if cluster.backend == "configMap":
        return "backend: configMap in the configuration would write aws-auth again: set backend: auto first"
    if ports.authentication_mode == "CONFIG_MAP":
        return (
            "authentication mode CONFIG_MAP has no access entries; switch it first (one-way): "
            f"aws eks update-cluster-config --name {cluster.name} --region {cluster.region} "
            "--access-config authenticationMode=API_AND_CONFIG_MAP"
        )
    if ports.authentication_mode is None or ports.access_entries is None:
        return "the authentication mode could not be read (eks:DescribeCluster)"
    return None


def _entries_in_place(
    entries: AccessEntriesBackend, desired: tuple[OwnedEntry, ...], step: AccessEntriesStep, verify: bool
) -> set[str]:
    """aws-auth keys of the desired principals whose access entry exists as desired (read back, with
    EKS's propagation delay waited out), or, in a dry run, would after the step."""
    refused = {r.principal.lower() for r in step.refusals if r.principal}
    conflicting = {c.wanted.entry.key for c in step.conflicts}
    candidates = [o for o in desired if o.iam_arn.lower() not in refused and o.entry.key not in conflicting]
    if not verify:
        return {o.entry.key for o in candidates}
    return {o.entry.key for o in candidates if entries.verify(o)}


class _AllBut:
    """A scope of every ARN except these (lower case)."""

    def __init__(self, excluded: frozenset[str]) -> None:
        self.excluded = excluded

    def __contains__(self, arn: object) -> bool:
        return isinstance(arn, str) and arn.lower() not in self.excluded
