"""``validate``: a configuration file checked (by the loader, before this runs), and, when asked, a
Chalice stage's deploy settings against it (``--deploy``) and IAM and the clusters (``--live``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chalicelib.config import CATALOGUE, CATALOGUE_DATE, Config, ConfigError, Problem, grantable_cluster_roles
from chalicelib.deploy import checks as deploy_checks
from chalicelib.entry.commands.common import Reach, connect, shell_for
from chalicelib.errors import NotFound, SyncError
from chalicelib.model.ports import ClusterPorts


@dataclass(frozen=True)
class DeployChecked:
    stage: str
    problems: tuple[str, ...]


@dataclass(frozen=True)
class LiveChecked:
    problems: tuple[str, ...] = ()
    error: str = ""  # an operator error (no credentials) that stopped the checks
    notes: tuple[str, ...] = ()  # worth knowing, not wrong (the access-policy catalogue is out of date)


@dataclass(frozen=True)
class Validated:
    source: str
    summary: str = ""  # empty when the file is invalid
    problems: tuple[Problem, ...] = ()  # the file's, when it is invalid
    deploy: DeployChecked | None = None
    live: LiveChecked | None = None

    @property
    def ok(self) -> bool:
        deploy_ok = self.deploy is None or not self.deploy.problems
        live_ok = self.live is None or (not self.live.problems and not self.live.error)
        return not self.problems and deploy_ok and live_ok


def validate(
    source: str, loaded: Config | ConfigError, deploy: str | None, live: Reach | None, root: Path
) -> Validated:
    """``loaded``: the configuration, or why it is invalid. Checks stop at the first kind that fails:
    no live checks on a stage that cannot be deployed."""
    if isinstance(loaded, ConfigError):
        return Validated(source, problems=tuple(loaded.problems))
    result = Validated(source, loaded.summary())
    if deploy:
        checked = DeployChecked(deploy, tuple(deploy_checks.project_problems(root, deploy, loaded)))
        result = Validated(source, result.summary, deploy=checked)
        if checked.problems:
            return result
    if live is None:
        return result
    try:
        notes: list[str] = []
        found = LiveChecked(tuple(live_problems(loaded, live, notes)), notes=tuple(notes))
    except SyncError as err:
        found = LiveChecked(error=str(err))
    return Validated(source, result.summary, deploy=result.deploy, live=found)


def live_problems(config: Config, reach: Reach, notes: list[str] | None = None) -> list[str]:
    shell = shell_for(reach)
    problems = shell.iam(config.iam_role).missing(
        [g.iam_group for g in config.identities.groups], [r.iam_role for r in config.identities.roles]
    )
    listed = {ns for g in config.namespace_grants for ns in g.namespaces or ()}
    for name, ports in connect(config, reach, shell).items():
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
        problems += _catalogue_problems(config, name, ports, notes if notes is not None else [])
    return problems


def _catalogue_problems(config: Config, name: str, ports: ClusterPorts, notes: list[str]) -> list[str]:
    """The shipped catalogue against EKS's ListAccessPolicies: a granted policy EKS does not offer is a
    problem; any other difference is a note (the catalogue is dated; AWS adds policies over time)."""
    if ports.access_policies is None:
        return []
    try:
        offered = set(ports.access_policies.offered_policies())
    except SyncError as err:
        return [f"cluster {name}: ListAccessPolicies: {err}"]
    granted = config.granted_access_policies()
    new, gone = sorted(offered - CATALOGUE), sorted(CATALOGUE - offered - granted)
    if new:
        notes.append(
            f"cluster {name}: EKS offers access policies the catalogue of {CATALOGUE_DATE} lacks: {', '.join(new)}"
        )
    if gone:
        notes.append(
            f"cluster {name}: the catalogue of {CATALOGUE_DATE} names policies EKS does not offer: {', '.join(gone)}"
        )
    return [f"cluster {name}: EKS offers no access policy {p!r}" for p in sorted(granted - offered)]
