"""Runs reconciles for every configured cluster, with the ports a ``Shell`` builds. Imported lazily
by the handlers: this is where the kubernetes client gets loaded (through the default shell).

One broken cluster never blocks the others: each is tried (unless the invocation's deadline leaves
less than a cluster's budget), in its own time scope (``chalicelib.model.deadlines``): reaching it
(AssumeRole, DescribeCluster) and reconciling it, request by request, stop at its first transport
failure or when the deadline comes too near. Every failure is caught per cluster — a ``SyncError``,
or any other exception, which is a bug: logged with its traceback and counted ``kind=unexpected``
— and after all were tried any failure (transient, permanent, unexpected or a refusal) is raised,
naming each failed cluster, so that Lambda's Errors metric, its retries and the DLQ see it.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Tracer

from chalicelib.adapters.observability import SERVICE
from chalicelib.config import Config
from chalicelib.config.settings import instance, timeouts
from chalicelib.engine.events import Trigger
from chalicelib.engine.sso import read_identity_center
from chalicelib.engine.workitems import WorkItem
from chalicelib.errors import PermanentError, SyncError, TransientError
from chalicelib.model import deadlines
from chalicelib.model.ports import ClusterPorts, IamPort, IdentityStorePort, Observer, Shell
from chalicelib.model.principals import PrincipalScope
from chalicelib.model.snapshot import IamSnapshot
from chalicelib.model.sso import SsoScope, SsoSnapshot
from chalicelib.run.reconcile import ClusterReport, Options, identity_backend, reconcile_cluster
from chalicelib.run.results import as_json, failure
from chalicelib.run.runtime import Runtime
from chalicelib.run.scope import resolve_scope

# X-Ray (aws_xray_sdk costs ~180 ms to import: created here, on the path that talks to clusters,
# not in the handlers' import). Off outside Lambda and wherever POWERTOOLS_TRACE_DISABLED=true.
# Only botocore is patched, the one traced library the service calls (patching all of them imported
# sqlite3 and patched requests, neither used; the kubernetes client's urllib3 is not traced either way).
tracer = Tracer(service=SERVICE, patch_modules=("botocore",))


# A cluster as the loop receives it: its ports, the error that prevented them, or how to reach it —
# called inside the cluster's own scope, so that AssumeRole and DescribeCluster count against its
# budget and the deadline, not before any of them is checked.
Reach = ClusterPorts | SyncError | Callable[[], ClusterPorts]


class UnexpectedError(PermanentError):
    """Anything but a SyncError out of one cluster's run: a bug (or an input no check foresaw), so
    it fails that cluster, named, and never the others."""


@tracer.capture_method
def run_event(
    config: Config, trigger: Trigger, runtime: Runtime, deadline: float | None = None, only: str | None = None
) -> dict[str, Any]:
    """``only``: that one cluster (a work item's), whose ledger alone names a deleted group's members."""
    shell = runtime.shell()
    if trigger.renamed_groups:
        raise refuse_renamed(trigger, runtime.observer(""))
    # A deleted group's former members are read from the clusters: reached before the loop then.
    reached = connect(config, shell, runtime, only, deadline) if trigger.deleted_groups else None
    clusters: Mapping[str, Reach] = reached if reached is not None else reachable(config, shell, only)
    iam = shell.iam(config.iam_role)
    scope = resolve_scope(
        trigger,
        members=iam.members,
        former_members=lambda groups: _former_members(config, reached or {}, groups, runtime, deadline),
    )
    snapshot = iam.scoped_snapshot(scope.names("user"), scope.names("role"))
    options = Options(
        instance=instance(),
        event_id=trigger.event_id,
        own_arns=frozenset({shell.own_arn()}),
        reason=f"{trigger.event_name} {trigger.event_id}",
        rebinds=trigger.rebinds,
    )
    sso = identity_center(config, shell, trigger.sso, runtime.observer("")) if trigger.sso else None
    return lambda_result(reconcile_clusters(config, clusters, snapshot, scope, options, runtime, deadline, sso))


@tracer.capture_method
def run_full(
    config: Config, runtime: Runtime, deadline: float | None = None, only: str | None = None
) -> dict[str, Any]:
    shell = runtime.shell()
    clusters = reachable(config, shell, only)
    view = IamView(shell.iam(config.iam_role), clock=runtime.clock)
    options = Options(own_arns=frozenset({shell.own_arn()}), instance=instance())
    sso = identity_center(config, shell, None, runtime.observer(""))
    return lambda_result(reconcile_clusters(config, clusters, view, None, options, runtime, deadline, sso))


def identity_center(config: Config, shell: Shell, scope: SsoScope | None, observer: Observer) -> SsoSnapshot | None:
    """IAM Identity Center's granted groups, read once for every cluster (``scope`` None: whole); None
    when none is granted. A store that cannot be reached (its role not assumed) fails its groups
    alone: their bindings are kept, everything else is reconciled."""
    settings = config.identity_center
    if settings is None or not settings.group_grants:
        return None
    with deadlines.scope("Identity Store read", None):
        try:
            store: IdentityStorePort | SyncError = shell.identity_store(settings)
        except SyncError as err:
            store = err
        return read_identity_center(settings, store, scope, observer)


def run_item(config: Config, item: WorkItem, runtime: Runtime, deadline: float | None = None) -> dict[str, Any]:
    """One work item: its cluster alone, a full run or the item's principals, read again from IAM."""
    if item.everyone:
        return run_full(config, runtime, deadline, only=item.cluster)
    return run_event(config, item.trigger(), runtime, deadline, only=item.cluster)


class IamView:
    """A full run's view of IAM. The first read fails the run before any write; later, a cluster is
    planned from a read at most ``fresh_for`` seconds old, and what a plan would change is read again
    (``reread``) before it is written, so that an event handled while the run went from cluster to
    cluster (bob removed from the group) is never undone by an older read."""

    def __init__(self, iam: IamPort, fresh_for: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._iam, self._fresh_for, self._clock = iam, fresh_for, clock
        self._snapshot, self._read_at = iam.full_snapshot(), clock()

    def current(self) -> IamSnapshot:
        if self._clock() - self._read_at > self._fresh_for:
            self._snapshot, self._read_at = self._iam.full_snapshot(), self._clock()
        return self._snapshot

    def reread(self, scope: PrincipalScope | None) -> IamSnapshot:
        if scope is None:
            self._snapshot, self._read_at = self._iam.full_snapshot(), self._clock()
            return self._snapshot
        return self._iam.scoped_snapshot(scope.names("user"), scope.names("role"))


def reachable(config: Config, shell: Shell, only: str | None = None) -> dict[str, Reach]:
    """How to reach each configured cluster (``only`` one, when named), for the loop to call in turn."""
    return {c.name: _reacher(shell, c) for c in config.clusters if only in (None, c.name)}


def _reacher(shell: Shell, cluster: Any) -> Callable[[], ClusterPorts]:
    return lambda: shell.cluster(cluster)


def connect(
    config: Config, shell: Shell, runtime: Runtime, only: str | None = None, deadline: float | None = None
) -> dict[str, ClusterPorts | SyncError]:
    """The ports of each configured cluster (``only`` one, when named), or the error that prevents
    them, each reached in its own scope; for what needs every cluster before the loop."""
    reached: dict[str, ClusterPorts | SyncError] = {}
    for name, reach in reachable(config, shell, only).items():
        with deadlines.scope(f"cluster {name}", deadline):
            try:
                _check_time_left(deadline, runtime.clock)
                reached[name] = _reached(reach)
            except SyncError as err:
                reached[name] = err
            except MemoryError:
                raise
            except Exception as err:
                reached[name] = _unexpected(runtime.observer(name), err)
    return reached


def reconcile_clusters(
    config: Config,
    clusters: Mapping[str, Reach],
    snapshot: IamSnapshot | IamView,
    scope: PrincipalScope | None,
    options: Options,
    runtime: Runtime,
    deadline: float | None = None,
    sso: SsoSnapshot | None = None,
) -> dict[str, ClusterReport | SyncError]:
    """Each cluster in turn, in its own scope; a failure is returned in its place, never stopping
    the others. A cluster is not started when the invocation's ``deadline`` (time.monotonic())
    leaves less than one cluster's budget, and stops, request by request, at its first transport
    failure or when one request's bound no longer fits: it is retried instead."""
    results: dict[str, ClusterReport | SyncError] = {}
    options = replace(options, sleep=runtime.sleep, dry_run=options.dry_run or config.paused)
    for name, reach in clusters.items():
        observer = runtime.observer(name)
        started = runtime.clock()
        with deadlines.scope(f"cluster {name}", deadline):
            try:
                if isinstance(reach, SyncError):
                    raise reach
                _check_time_left(deadline, runtime.clock)
                ports = _reached(reach)
                if isinstance(snapshot, IamView):
                    current, run = snapshot.current(), replace(options, reread=snapshot.reread)
                else:
                    current, run = snapshot, options
                report = reconcile_cluster(config, ports, current, observer, scope, run, sso)
                results[name] = report
                if config.paused:
                    _paused(observer, report)
                else:
                    _count_outcome(observer, report, runtime.observer("") if scope is None else None)
            except SyncError as err:
                transient = isinstance(err, TransientError)
                observer.error(
                    "reconcile failed; " + ("will be retried" if transient else "retrying will not help"),
                    detail=str(err),
                    error=type(err).__name__,
                )
                observer.count("ReconcileFailures", kind=err.kind)  # transient, permanent, managed-by-other-instance
                results[name] = err
            except MemoryError:
                # Not caught: once an allocation failed the process may not even manage to log;
                # Lambda replaces the execution environment, and the invocation is retried.
                raise
            except Exception as err:  # KeyboardInterrupt and SystemExit are not Exceptions: they still stop the run
                results[name] = _unexpected(observer, err)
            finally:
                observer.milliseconds("ReconcileDuration", (runtime.clock() - started) * 1000)
    return results


def _count_outcome(observer: Observer, report: ClusterReport, heartbeat: Observer | None) -> None:
    """A refusal is a failure; a full run of a cluster that completed is the heartbeat, counted on
    ``heartbeat``, the observer of no cluster (``FullRunsSucceeded``, dimension ``service`` only):
    the stack's FullRunHeartbeatAlarm fires when none came for two schedule periods (a disabled
    schedule, a configuration or role that stops every run, workers that never run)."""
    if failure(report):
        observer.count("ReconcileFailures", kind="refused")
    elif heartbeat is not None:
        heartbeat.count("FullRunsSucceeded")


def _paused(observer: Observer, report: ClusterReport) -> None:
    """``paused: true``: the run was planned and nothing written. Logged with what it would have
    changed and counted (RunsPaused); no heartbeat, so a pause that outlasts its reason is seen."""
    observer.warning("paused: planned, nothing written", wouldChange=report.changed)
    observer.count("RunsPaused")


def _reached(reach: Reach) -> ClusterPorts:
    if isinstance(reach, SyncError):
        raise reach
    return reach() if callable(reach) else reach


def _unexpected(observer: Observer, err: Exception) -> UnexpectedError:
    """Logged with the traceback's innermost frames (a RecursionError's is a thousand deep), counted."""
    observer.error(
        "reconcile failed: unexpected error (a bug: please report it with this log line)",
        detail=f"{type(err).__name__}: {str(err)[:500]}",
        error=type(err).__name__,
        traceback="".join(traceback.format_exception(err, limit=-30)),
    )
    observer.count("ReconcileFailures", kind="unexpected")
    return UnexpectedError(f"unexpected {type(err).__name__}: {str(err)[:500]}")


def lambda_result(results: dict[str, ClusterReport | SyncError]) -> dict[str, Any]:
    """What a handler returns. After every cluster was tried, any failure (transient or permanent,
    refusals included) is raised, naming each failed cluster and why, so that Lambda's Errors metric,
    its retries and the DLQ see it."""
    failures = {name: why for name, result in results.items() if (why := failure(result))}
    if failures:
        message = "reconcile failed for " + "; ".join(f"cluster {name}: {why}" for name, why in failures.items())
        if any(isinstance(results[name], TransientError) for name in failures):
            raise TransientError(message)
        raise PermanentError(message)
    return {name: as_json(result) for name, result in results.items()}


def refuse_renamed(trigger: Trigger, observer: Observer) -> PermanentError:
    """A configured group was renamed: nobody is revoked (full runs keep its members), and the
    operator is told, loudly, what to change (logged, counted; a batch fails that record alone)."""
    message = "; ".join(
        f"configured IAM group {old!r} was renamed to {new!r} by {trigger.actor or 'someone'} in event "
        f"{trigger.event_id}: update the configuration (identities.groups[].iamGroup)"
        for old, new in trigger.renamed_groups
    )
    observer.error("configured group renamed", detail=message)
    observer.count("Refusals", reason="configured-group-renamed")
    return PermanentError(message)


def _check_time_left(deadline: float | None, clock: Callable[[], float]) -> None:
    if deadline is None:
        return
    budget = timeouts().budget
    left = deadline - clock()
    if left < budget:
        raise TransientError(
            f"not tried: {left:.0f} s left in this invocation, under one cluster's budget ({budget:.0f} s)"
        )


def _former_members(
    config: Config,
    clusters: dict[str, ClusterPorts | SyncError],
    groups: tuple[str, ...],
    runtime: Runtime,
    deadline: float | None,
) -> frozenset[str]:
    """A deleted group's members can no longer be listed: what the service recorded says whom it mapped."""
    users: set[str] = set()  # as the ledger or the entries spell them
    for name, ports in clusters.items():
        if isinstance(ports, SyncError):
            continue
        observer = runtime.observer(name)
        with deadlines.scope(f"cluster {name}", deadline):
            try:
                users |= identity_backend(
                    config, ports, Options(sleep=runtime.sleep, instance=instance()), observer
                ).members_of(groups)
            except SyncError as err:
                observer.warning("former members of a deleted group not read", detail=str(err))
            except MemoryError:
                raise
            except Exception as err:  # the cluster's own run will fail the same way, counted there
                observer.warning("former members of a deleted group not read", detail=repr(err)[:500])
    return frozenset(users)
