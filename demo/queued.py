"""The queued path in the demo: a burst of IAM changes delivered to the event queue (moto's SQS), taken
by on_iam_events as one batch, coalesced into one work item per cluster on the FIFO work queue, and
reconciled by reconcile_cluster: one aws-auth write for the whole burst (issue 21)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from pathlib import Path
from typing import Any

import boto3

from chalicelib.config.settings import WORK_QUEUE_VARIABLE
from chalicelib.engine.workitems import parse
from demo.show import say
from tests.harness.cloudtrail import iam_event
from tests.harness.function import cluster_config, deployed
from tests.harness.sqs import Mapping, create_queue, sqs
from tests.harness.stack import Stack
from tests.harness.writes import aws_auth_writes

GROUP = "iam-bttrm-web-ro-group"
BURST = [f"dev-{n}" for n in range(1, 9)]


def act(stack: Stack, workdir: Path, log: io.StringIO) -> None:
    iam = boto3.client("iam")
    for name in BURST:
        iam.create_user(UserName=name)
    events, _ = create_queue(f"demo-events-{uuid.uuid4().hex[:6]}")
    work, _ = create_queue(f"demo-work-{uuid.uuid4().hex[:6]}.fifo", visibility=1800)
    workdir.mkdir()
    os.environ[WORK_QUEUE_VARIABLE] = work.url
    try:
        with deployed(stack.service, cluster_config(stack.plane), workdir) as fn:
            say(f"7a. the queued path: {len(BURST)} AddUserToGroup in a burst (a script onboarding a team)")
            burst(fn.invoke, "AddUserToGroup", iam.add_user_to_group, events, work, log)
    finally:
        os.environ.pop(WORK_QUEUE_VARIABLE, None)
    # Removed again before act two, one event at a time (on_iam_event, in process): removing 8 of the 9
    # owned entries in one run is what the deletion breaker refuses, and a coalesced batch is one run.
    with deployed(stack.service, cluster_config(stack.plane), workdir) as fn, contextlib.redirect_stdout(log):
        for name in BURST:
            iam.remove_user_from_group(GroupName=GROUP, UserName=name)
            fn.invoke("on_iam_event", iam_event("RemoveUserFromGroup", {"groupName": GROUP, "userName": name}))
    say(f"    (the {len(BURST)} are removed again one event at a time before act two)")
    say()


def burst(invoke: Any, change: str, apply: Any, events: Any, work: Any, log: io.StringIO) -> None:
    for name in BURST:
        apply(GroupName=GROUP, UserName=name)
        body = json.dumps(iam_event(change, {"groupName": GROUP, "userName": name}))
        sqs().send_message(QueueUrl=events.url, MessageBody=body)
    event_mapping = Mapping(events, "on_iam_events", invoke, batch_size=100)
    workers = Mapping(work, "reconcile_cluster", invoke, batch_size=1)
    with aws_auth_writes() as writes, contextlib.redirect_stdout(log):
        event_mapping.run()
        workers.run()
    items = [parse(r["body"]) for batch in workers.invocations for r in batch]
    say(
        f"    {sum(len(b) for b in event_mapping.invocations)} events in {len(event_mapping.invocations)} batch of "
        f"on_iam_events -> {len(items)} work item ({', '.join(i.describe() for i in items)}) -> "
        f"{len(writes)} aws-auth write"
    )
