"""The work queue (SQS): work items sent in batches of ten. On a FIFO queue (its URL ends in
``.fifo``) each item's group is its cluster, so one cluster's items are never worked at once, and
its deduplication id the body's digest, so a redelivered event batch sends its items once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.bounds import bounded_client
from chalicelib.engine.workitems import Message, batches
from chalicelib.errors import Forbidden, NotFound, PermanentError, SyncError, TransientError


class SqsWorkQueue:
    def __init__(self, url: str, client: Any = None) -> None:
        self.url = url
        self.fifo = url.endswith(".fifo")
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = bounded_client(boto3.Session(), "sqs", _region_of(self.url))
        return self._client

    def send(self, messages: Sequence[Message]) -> None:
        failed: list[str] = []
        for batch in batches(messages):
            entries = [self._entry(m) for m in batch]
            try:
                answer = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            except (BotoCoreError, ClientError) as err:
                raise _translated(f"sqs:SendMessageBatch {self.url}", err) from err
            failed += [
                f"{f['Id']}: {f.get('Code', '')} {f.get('Message', '')}".strip() for f in answer.get("Failed", [])
            ]
        if failed:
            # Sent items are harmless twice (a worker re-reads everything): the whole send is retried.
            raise TransientError(f"sqs:SendMessageBatch {self.url}: {len(failed)} not sent: {'; '.join(failed[:5])}")

    def _entry(self, message: Message) -> dict[str, str]:
        entry = {"Id": message.id, "MessageBody": message.body}
        if self.fifo:
            entry |= {"MessageGroupId": message.group, "MessageDeduplicationId": message.dedup}
        return entry


def _region_of(url: str) -> str | None:
    """https://sqs.<region>.amazonaws.com/<account>/<name>: the queue's region (None: the session's)."""
    host = url.split("/")[2] if url.count("/") >= 2 else ""
    parts = host.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "sqs" else None


def _translated(what: str, err: BaseException) -> SyncError:
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if "NonExistentQueue" in code or status == 404:
            return NotFound(f"{what}: {code or 'not found'}")
        if code in ("AccessDenied", "AccessDeniedException", "KMS.AccessDeniedException") or status == 403:
            return Forbidden(f"{what}: {code}")
        if status >= 500 or status == 429 or "Throttl" in code:
            return TransientError(f"{what}: {code}")
        return PermanentError(f"{what}: {code}: {err}")
    return TransientError(f"{what}: {err}")
