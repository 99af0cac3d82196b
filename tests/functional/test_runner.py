"""runner: one broken cluster never blocks another. A cluster the shell cannot reach, or whose
reconcile fails, is reported in its place; once every cluster was tried, any failure is raised,
naming each failed cluster: transient when one of them is (Lambda retries the idempotent run),
permanent otherwise. A failed IAM read stops the run before anything is written."""

from __future__ import annotations

import json
import time

import pytest

from chalicelib.config import Cluster, Config
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.events import Trigger, read_event
from chalicelib.errors import Forbidden, NotFound, PermanentError, SyncError, TransientError
from chalicelib.model import deadlines
from chalicelib.model.ports import ClusterPorts
from chalicelib.run import runner
from chalicelib.run.reconcile import ClusterReport, Options
from chalicelib.run.results import as_json
from chalicelib.run.runtime import Runtime
from tests.functional.fakes import GROUP, FakeCluster, FakeShell, RecordingObserver, user_arn
from tests.harness.cloudtrail import iam_event


def mapped_users(cluster: FakeCluster) -> set[str]:
    return {e.arn for e in read_aws_auth(cluster.aws_auth.data).entries("mapUsers")}


@pytest.fixture
def alice(shell: FakeShell) -> str:
    shell.iam_port.add_user("alice", groups=[GROUP])
    return user_arn("alice")


def reconcile_each(shell: FakeShell, config: Config) -> dict[str, ClusterReport | SyncError]:
    """What the handlers and the CLI both do: every cluster in turn, each failure in its place."""
    options = Options(own_arns=frozenset({shell.arn}))
    runtime = Runtime(shell=lambda: shell, sleep=lambda seconds: None)
    snapshot = shell.iam_port.full_snapshot()
    return runner.reconcile_clusters(config, runner.connect(config, shell, runtime), snapshot, None, options, runtime)


def test_a_cluster_the_shell_cannot_reach_is_failed_in_its_place(shell, config, alice) -> None:
    shell.fail("cluster", Forbidden("eks:DescribeCluster: AccessDeniedException"), target="fn-east", always=True)
    results = reconcile_each(shell, config)
    assert as_json(results["fn-east"]) == {
        "status": "failed",
        "error": "eks:DescribeCluster: AccessDeniedException",
        "errorKind": "permanent",
        "errorType": "Forbidden",
    }
    assert as_json(results["fn-west"])["status"] == "changes" and alice in mapped_users(shell.clusters["fn-west"])
    assert shell.clusters["fn-east"].calls() == {}


def test_a_permanent_failure_is_raised_once_every_cluster_was_tried(runtime, shell, config, alice) -> None:
    shell.fail("cluster", Forbidden("eks:DescribeCluster: AccessDeniedException"), target="fn-east", always=True)
    with pytest.raises(PermanentError) as raised:
        runner.run_full(config, runtime)
    assert (
        str(raised.value)
        == "reconcile failed for cluster fn-east: Forbidden: eks:DescribeCluster: AccessDeniedException"
    )
    assert alice in mapped_users(shell.clusters["fn-west"])


def test_a_permanent_failure_during_a_reconcile_is_returned_in_its_place(shell, config, alice) -> None:
    shell.clusters["fn-east"].bindings.fail("namespaces", "forbidden", always=True)
    results = reconcile_each(shell, config)
    assert isinstance(results["fn-east"], Forbidden) and "403" in str(results["fn-east"])
    assert isinstance(results["fn-west"], ClusterReport) and alice in mapped_users(shell.clusters["fn-west"])


def test_a_transient_failure_is_raised_after_every_cluster_was_tried(runtime, shell, config, alice) -> None:
    shell.clusters["fn-east"].bindings.fail("list_owned", "timeout")  # the first cluster in the configuration
    with pytest.raises(TransientError, match=r"^reconcile failed for cluster fn-east: TransientError: read timed out$"):
        runner.run_full(config, runtime)
    assert alice in mapped_users(shell.clusters["fn-west"])
    assert shell.clusters["fn-west"].bindings.writes  # fn-west's bindings were applied too
    assert runner.run_full(config, runtime)["fn-east"]["status"] == "changes"  # the retry succeeds


def test_any_transient_failure_makes_the_whole_run_retryable(runtime, shell, config, alice) -> None:
    shell.fail("cluster", TransientError("connection refused"), target="fn-east", always=True)
    shell.fail("cluster", Forbidden("AccessDeniedException"), target="fn-west", always=True)
    with pytest.raises(TransientError) as raised:
        runner.run_full(config, runtime)
    assert "cluster fn-east: TransientError: connection refused" in str(raised.value)
    assert "cluster fn-west: Forbidden: AccessDeniedException" in str(raised.value)


