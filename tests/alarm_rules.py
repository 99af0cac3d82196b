"""CloudWatch's rules for an alarm (PutMetricAlarm and the Metrics Insights alarm limits), and the
service's own (every alarm notifies someone, missing data chosen), checked over a template's
``AWS::CloudWatch::Alarm`` resources. Pure: a template as plain data in, problems out.

CloudWatch's rules, as its API reference and alarm limits state them:
- an alarm is either one metric (``Namespace``, ``MetricName``, a statistic, ``Period``) or ``Metrics``;
- ``Metrics``: ids unique, starting with a lower-case letter; exactly one entry returns data;
- a Metrics Insights query (``SELECT ...``) is the alarm's only entry: one query per alarm;
- ``Period`` is 10, 20, 30 or a multiple of 60; ``Period`` x ``EvaluationPeriods`` is at most 7 days,
  one day when the period is under an hour, 3 hours for a Metrics Insights query (only its latest
  3 hours are evaluated);
- ``DatapointsToAlarm`` at most ``EvaluationPeriods``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MISSING_DATA = {"breaching", "notBreaching", "ignore", "missing"}
OPERATORS = {
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
}
DAY, WEEK, INSIGHTS_WINDOW = 86_400, 604_800, 3 * 3_600


def alarms(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        name: resource.get("Properties", {})
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::CloudWatch::Alarm"
    }


def alarm_problems(template: Mapping[str, Any]) -> list[str]:
    """Every rule an alarm of the template breaks, as ``Alarm: why``; [] when all hold."""
    parameters = template.get("Parameters", {})
    problems: list[str] = []
    for name, alarm in alarms(template).items():
        problems += [f"{name}: {why}" for why in _problems(alarm, parameters)]
    return problems


def _problems(alarm: Mapping[str, Any], parameters: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for key in ("AlarmActions", "OKActions"):
        if not alarm.get(key):
            problems.append(f"no {key}: nobody hears of it")
    if alarm.get("TreatMissingData") not in MISSING_DATA:
        problems.append("TreatMissingData not chosen")
    if alarm.get("ComparisonOperator") not in OPERATORS or "Threshold" not in alarm:
        problems.append("needs a static Threshold and ComparisonOperator")
    single = [k for k in ("Namespace", "MetricName", "Statistic", "Period", "Dimensions") if k in alarm]
    metrics = alarm.get("Metrics")
    if metrics and single:
        problems.append(f"both Metrics and {', '.join(single)}")
    if not metrics and not {"Namespace", "MetricName", "Statistic", "Period"} <= set(single):
        problems.append("a single-metric alarm needs Namespace, MetricName, Statistic and Period")
    periods, insights = _periods(alarm, metrics or [], problems)
    evaluations = _number(alarm.get("EvaluationPeriods"), parameters)
    datapoints = _number(alarm.get("DatapointsToAlarm", alarm.get("EvaluationPeriods")), parameters)
    if evaluations is None or evaluations < 1:
        problems.append("EvaluationPeriods missing")
        return problems
    if datapoints is None or not 1 <= datapoints <= evaluations:
        problems.append(f"DatapointsToAlarm {datapoints} not within 1..EvaluationPeriods {evaluations}")
    for period in periods:
        problems += _range_problems(period, evaluations, insights)
    return problems


def _periods(alarm: Mapping[str, Any], metrics: list[Any], problems: list[str]) -> tuple[list[int], bool]:
    """The periods the alarm evaluates, and whether it is a Metrics Insights alarm; problems of its entries."""
    ids = [m.get("Id", "") for m in metrics]
    if len(set(ids)) != len(ids) or not all(re.fullmatch(r"[a-z][A-Za-z0-9_]*", i) for i in ids):
        problems.append(f"metric ids must be unique and start with a lower-case letter: {ids}")
    if metrics and sum(1 for m in metrics if m.get("ReturnData", True) is not False) != 1:
        problems.append("exactly one entry of Metrics must return data")
    queries = [m for m in metrics if _expression(m).lstrip().upper().startswith("SELECT")]
    if len(queries) > 1:
        problems.append(f"{len(queries)} Metrics Insights queries: CloudWatch takes one per alarm")
    elif queries and len(metrics) > 1:
        problems.append("a Metrics Insights query must be the alarm's only entry")
    periods = [alarm["Period"]] if "Period" in alarm else []
    for entry in metrics:
        period = entry.get("MetricStat", {}).get("Period", entry.get("Period"))
        if period is not None:
            periods.append(period)
        elif "MetricStat" in entry or entry in queries:
            problems.append(f"{entry.get('Id')}: no Period")
    for period in periods:
        if not isinstance(period, int) or not (period in (10, 20, 30) or (period > 0 and period % 60 == 0)):
            problems.append(f"Period {period!r} is not 10, 20, 30 or a multiple of 60")
    return [p for p in periods if isinstance(p, int)], bool(queries)


def _expression(entry: Mapping[str, Any]) -> str:
    """A metric entry's expression, as written or inside a ``Fn::Sub``."""
    expression = entry.get("Expression", "")
    return str(expression.get("Fn::Sub", "")) if isinstance(expression, Mapping) else str(expression)


