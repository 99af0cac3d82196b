"""The queued path (issue 21) through chalice.test.Client on fakes and an in-memory work queue:
on_iam_events coalesces an SQS batch of EventBridge events into one run (or one work item per
cluster), reconcile_cluster reconciles one cluster per item and fails that item alone, and
on_iam_event and reconcile_all send work items instead of reconciling when the queue is set."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from chalicelib.config.settings import WORK_QUEUE_VARIABLE
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.workitems import Message, WorkItem, body, parse
from chalicelib.errors import PermanentError, TransientError
from chalicelib.model.ports import Shell
from chalicelib.run.runtime import Runtime, installed
from tests.functional.conftest import Lambdas
from tests.functional.fakes import CLUSTERS, GROUP, FakeCluster, FakeShell, user_arn
from tests.harness.cloudtrail import iam_event

QUEUE_URL = "https://sqs.us-east-2.amazonaws.com/123456789012/eks-iam-sync-dev-work.fifo"


@dataclass
class InMemoryQueue:
    """The WorkQueue port: what was sent, in order; ``fail_next`` makes the next send raise."""

    sent: list[Message] = field(default_factory=list)
    sends: int = 0
    fail_next: bool = False

    def send(self, messages: Sequence[Message]) -> None:
        self.sends += 1
        if self.fail_next:
            self.fail_next = False
            raise TransientError("sqs:SendMessageBatch: throttled")
        self.sent += messages

    def items(self) -> list[WorkItem]:
        return [parse(m.body) for m in self.sent]


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch, runtime: Runtime, use_shell: list[Shell]) -> Iterator[InMemoryQueue]:
    """The work queue the runtime sends to, at the URL the environment names."""
    memory = InMemoryQueue()
    monkeypatch.setenv(WORK_QUEUE_VARIABLE, QUEUE_URL)

    def work_queue(url: str) -> InMemoryQueue:
        assert url == QUEUE_URL
        return memory

    with installed(replace(runtime, work_queue=work_queue)):
        yield memory


def sqs_event(lambdas: Lambdas, bodies: Sequence[str], queue_name: str) -> dict[str, Any]:
    """chalice's SQS event, with a message id per record (chalice gives every record the same one)."""
    event = lambdas.client.events.generate_sqs_event(message_bodies=list(bodies), queue_name=queue_name)
    for index, record in enumerate(event["Records"]):
        record["messageId"] = f"m-{index}"
    return event


def on_iam_events(lambdas: Lambdas, events: Sequence[dict[str, Any] | str]) -> dict[str, Any]:
    bodies = [e if isinstance(e, str) else json.dumps(e) for e in events]
    result: dict[str, Any] = lambdas.client.lambda_.invoke(
        "on_iam_events", sqs_event(lambdas, bodies, "eks-iam-sync-dev-events")
    ).payload
    return result


def reconcile_cluster(lambdas: Lambdas, bodies: Sequence[str]) -> dict[str, Any]:
    result: dict[str, Any] = lambdas.client.lambda_.invoke(
        "reconcile_cluster", sqs_event(lambdas, bodies, "eks-iam-sync-dev-work.fifo")
    ).payload
    return result


