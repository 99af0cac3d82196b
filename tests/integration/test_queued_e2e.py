"""The queued path end to end: IAM events in moto's SQS (a standard event queue, a FIFO work queue
grouped by cluster, both with the template's redrive to a DLQ), polled as Lambda's event source
mappings poll them (tests/harness/sqs.py), the functions on the service role's credentials reaching
real apiservers with their own EKS tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client, utils

from chalicelib.config.settings import WORK_QUEUE_VARIABLE
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.workitems import parse
from tests.conftest import Environment
from tests.harness import endpoints
from tests.harness.cloudtrail import iam_event
from tests.harness.function import cluster_config, deployed
from tests.harness.kube import ControlPlane
from tests.harness.principals import iam_user
from tests.harness.service import MANIFEST, SEED_GROUP, Service, prepare_seed_cluster
from tests.harness.sqs import Mapping, create_queue, drain, sqs
from tests.harness.stack import start_cluster
from tests.harness.writes import aws_auth_writes as counted_writes

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).parents[2]
SECOND = "bttrm-eks-queued-1"
HUNG = "bttrm-eks-hung-0"


def config(env: Environment, *more: dict[str, Any]) -> str:
    """The seed configuration on the test cluster (backend configMap: no DescribeCluster), then ``more``."""
    document = yaml.safe_load(cluster_config(env.plane))
    document["clusters"][0]["backend"] = "configMap"
    document["clusters"] += [{**document["clusters"][0], **extra} for extra in more]
    return yaml.safe_dump(document)


def mapped(plane: ControlPlane) -> set[str]:
    found = client.CoreV1Api(plane.admin()).read_namespaced_config_map("aws-auth", "kube-system")
    return {e.arn for e in read_aws_auth(dict(found.data or {})).entries("mapUsers")}


@pytest.fixture
def aws_auth_writes() -> Iterator[list[str]]:
    """The endpoint of every aws-auth write (not the dry runs) the functions send."""
    with counted_writes() as writes:
        yield writes


def send_events(queue_url: str, events: list[dict[str, Any]]) -> None:
    """As EventBridge delivers to an SQS target: the whole event as the body."""
    for start in range(0, len(events), 10):
        entries = [{"Id": str(i), "MessageBody": json.dumps(e)} for i, e in enumerate(events[start : start + 10])]
        assert not sqs().send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")


def test_a_burst_of_300_membership_events_maps_everyone_with_one_aws_auth_write_per_batch(
    env: Environment,
    service: Service,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_auth_writes: list[str],
) -> None:
    prepare_seed_cluster(env.plane, service)
    tag = uuid.uuid4().hex[:6]
    events, event_dead_letters = create_queue(f"events-{tag}")
    work, work_dead_letters = create_queue(f"work-{tag}.fifo", visibility=1800)
    iam = boto3.client("iam")
    names = [f"burst-{tag}-{n:03d}" for n in range(300)]
    arns = set()
    for name in names:
        arns.add(iam.create_user(UserName=name)["User"]["Arn"])
        iam.add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    send_events(events.url, [iam_event("AddUserToGroup", {"groupName": SEED_GROUP, "userName": n}) for n in names])
    monkeypatch.setenv(WORK_QUEUE_VARIABLE, work.url)

    with deployed(service, config(env), tmp_path) as fn:
        event_mapping = Mapping(events, "on_iam_events", fn.invoke, batch_size=100)
        workers = Mapping(work, "reconcile_cluster", fn.invoke, batch_size=1)
        batches = event_mapping.run()
        assert not aws_auth_writes  # the event function reconciles nothing itself
        items = [parse(r["body"]) for r in _all_records(work)]
        workers.run()

    assert batches == 3 and [len(b) for b in event_mapping.invocations] == [100, 100, 100]
    assert event_mapping.errors == workers.errors == []
    assert all(f == [] for f in event_mapping.failures + workers.failures)
    # one item per cluster per batch, carrying 100 principals each, grouped by cluster
    assert [i.cluster for i in items] == [env.cluster_name] * 3 and sorted(u for i in items for u in i.users) == names
    assert {r["attributes"]["MessageGroupId"] for b in workers.invocations for r in b} == {env.cluster_name}
    assert arns <= mapped(env.plane)
    assert len(aws_auth_writes) == 3, "at most one aws-auth update per cluster per batch"
    assert drain(event_dead_letters) == [] and drain(work_dead_letters) == []


def _all_records(queue: Any) -> list[dict[str, Any]]:
    """The work queue's messages, peeked (received, then made visible again)."""
    client_ = sqs()
    seen: dict[str, dict[str, Any]] = {}
    while got := client_.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10).get("Messages", []):
        seen.update({m["MessageId"]: {"body": m["Body"], "handle": m["ReceiptHandle"]} for m in got})
    for message in seen.values():
        client_.change_message_visibility(QueueUrl=queue.url, ReceiptHandle=message["handle"], VisibilityTimeout=0)
    return list(seen.values())


