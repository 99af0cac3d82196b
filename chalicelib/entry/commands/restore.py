"""``restore VERSION``: a kept version of aws-auth brought back through the guardrails, as a plan that
the applier writes or, with ``--dry-run``, the display-only applier shows (it holds no store, so a dry
run cannot write)."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.config import Config
from chalicelib.config.settings import instance
from chalicelib.engine.plan import Plan
from chalicelib.entry.commands.common import Declined, Failed, Reach, connect, runtime_for
from chalicelib.errors import NotFound, SyncError
from chalicelib.model.identities import Outcome
from chalicelib.run.apply import applier
from chalicelib.run.reconcile import Options, aws_auth_writer, guardrail_policy


@dataclass(frozen=True)
class Restored:
    cluster: str
    version: int
    dry_run: bool
    outcome: Outcome

    @property
    def ok(self) -> bool:
        return self.outcome.status in ("written", "unchanged", "planned")


def restore(config: Config, reach: Reach, version: int, force: bool, dry_run: bool) -> Restored | Failed | Declined:
    runtime = runtime_for(reach)
    shell = runtime.shell()
    reached = connect(config, reach, shell)
    if len(reached) != 1:
        return Declined("restore works on one cluster: name it with --cluster")
    ((name, ports),) = reached.items()
    if isinstance(ports, SyncError):
        return Failed.of(name, ports)
    # Restores protect what the Lambdas protect (break-glass entries), and whoever runs them.
    options = Options(
        own_arns=frozenset({shell.own_arn()}),
        dry_run=dry_run,
        reason=f"restore of backup {version}",
        instance=instance(),
    )
    observer = runtime.observer(name)
    policy = guardrail_policy(config, options, ports.caller_arn)
    writer = aws_auth_writer(config, ports, policy, observer, runtime.sleep)
    try:
        plan = Plan(writer.plan_restore(version, force=force))
    except NotFound as err:
        return Declined(str(err))
    applied = applier(dry_run, writer, ports.bindings, observer).apply(plan, options.reason)
    return Restored(name, version, dry_run, applied.identities)