def failed(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def aws_auth_writes(cluster: FakeCluster) -> list[bool]:
    """Records each update of aws-auth from now on: True for a write, False for a dry run."""
    writes: list[bool] = []
    update = cluster.config_maps.update

    def recording(observed: Any, data: Any, annotations: Any, dry_run: bool = False) -> Any:
        if observed.name == "aws-auth":
            writes.append(not dry_run)
        return update(observed, data, annotations, dry_run)

    cluster.config_maps.update = recording  # type: ignore[method-assign]
    return writes


def mapped(cluster: FakeCluster) -> set[str]:
    return {e.arn for e in read_aws_auth(cluster.aws_auth.data).entries("mapUsers")}


def joins(names: Sequence[str]) -> list[dict[str, Any]]:
    return [iam_event("AddUserToGroup", {"groupName": GROUP, "userName": n}) for n in names]


def test_a_batch_of_membership_events_is_one_read_and_one_aws_auth_write_per_cluster(
    shell: FakeShell, lambdas: Lambdas
) -> None:
    names = [f"user{n}" for n in range(25)]
    for name in names:
        shell.iam_port.add_user(name, groups=[GROUP])
    writes = {n: aws_auth_writes(c) for n, c in shell.clusters.items()}
    response = on_iam_events(lambdas, joins(names))
    assert response == {"batchItemFailures": []}
    for name, cluster in shell.clusters.items():
        assert mapped(cluster) == {user_arn(n) for n in names}
        assert writes[name].count(True) == 1, "one aws-auth write per cluster for the whole batch"
    # one scoped IAM read for the batch, every principal in it once
    assert shell.iam_port.calls["scoped_snapshot"] == 1
    [(users, roles)] = shell.iam_port.requests
    assert sorted(users) == sorted(names) and roles == ()


def test_a_record_that_cannot_be_read_or_is_refused_fails_alone(shell: FakeShell, lambdas: Lambdas) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    renamed = iam_event("UpdateGroup", {"groupName": GROUP, "newGroupName": "renamed"})
    elsewhere = iam_event("AddUserToGroup", {"groupName": "not-configured", "userName": "zed"})
    response = on_iam_events(lambdas, ["{not json", renamed, joins(["alice"])[0], elsewhere, "[1, 2]"])
    # m-0: not JSON; m-1: a configured group renamed (refused loudly, as on_iam_event does); m-4: not
    # an event. The irrelevant event (m-3) is ignored as today, not failed.
    assert failed(response) == ["m-0", "m-1", "m-4"]
    for cluster in shell.clusters.values():
        assert mapped(cluster) == {user_arn("alice")}


def test_a_failing_cluster_in_process_fails_the_whole_batch(shell: FakeShell, lambdas: Lambdas) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    shell.fail("cluster", TransientError("unreachable"), target="fn-west", always=True)
    with pytest.raises(TransientError, match="fn-west"):
        on_iam_events(lambdas, joins(["alice"]))
    assert mapped(shell.clusters["fn-east"]) == {user_arn("alice")}


def test_with_a_work_queue_a_batch_becomes_one_item_per_cluster_and_touches_no_cluster(
    shell: FakeShell, lambdas: Lambdas, queue: InMemoryQueue
) -> None:
    names = ["alice", "bob", "carol"]
    for name in names:
        shell.iam_port.add_user(name, groups=[GROUP])
    writes = {n: aws_auth_writes(c) for n, c in shell.clusters.items()}
    events = [*joins(names), joins(["alice"])[0]]  # alice twice: one principal
    assert on_iam_events(lambdas, events) == {"batchItemFailures": []}
    assert queue.sends == 1
    items = queue.items()
    assert sorted(i.cluster for i in items) == sorted(CLUSTERS)
    assert all(sorted(i.users) == names and not i.everyone and not i.rebinds for i in items)
    assert all(len(i.events) == len(events) for i in items)
    assert [m.group for m in queue.sent] == [i.cluster for i in items]
    assert not any(writes.values()) and shell.iam_port.calls["scoped_snapshot"] == 0
    assert shell.calls["cluster"] == 0

    # the workers: each item reconciles its cluster only
    for message in queue.sent:
        assert reconcile_cluster(lambdas, [message.body]) == {"batchItemFailures": []}
        cluster = shell.clusters[message.group]
        assert mapped(cluster) == {user_arn(n) for n in names}
        assert writes[message.group].count(True) == 1
    assert shell.calls["cluster"] == len(CLUSTERS)


def test_a_send_that_fails_fails_the_batch_for_redelivery(
    shell: FakeShell, lambdas: Lambdas, queue: InMemoryQueue
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    queue.fail_next = True
    with pytest.raises(TransientError, match="throttled"):
        on_iam_events(lambdas, joins(["alice"]))
    assert queue.sent == []
    on_iam_events(lambdas, joins(["alice"]))  # the redelivery
    assert len(queue.sent) == len(CLUSTERS)


def test_on_iam_event_and_reconcile_all_send_items_instead_of_reconciling(
    shell: FakeShell, lambdas: Lambdas, queue: InMemoryQueue
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    event = joins(["alice"])[0]
    result = lambdas.send(event)
    assert result == {"status": "queued", "eventId": event["detail"]["eventID"], "clusters": sorted(CLUSTERS)}
    assert [i.users for i in queue.items()] == [("alice",)] * len(CLUSTERS)
    assert lambdas.reconcile_all() == {"status": "queued", "clusters": sorted(CLUSTERS)}
    full = queue.items()[len(CLUSTERS) :]
    assert sorted(i.cluster for i in full) == sorted(CLUSTERS) and all(i.everyone and i.run for i in full)
    assert shell.calls["cluster"] == 0 and shell.iam_port.calls == {}
    for item in full:
        reconcile_cluster(lambdas, [body(item)])
    for cluster in shell.clusters.values():
        assert mapped(cluster) == {user_arn("alice")}


def test_a_failing_cluster_s_item_fails_alone_and_the_others_are_not_run_again(
    shell: FakeShell, lambdas: Lambdas, queue: InMemoryQueue
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    shell.fail("cluster", TransientError("connect timeout"), target="fn-west", always=True)
    lambdas.reconcile_all()
    bodies = {m.group: m.body for m in queue.sent}
    # one invocation with both items (a batch size above 1): only fn-west's is reported
    response = reconcile_cluster(lambdas, [bodies["fn-east"], bodies["fn-west"]])
    assert failed(response) == ["m-1"]
    assert mapped(shell.clusters["fn-east"]) == {user_arn("alice")}
    reached = shell.calls["cluster"]
    # Lambda delivers the failed item again: fn-east is not reached for it
    assert failed(reconcile_cluster(lambdas, [bodies["fn-west"]])) == ["m-0"]
    assert shell.calls["cluster"] == reached + 1


def test_bad_work_items_fail_alone_and_items_for_removed_clusters_are_dropped(
    shell: FakeShell, lambdas: Lambdas, queue: InMemoryQueue
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    gone = body(WorkItem("fn-gone", everyone=True, run="r"))
    good = body(WorkItem("fn-east", users=("alice",), rebinds=False, events=("e1",)))
    response = reconcile_cluster(lambdas, ['{"cluster": "fn-east"}', gone, good])
    assert failed(response) == ["m-0"]
    assert mapped(shell.clusters["fn-east"]) == {user_arn("alice")}
    assert not mapped(shell.clusters["fn-west"])


def test_a_coalesced_burst_of_removals_is_one_run_for_the_deletion_breaker(shell: FakeShell, lambdas: Lambdas) -> None:
    """Removing 2 of 3 owned users one event at a time passes the breaker (one removal is never a mass
    deletion); the same two removals in one batch are one run, which the breaker refuses: held for an
    operator (the batch fails, is received again and ends in the event queue's DLQ)."""
    for name in ("alice", "bob", "carol"):
        shell.iam_port.add_user(name, groups=[GROUP])
    assert on_iam_events(lambdas, joins(["alice", "bob", "carol"])) == {"batchItemFailures": []}
    for name in ("alice", "bob"):
        shell.iam_port.remove_from_group(name, GROUP)
    removals = [iam_event("RemoveUserFromGroup", {"groupName": GROUP, "userName": n}) for n in ("alice", "bob")]
    with pytest.raises(PermanentError, match="deletion-breaker"):
        on_iam_events(lambdas, removals)
    for cluster in shell.clusters.values():
        assert mapped(cluster) == {user_arn(n) for n in ("alice", "bob", "carol")}
    for removal in removals:  # the direct path, one event per invocation
        lambdas.send(removal)
    for cluster in shell.clusters.values():
        assert mapped(cluster) == {user_arn("carol")}


def test_a_work_item_for_a_cluster_another_instance_manages_fails_alone_and_writes_nothing(
    shell: FakeShell, lambdas: Lambdas, queue: InMemoryQueue, reconciler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permanent: the item is reported failed (received again up to the work queue's maxReceiveCount, then
    its DLQ), the other cluster's item is reconciled."""
    shell.iam_port.add_user("alice", groups=[GROUP])
    reconciler(instance="dev")  # dev manages fn-east
    east = shell.clusters["fn-east"]
    before = (east.writes(), east.aws_auth.resource_version)
    monkeypatch.setenv("EKS_IAM_SYNC_INSTANCE", "prod")
    items = [body(WorkItem(name, everyone=True, run="r")) for name in ("fn-east", "fn-west")]
    assert failed(reconcile_cluster(lambdas, items)) == ["m-0"]
    assert (east.writes(), east.aws_auth.resource_version) == before
    assert mapped(shell.clusters["fn-west"]) == {user_arn("alice")}
    assert failed(reconcile_cluster(lambdas, items[:1])) == ["m-0"]  # received again: refused again