def test_an_event_run_reads_only_its_principals_and_writes_with_the_event_id(runtime, shell, config, alice) -> None:
    event = iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "alice"}, event_id="evt-1")
    trigger = read_event(event, config)
    assert isinstance(trigger, Trigger)
    result = runner.run_event(config, trigger, runtime)
    assert {r["status"] for r in result.values()} == {"changes"}
    assert shell.iam_port.requests == [(("alice",), ())] and "full_snapshot" not in shell.iam_port.calls
    for cluster in shell.clusters.values():
        assert all(b.annotations["eks-iam-sync.io/event-id"] == "evt-1" for b in cluster.bindings.owned().values())


def test_delete_group_finds_former_members_in_reachable_clusters_only(runtime, shell, config, alice) -> None:
    runner.run_full(config, runtime)
    shell.iam_port.delete_group(GROUP)
    shell.fail("cluster", NotFound("cluster fn-west not found"), target="fn-west", always=True)
    trigger = read_event(iam_event("DeleteGroup", {"groupName": GROUP}), config)
    assert isinstance(trigger, Trigger)
    with pytest.raises(PermanentError, match="cluster fn-west: NotFound"):
        runner.run_event(config, trigger, runtime)
    assert shell.iam_port.requests[-1] == (("alice",), ())
    assert alice not in mapped_users(shell.clusters["fn-east"])
    assert alice in mapped_users(shell.clusters["fn-west"])  # left for the retry or the schedule


def test_a_failed_iam_read_stops_the_run_before_any_write(runtime, shell, config, alice) -> None:
    shell.iam_port.fail("full_snapshot", "transient")
    with pytest.raises(TransientError, match="503"):
        runner.run_full(config, runtime)
    assert shell.writes() == {name: [] for name in shell.clusters}


def test_a_caller_without_credentials_stops_the_run_before_any_write(runtime, shell, config) -> None:
    shell.fail("own_arn", Forbidden("no AWS credentials found"))
    with pytest.raises(Forbidden, match="no AWS credentials"):
        runner.run_full(config, runtime)
    assert shell.writes() == {name: [] for name in shell.clusters}


def emitted(out: str, name: str) -> list[dict[str, object]]:
    """The EMF metrics of ``name`` printed to stdout, as Lambda would ship them."""
    return [m for line in out.splitlines() if line.startswith("{") and name in (m := json.loads(line))]


def test_an_unexpected_error_in_one_cluster_fails_that_cluster_counted_and_named_never_the_others(
    runtime, shell, config, alice, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """aws-auth nested thousands deep, or any bug: not a SyncError, and it must not escape the loop."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")

    def too_deep(namespace: str, name: str) -> None:
        raise RecursionError("maximum recursion depth exceeded while composing a node")

    monkeypatch.setattr(shell.clusters["fn-east"].config_maps, "read", too_deep)  # the first cluster
    with pytest.raises(PermanentError) as raised:
        runner.run_full(config, runtime)
    assert str(raised.value) == (
        "reconcile failed for cluster fn-east: UnexpectedError: "
        "unexpected RecursionError: maximum recursion depth exceeded while composing a node"
    )
    assert alice in mapped_users(shell.clusters["fn-west"])  # the next cluster was reconciled
    out = capsys.readouterr().out
    failures = emitted(out, "ReconcileFailures")
    assert [(m["cluster"], m["kind"]) for m in failures] == [("fn-east", "unexpected")]
    (logged,) = [json.loads(line) for line in out.splitlines() if "reconcile failed: unexpected error" in line]
    assert logged["cluster"] == "fn-east" and logged["error"] == "RecursionError"
    assert "in too_deep" in logged["traceback"]


def test_a_full_run_of_a_cluster_that_completed_is_the_heartbeat_and_an_event_or_a_failure_is_not(
    runtime: Runtime,
    shell: FakeShell,
    config,
    alice,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """FullRunsSucceeded (dimension service only) is what the stack's FullRunHeartbeatAlarm waits for."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    runner.run_full(config, runtime)
    beats = emitted(capsys.readouterr().out, "FullRunsSucceeded")
    assert len(beats) == len(shell.clusters) and all("cluster" not in m for m in beats)
    assert {m["service"] for m in beats} == {"eks-iam-sync"}

    trigger = read_event(iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "alice"}), config)
    assert isinstance(trigger, Trigger)
    runner.run_event(config, trigger, runtime)
    assert emitted(capsys.readouterr().out, "FullRunsSucceeded") == []

    monkeypatch.setattr(shell.clusters["fn-east"].config_maps, "read", _unreachable)
    with pytest.raises(TransientError):
        runner.run_full(config, runtime)
    assert len(emitted(capsys.readouterr().out, "FullRunsSucceeded")) == len(shell.clusters) - 1