def _range_problems(period: int, evaluations: int, insights: bool) -> list[str]:
    window = period * evaluations
    limit = INSIGHTS_WINDOW if insights else (DAY if period < 3_600 else WEEK)
    if window > limit:
        return [f"evaluates {window} s ({period} s x {evaluations}): the limit is {limit} s"]
    return []


def _number(value: Any, parameters: Mapping[str, Any]) -> int | None:
    """A literal, or a parameter's largest allowed value (its worst case)."""
    if isinstance(value, Mapping) and "Ref" in value:
        parameter = parameters.get(value["Ref"], {})
        value = parameter.get("MaxValue", parameter.get("Default"))
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# --- isolation: every query of the service's own metrics is this install's ---------------------------------
# Every EMF metric carries the ``instance`` dimension (chalicelib/adapters/observability.py); an alarm or a
# dashboard widget that does not filter on it would count every install in the account and region.
SERVICE_NAMESPACE = "EksIamSync"
INSTANCE_FILTER = "instance = '${Instance}'"
SEARCH_FILTER = 'instance="${Instance}"'


def instance_problems(template: Mapping[str, Any]) -> list[str]:
    """Every alarm or dashboard query of the service's namespace that is not filtered by the instance."""
    problems: list[str] = []
    for name, alarm in alarms(template).items():
        problems += [f"{name}: {why}" for why in _alarm_instance_problems(alarm)]
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::CloudWatch::Dashboard":
            body = resource.get("Properties", {}).get("DashboardBody", {})
            text = body.get("Fn::Sub", "") if isinstance(body, Mapping) else ""
            problems += [f"{name}: {why}" for why in _dashboard_instance_problems(text)]
    return problems


def _alarm_instance_problems(alarm: Mapping[str, Any]) -> list[str]:
    problems = []
    if alarm.get("Namespace") == SERVICE_NAMESPACE and {"Name": "instance", "Value": {"Ref": "Instance"}} not in (
        alarm.get("Dimensions") or []
    ):
        problems.append("its metric has no instance dimension of {Ref: Instance}")
    for entry in alarm.get("Metrics") or []:
        metric = entry.get("MetricStat", {}).get("Metric", {})
        if metric.get("Namespace") == SERVICE_NAMESPACE and {"Name": "instance", "Value": {"Ref": "Instance"}} not in (
            metric.get("Dimensions") or []
        ):
            problems.append(f"{entry.get('Id')}: its metric has no instance dimension of {{Ref: Instance}}")
        text = _expression(entry)
        if SERVICE_NAMESPACE in text and not _insights_filtered(text):
            problems.append(f"{entry.get('Id')}: the query is not filtered by the instance: {text}")
    return problems


def _insights_filtered(query: str) -> bool:
    """``... FROM SCHEMA(EksIamSync, ..., instance, ...) WHERE instance = '${Instance}' [AND ...]``."""
    schema = re.search(r"SCHEMA\(\s*EksIamSync\s*,([^)]*)\)", query)
    where = re.search(r"\bWHERE\s+(.*)", query)
    if not schema or not where or "instance" not in [d.strip() for d in schema.group(1).split(",")]:
        return False
    conditions = re.split(r"\s+AND\s+", where.group(1).strip())
    return INSTANCE_FILTER in conditions and not re.search(r"\bOR\b", where.group(1))


def _dashboard_instance_problems(body: str) -> list[str]:
    problems = []
    for search in re.findall(r"SEARCH\('((?:[^'\\]|\\.)*)'", body):
        if SERVICE_NAMESPACE not in search:
            continue
        schema = re.match(r"\s*\{([^}]*)\}", search)
        if not schema or "instance" not in schema.group(1).split(","):
            problems.append(f"a search without instance in its schema: {search}")
        elif SEARCH_FILTER not in search.replace('\\"', '"'):
            problems.append(f"a search not filtered by the instance: {search}")
    return problems
