"""What the commands share: which clusters a command reaches, and how (an EKS token, or a kubeconfig
context), and the results every command uses for a cluster it could not reach or a request it declines."""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.config import Config
from chalicelib.errors import SyncError, TransientError
from chalicelib.model.ports import ClusterPorts, Shell
from chalicelib.run import runner
from chalicelib.run.runtime import Runtime, current_runtime


@dataclass(frozen=True)
class Reach:
    """``--cluster``, ``--kubeconfig``, ``--context``: which configured clusters, reached how; and the
    runtime the command runs with (``cli.main``'s; by default the current one)."""

    cluster: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    runtime: Runtime | None = None


@dataclass(frozen=True)
class Failed:
    """A cluster the command could not read or act on, and why."""

    cluster: str
    error: str
    error_kind: str  # transient | permanent
    error_type: str

    @classmethod
    def of(cls, cluster: str, err: SyncError) -> Failed:
        kind = "transient" if isinstance(err, TransientError) else "permanent"
        return cls(cluster, str(err), kind, type(err).__name__)


@dataclass(frozen=True)
class Declined:
    """A request the command does not carry out (one cluster wanted, a backup not kept), and why."""

    message: str


def runtime_for(reach: Reach) -> Runtime:
    """The command's runtime, its shell reaching the kubeconfig's context when one is named."""
    runtime = reach.runtime or current_runtime()
    if reach.kubeconfig or reach.context:
        return replace(runtime, shell=lambda: _kubeconfig_shell(reach))
    return runtime


def _kubeconfig_shell(reach: Reach) -> Shell:
    from chalicelib.adapters.shell import KubeconfigShell  # noqa: PLC0415 - the kubernetes client only when needed

    return KubeconfigShell(reach.kubeconfig, reach.context)


def shell_for(reach: Reach) -> Shell:
    return runtime_for(reach).shell()


def connect(config: Config, reach: Reach, shell: Shell) -> dict[str, ClusterPorts | SyncError]:
    named = [c for c in config.clusters if reach.cluster in (None, c.name)]
    if (reach.kubeconfig or reach.context) and len(named) != 1:
        raise SystemExit("with --kubeconfig/--context, name the configured cluster it reaches with --cluster")
    return runner.connect(config, shell, runtime_for(reach), reach.cluster)
