"""``plan`` and ``apply``: a full reconcile of every configured cluster (or one), display only or
written, with the Lambdas' stages and guardrails; whoever runs it is protected like the service."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.config import Config
from chalicelib.config.settings import instance
from chalicelib.entry.commands.common import Reach, connect, runtime_for
from chalicelib.run import runner
from chalicelib.run.reconcile import Options
from chalicelib.run.results import Result, changed, succeeded


@dataclass(frozen=True)
class RemovedBackups:
    """``uninstall``'s last step in one cluster: the aws-auth backups it removed (a dry run: would remove)."""

    cluster: str
    names: tuple[str, ...]
    error: str | None = None  # why the others were not removed
    kept: str | None = None  # why none was removed although nothing failed (another instance's entries)


@dataclass(frozen=True)
class Reconciled:
    dry_run: bool
    clusters: tuple[tuple[str, Result], ...]  # (name, its report or why it failed), in configured order
    backups: tuple[RemovedBackups, ...] = ()  # uninstall only: per cluster that had any

    @property
    def ok(self) -> bool:
        return all(succeeded(r) for _, r in self.clusters) and not any(b.error for b in self.backups)

    @property
    def changed(self) -> bool:
        return any(changed(r) for _, r in self.clusters) or any(b.names for b in self.backups)


def reconcile(config: Config, reach: Reach, dry_run: bool, force: bool = False, exclusive: bool = True) -> Reconciled:
    """``exclusive``: a cluster another instance manages is refused (False: uninstall's own removals)."""
    runtime = runtime_for(reach)
    shell = runtime.shell()
    reached = connect(config, reach, shell)
    view = runner.IamView(shell.iam(config.iam_role), clock=runtime.clock)
    options = Options(
        instance=instance(),
        dry_run=dry_run,
        force_deletions=force,
        own_arns=frozenset({shell.own_arn()}),  # whoever runs this must not lock themselves out
        reason="eks-iam-sync plan" if dry_run else "eks-iam-sync apply",
        exclusive=exclusive,
    )
    sso = runner.identity_center(config, shell, None, runtime.observer(""))  # as reconcile_all reads it
    results = runner.reconcile_clusters(config, reached, view, None, options, runtime, sso=sso)
    return Reconciled(dry_run, tuple(results.items()))
