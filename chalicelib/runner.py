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
from chalicelib.errors import PermanentError, SyncError, TransientError
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
    clients = {c.name: _client(c, session) for c in config.clusters}
    scope = trigger.scope
    if trigger.deleted_groups:
        scope = PrincipalScope(scope.users | _former_members(clients, trigger.deleted_groups), scope.roles)
    snapshot = IamReader(iam_client(session)).scoped_snapshot(scope.users, scope.roles)
    options = Options(
        event_id=trigger.event_id,
        own_arns=frozenset({_own_arn(session)}),
        reason=f"{trigger.event_name} {trigger.event_id}",
    )
    return _each_cluster(config, clients, snapshot, scope, options)


@tracer.capture_method
def run_full(config: Config, session: boto3.Session | None = None, options: Options | None = None) -> dict[str, Any]:
    session = session or boto3.Session()
    clients = {c.name: _client(c, session) for c in config.clusters}
    snapshot = IamReader(iam_client(session)).full_snapshot()
    options = options or Options(own_arns=frozenset({_own_arn(session)}))
    return _each_cluster(config, clients, snapshot, None, options)


def _each_cluster(
    config: Config,
    clients: dict[str, Any],
    snapshot: IamSnapshot,
    scope: PrincipalScope | None,
    options: Options,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    transient: list[str] = []
    for cluster in config.clusters:
        observer = Observer(cluster.name)
        started = time.monotonic()
        try:
            client = clients[cluster.name]
            if isinstance(client, SyncError):
                raise client
            report = reconcile_cluster(config, cluster.name, client, snapshot, scope, options, observer)
            results[cluster.name] = summarize(report)
        except TransientError as err:
            observer.error("reconcile failed; will be retried", detail=str(err))
            observer.count("ReconcileFailures", kind="transient")
            transient.append(f"{cluster.name}: {err}")
            results[cluster.name] = {"status": "failed", "error": str(err)}
        except PermanentError as err:
            observer.error("reconcile failed; retrying will not help", detail=str(err))
            observer.count("ReconcileFailures", kind="permanent")
            results[cluster.name] = {"status": "failed", "error": str(err)}
        finally:
            observer.milliseconds("ReconcileDuration", (time.monotonic() - started) * 1000)
    if transient:
        raise TransientError("; ".join(transient))
    return results


def summarize(report: ClusterReport) -> dict[str, Any]:
    return {
        "awsAuth": report.aws_auth.status,
        "changes": [c.describe() for c in report.aws_auth.changes],
        "conflicts": [c.describe() for c in report.aws_auth.conflicts],
        "refusals": [r.render() for r in report.aws_auth.refusals] + [r.render() for r in report.desired.refusals],
        "bindings": [a.describe() for a in report.bindings.done],
        "bindingProblems": report.bindings.skipped + report.bindings.conflicts + report.bindings.refused,
    }


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


def _own_arn(session: boto3.Session) -> str:
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
