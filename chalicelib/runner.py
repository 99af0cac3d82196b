"""Runs reconciles for every configured cluster with the function's own AWS identity. Imported
lazily by the handlers: this is where the kubernetes client gets loaded.

One broken cluster never blocks the others: each is tried, and a transient failure anywhere is
raised at the end so that EventBridge / Lambda retry the whole (idempotent) run.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
from aws_lambda_powertools import Tracer

from chalicelib.adapters.configmaps import ConfigMaps
from chalicelib.adapters.eks import api_client, cluster_access
from chalicelib.adapters.eks_token import TokenSource
from chalicelib.adapters.iam import IamReader, iam_client
from chalicelib.awsauth.ledger import Ledger, LedgerError
from chalicelib.config import Cluster, Config
from chalicelib.errors import SyncError, TransientError
from chalicelib.events import Trigger
from chalicelib.observability import SERVICE, Observer, logger
from chalicelib.ownership import AWS_AUTH_NAME, AWS_AUTH_NAMESPACE, LEDGER_ANNOTATION
from chalicelib.principals import PrincipalScope, canonical_arn
from chalicelib.reconcile import ClusterReport, Options, reconcile_cluster
from chalicelib.snapshot import IamSnapshot

TOKENS = TokenSource()
# X-Ray (aws_xray_sdk costs ~180 ms to import: created here, on the path that talks to clusters,
# not in the handlers' import). Off outside Lambda and wherever POWERTOOLS_TRACE_DISABLED=true.
tracer = Tracer(service=SERVICE)
_own_arns: dict[str, str] = {}


@tracer.capture_method
def run_event(config: Config, trigger: Trigger, session: boto3.Session | None = None) -> dict[str, Any]:
    session = session or boto3.Session()
    clients = clients_for(config, session)
    scope = trigger.scope
    if trigger.deleted_groups:
        scope = PrincipalScope(scope.users | _former_members(clients, trigger.deleted_groups), scope.roles)
    snapshot = IamReader(iam_client(session)).scoped_snapshot(scope.users, scope.roles)
    options = Options(
        event_id=trigger.event_id,
        own_arns=frozenset({own_arn(session)}),
        reason=f"{trigger.event_name} {trigger.event_id}",
    )
    return _lambda_result(reconcile_clusters(config, clients, snapshot, scope, options))


@tracer.capture_method
def run_full(config: Config, session: boto3.Session | None = None) -> dict[str, Any]:
    session = session or boto3.Session()
    clients = clients_for(config, session)
    snapshot = IamReader(iam_client(session)).full_snapshot()
    options = Options(own_arns=frozenset({own_arn(session)}))
    return _lambda_result(reconcile_clusters(config, clients, snapshot, None, options))


def reconcile_clusters(
    config: Config,
    clients: dict[str, Any],
    snapshot: IamSnapshot,
    scope: PrincipalScope | None,
    options: Options,
) -> dict[str, ClusterReport | SyncError]:
    """Each cluster in turn; a failure is returned in its place, never stopping the others."""
    results: dict[str, ClusterReport | SyncError] = {}
    for name, client in clients.items():
        observer = Observer(name)
        started = time.monotonic()
        try:
            if isinstance(client, SyncError):
                raise client
            results[name] = reconcile_cluster(config, name, client, snapshot, scope, options, observer)
        except SyncError as err:
            transient = isinstance(err, TransientError)
            observer.error(
                "reconcile failed; " + ("will be retried" if transient else "retrying will not help"), detail=str(err)
            )
            observer.count("ReconcileFailures", kind="transient" if transient else "permanent")
            results[name] = err
        finally:
            observer.milliseconds("ReconcileDuration", (time.monotonic() - started) * 1000)
    return results


def _lambda_result(results: dict[str, ClusterReport | SyncError]) -> dict[str, Any]:
    """What a handler returns; a transient failure in any cluster is raised so the run is retried."""
    transient = [f"{name}: {r}" for name, r in results.items() if isinstance(r, TransientError)]
    if transient:
        raise TransientError("; ".join(transient))
    return {
        name: summarize(r) if isinstance(r, ClusterReport) else {"status": "failed", "error": str(r)}
        for name, r in results.items()
    }


def summarize(report: ClusterReport) -> dict[str, Any]:
    return {
        "awsAuth": report.aws_auth.status,
        "changes": [c.describe() for c in report.aws_auth.changes],
        "conflicts": [c.describe() for c in report.aws_auth.conflicts],
        "refusals": [r.render() for r in report.aws_auth.refusals] + [r.render() for r in report.desired.refusals],
        "bindings": [a.describe() for a in report.bindings.done],
        "bindingProblems": report.bindings.skipped + report.bindings.conflicts + report.bindings.refused,
    }


def clients_for(config: Config, session: boto3.Session, only: str | None = None) -> dict[str, Any]:
    """A kubernetes client per configured cluster (or the error that prevents one)."""
    return {c.name: _client(c, session) for c in config.clusters if only in (None, c.name)}


def _client(cluster: Cluster, session: boto3.Session) -> Any:
    try:
        access = cluster_access(cluster, session)
        if access.authentication_mode == "API":
            logger.warning(
                "cluster uses access entries only: aws-auth is ignored by EKS", extra={"cluster": cluster.name}
            )
        return api_client(access, TOKENS)
    except SyncError as err:
        return err


def own_arn(session: boto3.Session) -> str:
    credentials = session.get_credentials()
    key = credentials.access_key if credentials else ""
    if key not in _own_arns:
        _own_arns[key] = canonical_arn(session.client("sts").get_caller_identity()["Arn"])
    return _own_arns[key]


def _former_members(clients: dict[str, Any], groups: tuple[str, ...]) -> frozenset[str]:
    """A deleted group's members can no longer be listed: the ledger remembers whom it mapped."""
    wanted = {f"identities.groups[{g}]".lower() for g in groups}
    users: set[str] = set()
    for client in clients.values():
        if isinstance(client, SyncError):
            continue
        observed = ConfigMaps(client).read(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME)
        try:
            ledger = Ledger.parse(observed.annotations.get(LEDGER_ANNOTATION) if observed else None)
        except LedgerError:
            continue
        for record in ledger.records.values():
            if any(w in record.source.lower() for w in wanted):
                users.add(record.arn.rsplit("/", 1)[-1].lower())
    return frozenset(users)
