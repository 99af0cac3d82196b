"""``migrate``: aws-auth -> EKS access entries for one cluster. Two plans, each carried out by the
applier or, with ``--dry-run``, shown by the display-only applier (which holds no store, so a dry run
cannot write): first an access entry for every principal the service maps (each read back, EKS's
propagation waited out), then the removal of the service's own aws-auth entries whose principal has
its access entry. Foreign aws-auth entries (nodes, break-glass, anyone else's) stay. Idempotent."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.config import Cluster, Config
from chalicelib.config.settings import instance
from chalicelib.engine.accessentries.backend import AccessEntriesBackend
from chalicelib.engine.accessentries.plan import AccessEntriesStep
from chalicelib.engine.desired import desired_state
from chalicelib.engine.plan import Plan
from chalicelib.entry.commands.common import Declined, Failed, Reach, connect, runtime_for
from chalicelib.errors import SyncError
from chalicelib.model.identities import Entry, Outcome, OwnedEntry
from chalicelib.model.ports import ClusterPorts
from chalicelib.run.apply import applier
from chalicelib.run.reconcile import Options, aws_auth_writer, guardrail_policy


@dataclass(frozen=True)
class Migrated:
    cluster: str
    dry_run: bool
    access_entries: Outcome
    kept_in_aws_auth: tuple[Entry, ...]  # owned aws-auth entries left: no access entry in place
    aws_auth: Outcome

    @property
    def ok(self) -> bool:
        return not self.access_entries.refusals and not self.aws_auth.refusals and not self.access_entries.conflicts


def migrate(config: Config, reach: Reach, dry_run: bool) -> Migrated | Failed | Declined:
    runtime = runtime_for(reach)
    shell = runtime.shell()
    reached = connect(config, reach, shell)
    if len(reached) != 1 or not reach.cluster:
        return Declined("migrate works on one cluster: name it with --cluster")
    ((name, ports),) = reached.items()
    if isinstance(ports, SyncError):
        return Failed.of(name, ports)
    refused = _migration_refusal(config.cluster(name), ports)
    if refused:
        return Declined(f"cluster {name}: {refused}")
    assert ports.access_entries is not None  # checked by _migration_refusal
    observer = runtime.observer(name)
    options = Options(
        own_arns=frozenset({shell.own_arn()}), dry_run=dry_run, reason="eks-iam-sync migrate", instance=instance()
    )
    desired = desired_state(config, shell.iam(config.iam_role).full_snapshot(), ports.bindings.namespaces())
    policy = guardrail_policy(config, options, ports.caller_arn)
    entries = AccessEntriesBackend(ports.access_entries, observer, policy, sleep=runtime.sleep)
    step = entries.plan(desired.identities, None)
    created = applier(dry_run, entries, ports.bindings, observer).apply(Plan(step), options.reason).identities
    moved = _entries_in_place(entries, desired.identities, step, verify=not dry_run)
    kept = tuple(o for o in desired.identities if o.entry.key not in moved)
    # Everything the service owns in aws-auth goes, except what still has no entry; the deletion
    # breaker is lifted (removing them all is the point), every other guardrail holds.
    policy = guardrail_policy(
        config, Options(own_arns=options.own_arns, force_deletions=True, instance=options.instance), ports.caller_arn
    )
    writer = aws_auth_writer(config, ports, policy, observer, runtime.sleep)
    removal = Plan(writer.plan((), _AllBut(frozenset(o.entry.key for o in kept))))
    removed = applier(dry_run, writer, ports.bindings, observer).apply(removal, options.reason).identities
    return Migrated(name, dry_run, created, tuple(o.entry for o in kept), removed)


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
