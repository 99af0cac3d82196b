"""The alarm rules (tests/alarm_rules.py) catch what CloudWatch refuses and what reaches nobody, and the
templates in infra/cloudformation keep them (the packaged template: tests/integration/test_infra.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.config.settings import INSTANCE_PATTERN
from tests.alarm_rules import alarm_problems, alarms, instance_problems
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


def test_a_metrics_insights_query_in_a_sub_is_still_one_query_per_alarm() -> None:
    sub = {"Fn::Sub": "SELECT SUM(X) FROM SCHEMA(EksIamSync, instance) WHERE instance = '${Instance}'"}
    metrics = [{"Id": "a", "Expression": sub, "Period": 300, "ReturnData": False}, {"Id": "b", "Expression": sub}]
    assert "A: 2 Metrics Insights queries: CloudWatch takes one per alarm" in alarm_problems(template(Metrics=metrics))
    assert "A: evaluates 14400 s (300 s x 48): the limit is 10800 s" in alarm_problems(
        template(Metrics=[{"Id": "q", "Expression": sub, "Period": 300}], EvaluationPeriods=48)
    )


FILTERED = "SELECT SUM(X) FROM SCHEMA(EksIamSync, cluster, instance, service) WHERE instance = '${Instance}'"


@pytest.mark.parametrize(
    ("query", "filtered"),
    [
        (FILTERED, True),
        (FILTERED + " AND kind != 'transient'", True),
        (
            "SELECT SUM(X) FROM SCHEMA(EksIamSync, cluster, instance) WHERE kind = 'a' AND instance = '${Instance}'",
            True,
        ),
        ("SELECT SUM(X) FROM SCHEMA(EksIamSync, cluster, service)", False),  # every install's
        (
            "SELECT SUM(X) FROM SCHEMA(EksIamSync, cluster, service) WHERE instance = '${Instance}'",
            False,
        ),  # no such set
        ("SELECT SUM(X) FROM SCHEMA(EksIamSync, cluster, instance) WHERE instance = 'dev'", False),  # hard-coded
        (FILTERED + " OR kind = 'transient'", False),
    ],
)
def test_every_query_of_the_service_s_metrics_filters_on_the_instance(query: str, filtered: bool) -> None:
    found = instance_problems(template(Metrics=[{"Id": "q", "Expression": {"Fn::Sub": query}, "Period": 300}]))
    assert (found == []) is filtered, found


def test_a_single_metric_alarm_and_the_dashboard_name_the_instance() -> None:
    single = {"Metrics": None, "Namespace": "EksIamSync", "MetricName": "M", "Statistic": "Sum", "Period": 300}
    unfiltered = template(**single, Dimensions=[{"Name": "service", "Value": "eks-iam-sync"}])
    assert instance_problems(unfiltered) == ["A: its metric has no instance dimension of {Ref: Instance}"]
    filtered = template(**single, Dimensions=[{"Name": "instance", "Value": {"Ref": "Instance"}}])
    assert instance_problems(filtered) == []
    lambdas = template(**{**single, "Namespace": "AWS/Lambda"})  # per function: the stack's own already
    assert instance_problems(lambdas) == []
    body = (
        """{"expression": "SEARCH('{EksIamSync,cluster,instance,service} MetricName=\\"A\\" instance=\\"${Instance}\\"', 'Sum', 300)"},"""
        """{"expression": "SEARCH('{EksIamSync,cluster,service} MetricName=\\"B\\"', 'Sum', 300)"}"""
    )
    dashboard = {
        "Resources": {"D": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardBody": {"Fn::Sub": body}}}}
    }
    [problem] = instance_problems(dashboard)
    assert problem.startswith("D: a search without instance in its schema:") and "B" in problem


def test_the_service_s_template_filters_every_alarm_and_widget_on_its_instance() -> None:
    loaded = load(TEMPLATES / "chalice-merge.yaml")
    assert instance_problems(loaded) == []
    # the stack refuses what the functions would refuse
    assert loaded["Parameters"]["Instance"]["AllowedPattern"] == f"^{INSTANCE_PATTERN}$"
