"""The work queue adapter against botocore's Stubber (no network): FIFO entries carry the cluster as
their group and the body's digest as their deduplication id, a standard queue's carry neither, sends
go ten at a time, entries SQS did not take fail the send, SDK errors are translated."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.queue import SqsWorkQueue, _region_of
from chalicelib.engine.workitems import full_run_items, messages
from chalicelib.errors import Forbidden, NotFound, TransientError

FIFO = "https://sqs.eu-west-1.amazonaws.com/123456789012/eks-iam-sync-dev-work.fifo"
STANDARD = "https://sqs.eu-west-1.amazonaws.com/123456789012/eks-iam-sync-dev-work"


def client() -> Any:
    return boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")


def test_fifo_entries_are_grouped_by_cluster_and_deduplicated_by_body_ten_at_a_time() -> None:
    sent = messages(full_run_items([f"c{n}" for n in range(12)], "run-1"))
    sqs = client()
    with Stubber(sqs) as stub:
        for batch in (sent[:10], sent[10:]):
            entries = [
                {"Id": m.id, "MessageBody": m.body, "MessageGroupId": m.group, "MessageDeduplicationId": m.dedup}
                for m in batch
            ]
            answer: dict[str, list[Any]] = {"Successful": [], "Failed": []}
            stub.add_response("send_message_batch", answer, {"QueueUrl": FIFO, "Entries": entries})
        SqsWorkQueue(FIFO, sqs).send(sent)
        stub.assert_no_pending_responses()
    assert sent[0].group == "c0" and len(sent[0].dedup) == 64


def test_a_standard_queue_gets_neither_group_nor_deduplication_id() -> None:
    [message] = messages(full_run_items(["c0"], "run-1"))
    sqs = client()
    with Stubber(sqs) as stub:
        expected = {"QueueUrl": STANDARD, "Entries": [{"Id": "0", "MessageBody": message.body}]}
        stub.add_response("send_message_batch", {"Successful": [], "Failed": []}, expected)
        SqsWorkQueue(STANDARD, sqs).send([message])


def test_entries_sqs_did_not_take_fail_the_send_naming_them() -> None:
    sent = messages(full_run_items(["c0", "c1"], "run-1"))
    sqs = client()
    with Stubber(sqs) as stub:
        failed = {"Id": "1", "SenderFault": False, "Code": "InternalError", "Message": "try again"}
        stub.add_response("send_message_batch", {"Successful": [], "Failed": [failed]})
        with pytest.raises(TransientError, match="1 not sent: 1: InternalError try again"):
            SqsWorkQueue(FIFO, sqs).send(sent)


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("AWS.SimpleQueueService.NonExistentQueue", 400, NotFound),
        ("AccessDenied", 403, Forbidden),
        ("RequestThrottled", 400, TransientError),
        ("InternalError", 500, TransientError),
    ],
)
def test_sdk_errors_are_translated(code: str, status: int, error: type[Exception]) -> None:
    sqs = client()
    with Stubber(sqs) as stub:
        stub.add_client_error("send_message_batch", service_error_code=code, http_status_code=status)
        with pytest.raises(error, match="sqs:SendMessageBatch"):
            SqsWorkQueue(FIFO, sqs).send(messages(full_run_items(["c0"], "run-1")))


def test_the_region_is_the_queue_s() -> None:
    assert _region_of(FIFO) == "eu-west-1"
    assert _region_of("http://127.0.0.1:5000/123456789012/q.fifo") is None