def test_a_paused_configuration_plans_every_cluster_and_writes_nothing(
    runtime: Runtime,
    shell: FakeShell,
    config: Config,
    alice,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    paused = config.model_copy(update={"paused": True})
    result = runner.run_full(paused, runtime)
    assert {name: r["status"] for name, r in result.items()} == {name: "changes" for name in shell.clusters}
    assert shell.writes() == {name: [] for name in shell.clusters}
    out = capsys.readouterr().out
    assert len(emitted(out, "RunsPaused")) == len(shell.clusters)
    assert emitted(out, "FullRunsSucceeded") == []  # the heartbeat alarm sees a pause that lasts
    logged = [json.loads(line) for line in out.splitlines() if "paused: planned, nothing written" in line]
    assert len(logged) == len(shell.clusters) and all(entry["wouldChange"] for entry in logged)
    runner.run_full(config, runtime)  # unpaused: the same run writes
    assert alice in mapped_users(shell.clusters["fn-east"])


def _unreachable(namespace: str, name: str) -> None:
    raise TransientError("connection refused")


def test_an_unexpected_error_reaching_a_cluster_fails_only_that_cluster(
    runtime, shell: FakeShell, config, alice, monkeypatch
) -> None:
    reach = shell.cluster

    def broken(cluster: Cluster) -> ClusterPorts:
        if cluster.name == "fn-east":
            raise KeyError("endpoint")  # e.g. DescribeCluster answered without one
        return reach(cluster)

    monkeypatch.setattr(shell, "cluster", broken)
    with pytest.raises(
        PermanentError, match=r"^reconcile failed for cluster fn-east: UnexpectedError: unexpected KeyE"
    ):
        runner.run_full(config, runtime)
    assert alice in mapped_users(shell.clusters["fn-west"])


@pytest.mark.parametrize("fatal", [KeyboardInterrupt, SystemExit, MemoryError])
def test_what_must_stop_the_run_still_stops_it(
    runtime, shell, config, alice, monkeypatch, fatal: type[BaseException]
) -> None:
    def stop(namespace: str, name: str) -> None:
        raise fatal()

    monkeypatch.setattr(shell.clusters["fn-east"].config_maps, "read", stop)
    with pytest.raises(fatal):
        runner.run_full(config, runtime)
    assert shell.clusters["fn-west"].writes() == []  # nothing after it ran


def test_clusters_are_reached_inside_the_loop_under_the_deadline(runtime, shell, config, alice) -> None:
    """AssumeRole and DescribeCluster (the shell's ``cluster``) count against the deadline: with
    less than one cluster's budget left, no cluster is even reached, and each is failed, retryable."""
    with pytest.raises(TransientError) as raised:
        runner.run_full(config, runtime, deadline=time.monotonic() + 1)
    assert shell.calls["cluster"] == 0
    assert str(raised.value).count("not tried: ") == len(config.clusters)


def test_each_cluster_runs_in_a_scope_of_its_own(runtime, shell: FakeShell, config, alice, monkeypatch) -> None:
    """The adapters record a transport failure in the current scope and check it before every
    request (tests/integration/test_deadlines.py): the runner gives each cluster its own, so one
    cluster's failure stops its next request and never the next cluster's."""
    calls: list[str] = []
    namespaces = shell.clusters["fn-east"].bindings.namespaces

    def unreachable() -> dict[str, dict[str, str]]:
        calls.append("namespaces")
        budget = deadlines.current()
        assert budget is not None and budget.what == "cluster fn-east"
        budget.trip("read timed out")
        budget.check()  # what every adapter does before its next request
        return namespaces()

    monkeypatch.setattr(shell.clusters["fn-east"].bindings, "namespaces", unreachable)
    with pytest.raises(
        TransientError, match="cluster fn-east: TransientError: cluster fn-east: stopped after a transport"
    ):
        runner.run_full(config, runtime)
    assert calls == ["namespaces"] and alice in mapped_users(shell.clusters["fn-west"])


def test_the_runner_keeps_time_on_the_runtime_s_clock_and_reports_through_its_observers(shell, config, alice) -> None:
    """A deadline already past on time.monotonic() but an hour off on the runtime's clock lets every
    cluster start; durations are that clock's; each cluster reports through an observer of its own."""
    observers: dict[str, RecordingObserver] = {}
    deadline = time.monotonic() - 1.0
    runtime = Runtime(
        shell=lambda: shell,
        observer=lambda name: observers.setdefault(name, RecordingObserver()),
        clock=lambda: deadline - 3600.0,
        sleep=lambda seconds: None,
    )
    result = runner.run_full(config, runtime, deadline=deadline)
    assert {name: r["status"] for name, r in result.items()} == {"fn-east": "changes", "fn-west": "changes"}
    assert observers["fn-east"].durations == [("ReconcileDuration", 0.0)]
    assert observers["fn-west"].durations == [("ReconcileDuration", 0.0)]
    assert alice in mapped_users(shell.clusters["fn-east"])