@pytest.fixture(scope="module")
def second(aws_endpoint: str, service: Service) -> Iterator[ControlPlane]:
    """Another real apiserver (CONFIG_MAP, reached at its endpoint) with the service's RBAC."""
    with ExitStack() as stack:
        plane, _ = start_cluster(stack, aws_endpoint, SECOND)
        utils.create_from_yaml(plane.admin(), str(MANIFEST))
        yield plane


def test_a_hung_cluster_s_item_alone_is_retried_and_reaches_the_dlq(
    env: Environment,
    service: Service,
    second: ControlPlane,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_auth_writes: list[str],
) -> None:
    prepare_seed_cluster(env.plane, service)
    prepare_seed_cluster(second, service)
    person = iam_user(f"q-{uuid.uuid4().hex[:6]}")
    boto3.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=person.arn.rsplit("/", 1)[-1])
    work, dead_letters = create_queue(f"work-{uuid.uuid4().hex[:6]}.fifo", max_receives=3, visibility=1800)
    monkeypatch.setenv(WORK_QUEUE_VARIABLE, work.url)
    monkeypatch.setenv("EKS_IAM_SYNC_CONNECT_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("EKS_IAM_SYNC_READ_TIMEOUT_SECONDS", "1")
    tls = endpoints.tls_context(env.plane.ca_file, env.plane.ca_file.with_suffix(".key"))
    with endpoints.silent(tls=tls) as hung:
        text = config(
            env,
            {"name": SECOND, "endpoint": second.endpoint, "certificateAuthorityData": second.ca_data},
            {"name": HUNG, "endpoint": hung.url},
        )
        with deployed(service, text, tmp_path) as fn:
            assert fn.invoke("reconcile_all") == {
                "status": "queued",
                "clusters": sorted([env.cluster_name, SECOND, HUNG]),
            }
            assert not aws_auth_writes  # the schedule only fans out
            workers = Mapping(work, "reconcile_cluster", fn.invoke, batch_size=1)
            workers.run()

    runs: dict[str, list[bool]] = {}
    for records, failed in zip(workers.invocations, workers.failures, strict=True):
        [record] = records
        runs.setdefault(parse(record["body"]).cluster, []).append(not failed)
    assert runs == {env.cluster_name: [True], SECOND: [True], HUNG: [False, False, False]}
    assert workers.errors == []  # failures are partial batch responses, not invocation errors
    assert person.arn in mapped(env.plane) and person.arn in mapped(second)
    assert sorted(aws_auth_writes) == sorted([env.plane.endpoint, second.endpoint])  # never re-run for HUNG
    [dead] = drain(dead_letters)
    assert parse(dead["Body"]).cluster == HUNG and parse(dead["Body"]).everyone
    assert drain(work) == []


def test_an_sqs_batch_of_ignored_events_loads_neither_kubernetes_nor_the_queue_adapter() -> None:
    script = (
        "import json, sys, app\n"
        "from chalicelib.entry.service import handle_iam_events\n"
        "from tests.harness.cloudtrail import iam_event\n"
        "body = json.dumps(iam_event('AddUserToGroup', {'groupName': 'other', 'userName': 'x'}))\n"
        "result = handle_iam_events({'Records': [{'messageId': 'm-0', 'body': body, 'attributes': {}}]})\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes' or m.endswith('adapters.queue'))\n"
        "print(json.dumps([result, loaded]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "EKS_IAM_SYNC_CONFIG"}
    env[WORK_QUEUE_VARIABLE] = "https://sqs.us-east-1.amazonaws.com/123456789012/eks-iam-sync-dev-work.fifo"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [{"batchItemFailures": []}, []]
