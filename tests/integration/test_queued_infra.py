"""The queued path in the packaged template (dist/dev, cfn-lint clean through tools/package.py): the
queues with SSE, DLQs and redrive, visibility timeouts of at least 6x their consumer's timeout, the
event source mappings with ReportBatchItemFailures, the IAM rule to the event queue with on_iam_event's
pattern, the work queue's URL given to the functions that send items, alarms, and SQS access scoped to
exactly these queues."""

from __future__ import annotations

from typing import Any

import pytest

from app import app
from chalicelib.config.settings import WORK_QUEUE_VARIABLE
from chalicelib.engine.events import EVENT_PATTERN
from tests.cfn import load
from tests.integration.test_infra import listed
from tests.integration.test_package import packaged_dev

QUEUES = {"EventQueue": "EventQueueDeadLetters", "WorkQueue": "WorkQueueDeadLetters"}
CONSUMERS = {"OnIamEvents": "EventQueue", "ReconcileCluster": "WorkQueue"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load(packaged_dev().built.directory / "template.yaml")


def test_the_sqs_handlers_are_chalice_event_sources() -> None:
    sources = {s.name: s for s in app.event_sources}
    assert {"on_iam_events", "reconcile_cluster"} <= set(sources)
    assert type(sources["on_iam_events"]).__name__ == type(sources["reconcile_cluster"]).__name__ == "SQSEventConfig"


def test_queues_are_encrypted_with_dead_letters_and_redrive(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for queue, dead_letters in QUEUES.items():
        properties = resources[queue]["Properties"]
        assert properties["SqsManagedSseEnabled"] is True
        assert resources[dead_letters]["Properties"]["SqsManagedSseEnabled"] is True
        assert properties["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dead_letters, "Arn"]},
            "maxReceiveCount": {"Ref": "MaxReceives"},
        }
        assert resources[dead_letters]["Properties"]["MessageRetentionPeriod"] == 1209600
    assert resources["WorkQueue"]["Properties"]["FifoQueue"] is True
    assert resources["WorkQueueDeadLetters"]["Properties"]["FifoQueue"] is True  # a FIFO queue's DLQ is FIFO
    assert "FifoQueue" not in resources["EventQueue"]["Properties"]  # standard: batches with a window


def test_visibility_timeouts_are_at_least_six_times_the_consumer_s_timeout(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for function, queue in CONSUMERS.items():
        timeout = resources[function]["Properties"]["Timeout"]
        assert resources[queue]["Properties"]["VisibilityTimeout"] >= 6 * timeout, function


def test_mappings_report_batch_item_failures_from_their_own_queue(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for function, queue in CONSUMERS.items():
        [event] = resources[function]["Properties"]["Events"].values()
        assert event["Type"] == "SQS"
        assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert event["Properties"]["Queue"] == {"Fn::Sub": f"${{{queue}.Arn}}"}
    events = resources["OnIamEvents"]["Properties"]["Events"]["OnIamEventsSqsEventSource"]["Properties"]
    assert events["BatchSize"] == {"Ref": "EventBatchSize"}
    assert events["MaximumBatchingWindowInSeconds"] == {"Ref": "EventBatchWindowSeconds"}
    assert events["ScalingConfig"] == {"MaximumConcurrency": 2}
    work = resources["ReconcileCluster"]["Properties"]["Events"]["ReconcileClusterSqsEventSource"]["Properties"]
    assert work["BatchSize"] == 1
    assert work["MaximumBatchingWindowInSeconds"] == {"Ref": "AWS::NoValue"}  # FIFO: no window
    assert work["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "WorkerConcurrency"}}


def test_iam_events_reach_the_event_queue_with_on_iam_event_s_pattern(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    rule = resources["IamEventsToQueue"]["Properties"]
    assert rule["EventPattern"] == EVENT_PATTERN
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["EventQueue", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}
    [statement] = resources["EventQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["IamEventsToQueue", "Arn"]}}}
    # one delivery path at a time: the queue's rule or on_iam_event's own
    direct = resources["OnIamEvent"]["Properties"]["Events"]["OnIamEventEvent"]["Properties"]["State"]
    assert direct == {"Fn::If": ["DirectEvents", "ENABLED", "DISABLED"]}
    assert rule["State"] == {"Fn::If": ["DirectEvents", "DISABLED", "ENABLED"]}


def test_the_functions_that_send_items_know_the_work_queue_and_the_worker_does_not(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for function in ("OnIamEvent", "OnIamEvents", "ReconcileAll"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert variables[WORK_QUEUE_VARIABLE] == {"Ref": "WorkQueue"}, function
    assert WORK_QUEUE_VARIABLE not in resources["ReconcileCluster"]["Properties"]["Environment"]["Variables"]


def test_the_queue_functions_use_the_mapped_roles_and_sqs_access_names_only_these_queues(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    assert resources["OnIamEvents"]["Properties"]["Role"] == {"Fn::GetAtt": ["OnIamEventRole", "Arn"]}
    assert resources["ReconcileCluster"]["Properties"]["Role"] == {"Fn::GetAtt": ["ReconcileAllRole", "Arn"]}
    granted: dict[str, set[str]] = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = [a for a in listed(statement["Action"]) if a.startswith("sqs:")]
            for role in resource["Properties"]["Roles"]:
                for target in listed(statement["Resource"]):
                    granted.setdefault(role["Ref"], set()).update(f"{a} {target['Fn::GetAtt'][0]}" for a in actions)
    consume = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility")
    assert granted["OnIamEventRole"] == {
        "sqs:SendMessage EventsDeadLetterQueue",
        "sqs:SendMessage WorkQueue",
        *(f"{a} EventQueue" for a in consume),
    }
    assert granted["ReconcileAllRole"] == {
        "sqs:SendMessage EventsDeadLetterQueue",
        "sqs:SendMessage WorkQueue",
        *(f"{a} WorkQueue" for a in consume),
    }
    for role in ("OnIamEventRole", "ReconcileAllRole"):
        inline = [s for p in resources[role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
        assert not any(a.startswith("sqs:") for s in inline for a in listed(s["Action"]))


def test_alarms_on_dead_letters_arriving_and_on_the_oldest_message(template: dict[str, Any]) -> None:
    """SQS metrics the alarms watch, by queue: a message arriving in a dead-letter queue (visible plus
    in flight, so that reading one does not count), the oldest message of the working queues."""
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = set()
    for alarm in alarms:
        metrics = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
        single = [alarm] if alarm.get("Namespace") == "AWS/SQS" else []
        for metric in [*metrics, *single]:
            if metric.get("Namespace") == "AWS/SQS":
                watched.add((metric["MetricName"], metric["Dimensions"][0]["Value"]["Fn::GetAtt"][0]))
    assert {
        ("ApproximateNumberOfMessagesVisible", "EventQueueDeadLetters"),
        ("ApproximateNumberOfMessagesNotVisible", "EventQueueDeadLetters"),
        ("ApproximateNumberOfMessagesVisible", "WorkQueueDeadLetters"),
        ("ApproximateNumberOfMessagesNotVisible", "WorkQueueDeadLetters"),
        ("ApproximateAgeOfOldestMessage", "EventQueue"),
        ("ApproximateAgeOfOldestMessage", "WorkQueue"),
    } <= watched


def test_the_placeholder_role_of_chalice_s_config_is_replaced_and_no_role_is_added(template: dict[str, Any]) -> None:
    assert "set-by-chalice-merge-yaml" not in (packaged_dev().built.directory / "template.yaml").read_text()
    roles = sorted(n for n, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role")
    assert roles == ["OnIamEventRole", "ReconcileAllRole"]  # the roles cluster-bootstrap.yaml maps
