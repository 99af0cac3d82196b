"""The alarm rules (tests/alarm_rules.py) catch what CloudWatch refuses and what reaches nobody, and the
templates in infra/cloudformation keep them (the packaged template: tests/integration/test_infra.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.alarm_rules import alarm_problems, alarms
from tests.cfn import load

TEMPLATES = Path(__file__).parents[2] / "infra" / "cloudformation"
TOPIC = {"Ref": "Topic"}


def template(**properties: Any) -> dict[str, Any]:
    alarm = {
        "AlarmActions": [TOPIC],
        "OKActions": [TOPIC],
        "TreatMissingData": "notBreaching",
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "EvaluationPeriods": 1,
        "Metrics": [{"Id": "q", "Expression": "SELECT SUM(X) FROM SCHEMA(N, service)", "Period": 300}],
        **properties,
    }
    return {
        "Parameters": {"Hours": {"Type": "Number", "Default": 24, "MaxValue": 168}},
        "Resources": {"A": {"Type": "AWS::CloudWatch::Alarm", "Properties": {k: v for k, v in alarm.items() if v}}},
    }


def test_a_valid_alarm_has_no_problems() -> None:
    assert alarm_problems(template()) == []


def test_two_metrics_insights_queries_in_one_alarm_are_refused() -> None:
    """The shape of the IdentityLimitsAlarm CloudWatch would refuse: two queries and a MAX over both."""
    metrics = [
        {"Id": "size", "Expression": "SELECT MAX(A) FROM SCHEMA(N, cluster)", "Period": 900, "ReturnData": False},
        {"Id": "entries", "Expression": "SELECT MAX(B) FROM SCHEMA(N, cluster)", "Period": 900, "ReturnData": False},
        {"Id": "fullest", "Expression": "MAX([FILL(size, 0), FILL(entries, 0)])", "Period": 900},
    ]
    assert alarm_problems(template(Metrics=metrics)) == [
        "A: 2 Metrics Insights queries: CloudWatch takes one per alarm"
    ]


@pytest.mark.parametrize(
    ("properties", "problem"),
    [
        ({"AlarmActions": None}, "A: no AlarmActions: nobody hears of it"),
        ({"OKActions": None}, "A: no OKActions: nobody hears of it"),
        ({"TreatMissingData": None}, "A: TreatMissingData not chosen"),
        ({"EvaluationPeriods": 37}, "A: evaluates 11100 s (300 s x 37): the limit is 10800 s"),
        ({"DatapointsToAlarm": 2}, "A: DatapointsToAlarm 2 not within 1..EvaluationPeriods 1"),
        (
            {"Metrics": [{"Id": "q", "Expression": "SELECT SUM(X) FROM SCHEMA(N)", "Period": 90}]},
            "A: Period 90 is not 10, 20, 30 or a multiple of 60",
        ),
        (
            {
                "Metrics": None,
                "Namespace": "AWS/Lambda",
                "MetricName": "Errors",
                "Statistic": "Sum",
                "Period": 300,
                "EvaluationPeriods": 289,
            },
            "A: evaluates 86700 s (300 s x 289): the limit is 86400 s",
        ),
        (
            {
                "Metrics": None,
                "Namespace": "N",
                "MetricName": "M",
                "Statistic": "Sum",
                "Period": 7200,
                "EvaluationPeriods": {"Ref": "Hours"},
            },
            "A: evaluates 1209600 s (7200 s x 168): the limit is 604800 s",
        ),
        (
            {"Metrics": [{"Id": "Q", "Expression": "SELECT SUM(X) FROM SCHEMA(N)", "Period": 60}]},
            "A: metric ids must be unique and start with a lower-case letter: ['Q']",
        ),
    ],
)
def test_each_rule_is_checked(properties: dict[str, Any], problem: str) -> None:
    assert problem in alarm_problems(template(**properties))


@pytest.mark.parametrize("name", ["chalice-merge.yaml", "event-forwarder.yaml"])
def test_the_templates_alarms_keep_the_rules(name: str) -> None:
    loaded = load(TEMPLATES / name)
    assert alarms(loaded), f"{name} has no alarms"
    assert alarm_problems(loaded) == []


def test_the_service_s_alarms_split_identity_limits_and_watch_the_heartbeats() -> None:
    found = alarms(load(TEMPLATES / "chalice-merge.yaml"))
    assert "IdentityLimitsAlarm" not in found and {"AwsAuthSizeAlarm", "AccessEntriesUsageAlarm"} <= set(found)
    breaching = {name for name, alarm in found.items() if alarm["TreatMissingData"] == "breaching"}
    assert breaching == {"FullRunHeartbeatAlarm", "EventSilenceAlarm"}
    # dead letters: on a message's arrival, not on a count that stays up for the queue's 14 days
    for name in ("DeadLettersAlarm", "EventQueueDeadLettersAlarm", "WorkQueueDeadLettersAlarm"):
        [returned] = [m for m in found[name]["Metrics"] if m.get("ReturnData", True)]
        assert returned["Expression"].startswith("DIFF(")
    # errors a retry repairs do not page
    for name in ("OnIamEventErrorsAlarm", "OnIamEventsErrorsAlarm", "TransientFailuresAlarm"):
        assert found[name]["DatapointsToAlarm"] >= 2
