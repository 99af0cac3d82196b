"""A Lambda SQS event source mapping, as far as the service can tell: messages received from a (moto)
queue in batches, handed to a function as Lambda's SQS event, those the partial batch response does
not name deleted, and those it names made visible again at once (what the visibility timeout does,
without the wait), so that the queue's redrive policy moves them to its DLQ after maxReceiveCount."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

REGION = "us-east-1"


def sqs() -> Any:
    return boto3.client("sqs", region_name=REGION)


@dataclass(frozen=True)
class Queue:
    url: str
    arn: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


def create_queue(name: str, max_receives: int = 3, visibility: int = 720) -> tuple[Queue, Queue]:
    """The queue and its DLQ (FIFO both when ``name`` ends in .fifo), with the template's redrive."""
    fifo = name.endswith(".fifo")
    client = sqs()
    fifo_attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "false"} if fifo else {}
    dead = client.create_queue(
        QueueName=name.replace(".fifo", "-dead-letters.fifo") if fifo else f"{name}-dead-letters",
        Attributes=fifo_attributes,
    )["QueueUrl"]
    dead_arn = client.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": str(max_receives)})
    url = client.create_queue(
        QueueName=name,
        Attributes={**fifo_attributes, "VisibilityTimeout": str(visibility), "RedrivePolicy": redrive},
    )["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(url, arn), Queue(dead, dead_arn)


def drain(queue: Queue) -> list[dict[str, Any]]:
    """Every message now visible, received and deleted."""
    client, found = sqs(), []
    while messages := client.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10).get("Messages", []):
        found += messages
        client.delete_message_batch(
            QueueUrl=queue.url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    return found


@dataclass
class Mapping:
    """Polls ``queue`` for ``function`` (a name given to ``invoke``) in batches of ``batch_size``."""

    queue: Queue
    function: str
    invoke: Callable[[str, dict[str, Any]], Any]
    batch_size: int = 10
    invocations: list[list[dict[str, Any]]] = field(default_factory=list)  # the records of each batch
    failures: list[list[str]] = field(default_factory=list)  # the message ids each response named
    errors: list[BaseException] = field(default_factory=list)  # invocations that raised (whole batch retried)

    def poll(self) -> bool:
        """One batch: False when the queue had nothing visible."""
        client = sqs()
        messages: list[dict[str, Any]] = []
        while len(messages) < self.batch_size:
            got = client.receive_message(
                QueueUrl=self.queue.url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                AttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                break
            messages += got
        if not messages:
            return False
        records = [self._record(m) for m in messages]
        self.invocations.append(records)
        try:
            response = self.invoke(self.function, {"Records": records})
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        except Exception as err:
            self.errors.append(err)
            failed = {m["MessageId"] for m in messages}
        self.failures.append(sorted(failed))
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            client.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
                ],
            )
        for message in messages:
            if message["MessageId"] in failed:
                client.change_message_visibility(
                    QueueUrl=self.queue.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        return True

    def run(self, limit: int = 1000) -> int:
        """Polls until the queue has nothing visible; returns the number of invocations."""
        count = 0
        while count < limit and self.poll():
            count += 1
        return count

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue.arn,
            "awsRegion": REGION,
        }
