"""The queued path (issue 21): what a burst of IAM events and a schedule over many clusters cost.

(1) A burst of 300 AddUserToGroup records at 5 000 mapped users, on a local stack (moto with its SQS,
    etcd, kube-apiserver, the token webhook; the service with its shipped RBAC): the events delivered
    to a standard event queue, taken by on_iam_events in batches of 100 (the template's default), one
    work item per batch to the FIFO work queue, reconcile_cluster per item (tests/harness/sqs.py polls
    as Lambda's mappings poll): aws-auth writes and wall time. Against it, the direct path (one
    on_iam_event invocation per event, as before), measured on 20 events and scaled to 300.
(2) 200 configured clusters (in-memory fakes, tests/functional/fakes.py), each costing 0.25 s to
    reach (a stand-in for DescribeCluster and the requests of a run), one of them hung (it costs one
    cluster's budget, 2.5 s with 0.5 s connect and 1 s read timeouts, then fails): the schedule's
    fan-out to moto's FIFO work queue, then every item worked by 10 workers at once (the template's
    WorkerConcurrency), against the in-process schedule walking the 200 in turn.

Figures, not assertions: each goal of the issue is printed next to its figure as met or NOT MET.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from moto.iam.models import iam_backends

from chalicelib.config import Cluster
from chalicelib.config.settings import WORK_QUEUE_VARIABLE
from chalicelib.entry import service
from chalicelib.errors import SyncError, TransientError
from chalicelib.model.ports import ClusterPorts
from chalicelib.run.runtime import Runtime, installed
from tests.functional.fakes import config_text, seed_world
from tests.harness.aws import moto_server
from tests.harness.cloudtrail import iam_event
from tests.harness.function import cluster_config, deployed
from tests.harness.sqs import Mapping, create_queue, sqs
from tests.harness.stack import local_stack
from tests.harness.writes import aws_auth_writes

GROUP = "iam-bttrm-web-ro-group"
PROJECTS = ("bttrm-web-proj-1-ns", "bttrm-web-proj-2-ns")
CLUSTER_ROLE = "rbac-bttrm-pods-ro-cluster-role"
MAPPED, BURST, DIRECT_SAMPLE, EVENT_BATCH = 5000, 300, 20, 100
CLUSTERS, CONCURRENCY, REACH_SECONDS = 200, 10, 0.25


@contextlib.contextmanager
def environment(**variables: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def burst() -> None:
    print(f"(1) a burst of {BURST} AddUserToGroup records at {MAPPED} mapped users")
    with local_stack(PROJECTS, CLUSTER_ROLE) as stack, tempfile.TemporaryDirectory() as tmp:
        account = stack.service.role_arn.split(":")[4]
        backend = iam_backends[account]["aws"]
        backend.create_group(GROUP)
        names = [f"user-{n:05d}" for n in range(MAPPED + BURST + DIRECT_SAMPLE)]
        for name in names[:MAPPED]:
            backend.create_user("us-east-1", name)
            backend.add_user_to_group(GROUP, name)
        with deployed(stack.service, cluster_config(stack.plane), Path(tmp)) as fn:
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                fn.invoke("reconcile_all")
            print(f"  setup: {MAPPED} users mapped by one full run in {time.perf_counter() - started:.1f} s")
            for name in names[MAPPED:]:
                backend.create_user("us-east-1", name)
                backend.add_user_to_group(GROUP, name)
            events, _ = create_queue(f"bench-events-{uuid.uuid4().hex[:6]}")
            work, work_dead = create_queue(f"bench-work-{uuid.uuid4().hex[:6]}.fifo", visibility=1800)
            bodies = [
                iam_event("AddUserToGroup", {"groupName": GROUP, "userName": n}) for n in names[MAPPED:-DIRECT_SAMPLE]
            ]
            import json  # noqa: PLC0415

            for start in range(0, len(bodies), 10):
                entries = [
                    {"Id": str(i), "MessageBody": json.dumps(b)} for i, b in enumerate(bodies[start : start + 10])
                ]
                sqs().send_message_batch(QueueUrl=events.url, Entries=entries)
            with (
                environment(**{WORK_QUEUE_VARIABLE: work.url}),
                aws_auth_writes() as writes,
                contextlib.redirect_stdout(io.StringIO()),
            ):
                started = time.perf_counter()
                event_mapping = Mapping(events, "on_iam_events", fn.invoke, batch_size=EVENT_BATCH)
                workers = Mapping(work, "reconcile_cluster", fn.invoke, batch_size=1)
                batches = event_mapping.run()
                items = workers.run()
                queued_seconds = time.perf_counter() - started
            failures = sum(len(f) for f in event_mapping.failures + workers.failures) + len(workers.errors)
            print(
                f"  queued: {batches} event batches, {items} work items, {len(writes)} aws-auth writes, "
                f"{queued_seconds:.1f} s wall, {failures} failures"
            )
            with aws_auth_writes() as direct_writes, contextlib.redirect_stdout(io.StringIO()):
                started = time.perf_counter()
                for name in names[-DIRECT_SAMPLE:]:
                    fn.invoke("on_iam_event", iam_event("AddUserToGroup", {"groupName": GROUP, "userName": name}))
                direct_seconds = time.perf_counter() - started
            scale = BURST / DIRECT_SAMPLE
            print(
                f"  direct (one invocation per event), {DIRECT_SAMPLE} events measured: {len(direct_writes)} aws-auth "
                f"writes, {direct_seconds:.1f} s; for {BURST}: ~{len(direct_writes) * scale:.0f} writes, "
                f"~{direct_seconds * scale:.0f} s (scaled, one invocation at a time)"
            )
            mapped = boto3.client("iam").get_group(GroupName=GROUP)["Users"]
            goal = len(writes) <= BURST // EVENT_BATCH and failures == 0
            print(
                f"  goal: at most 1 aws-auth update per cluster per batch ({BURST // EVENT_BATCH} for the burst), "
                f"0 errors: {'met' if goal else 'NOT MET'} ({len(mapped)} group members in IAM)"
            )
            leftover = sqs().get_queue_attributes(
                QueueUrl=work_dead.url, AttributeNames=["ApproximateNumberOfMessages"]
            )
            print(f"  work items in the DLQ: {leftover['Attributes']['ApproximateNumberOfMessages']}")


def fanout() -> None:
    print(
        f"(2) {CLUSTERS} clusters (fakes), {REACH_SECONDS} s each to reach, one hung: fan-out, "
        f"then workers at concurrency {CONCURRENCY}"
    )
    names = [f"fake-{n:03d}" for n in range(CLUSTERS)]
    hung = names[CLUSTERS // 2]
    shell = seed_world(names)
    shell.iam_port.add_user("alice", groups=[GROUP])
    reach = shell.cluster

    def slow(cluster: Cluster) -> ClusterPorts:
        if cluster.name == hung:
            time.sleep(0.5 + 2 * 1.0)  # one cluster's budget: connect + 2 x read
            raise TransientError(f"cluster {cluster.name}: read timed out")
        time.sleep(REACH_SECONDS)
        return reach(cluster)

    shell.cluster = slow  # type: ignore[method-assign]
    with (
        installed(Runtime(shell=lambda: shell)),
        tempfile.TemporaryDirectory() as tmp,
        moto_server(),
        environment(
            EKS_IAM_SYNC_CONFIG=str(Path(tmp) / "config.yaml"),
            EKS_IAM_SYNC_CONNECT_TIMEOUT_SECONDS="0.5",
            EKS_IAM_SYNC_READ_TIMEOUT_SECONDS="1",
            POWERTOOLS_METRICS_DISABLED="true",
            POWERTOOLS_TRACE_DISABLED="true",
        ),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        (Path(tmp) / "config.yaml").write_text(config_text(dict.fromkeys(names, "us-east-2")))
        service._config.clear()
        work, _ = create_queue(f"bench-fanout-{uuid.uuid4().hex[:6]}.fifo", visibility=1800)
        with environment(**{WORK_QUEUE_VARIABLE: work.url}):
            started, cpu = time.perf_counter(), time.thread_time()
            queued = service.reconcile_all(run="bench")
            fanout_seconds, fanout_cpu = time.perf_counter() - started, time.thread_time() - cpu
            started = time.perf_counter()
            sqs().get_queue_attributes(QueueUrl=work.url, AttributeNames=["ApproximateNumberOfMessages"])
            round_trip = time.perf_counter() - started
            records = _received(work)
            started = time.perf_counter()
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                responses = list(pool.map(lambda r: service.reconcile_work_items({"Records": [r]}), records))
            workers_seconds = time.perf_counter() - started
        started = time.perf_counter()
        with contextlib.suppress(SyncError):  # the hung cluster fails the serial run, after all others were tried
            service.reconcile_all()
        serial_seconds = time.perf_counter() - started
    failed = sum(len(r["batchItemFailures"]) for r in responses)
    calls = -(-CLUSTERS // 10)
    print(
        f"  schedule fan-out: {len(queued['clusters'])} work items in {calls} SendMessageBatch calls: "
        f"{fanout_seconds:.2f} s wall, {fanout_cpu:.2f} s of the function's own CPU; moto answers one SQS "
        f"call in ~{round_trip * 1000:.0f} ms on this machine (its server runs in this process)"
    )
    print(
        f"  workers: {len(records)} items in {workers_seconds:.1f} s at concurrency {CONCURRENCY}, "
        f"{failed} failed (the hung one)"
    )
    print(f"  serial (the in-process schedule): {serial_seconds:.1f} s")
    print(
        f"  goal: fan-out under 2 s of its own time: {'met' if fanout_cpu < 2 else 'NOT MET'} ({fanout_cpu:.2f} s CPU; "
        f"wall {fanout_seconds:.2f} s, {'met' if fanout_seconds < 2 else 'NOT MET'} on moto)"
    )
    ratio = workers_seconds / serial_seconds
    print(f"  goal: about a tenth of the serial time: {'met' if ratio <= 0.15 else 'NOT MET'} ({ratio:.2f} of it)")


def _received(queue: Any) -> list[dict[str, Any]]:
    """Every item as Lambda would hand it over (one per invocation: the work queue's batch size)."""
    client = sqs()
    records: list[dict[str, Any]] = []
    while got := client.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
        "Messages", []
    ):
        records += [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue.arn,
                "awsRegion": "us-east-1",
            }
            for m in got
        ]
    return records


def main() -> None:
    started = time.perf_counter()
    burst()
    fanout()
    print(f"the whole benchmark took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
