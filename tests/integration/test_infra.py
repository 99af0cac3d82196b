"""The deployable artifact: `make package` (Chalice with the merge template, tools/package.py), and every
template through cfn-lint: roles, dead letters, retries, alarms, log groups with retention and logs
permissions scoped to them, a permissions boundary, reserved concurrency, the dashboard, VPC settings with
the ENI permissions, and the tag-governance policy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.engine.events import EVENT_PATTERN
from chalicelib.model.ownership import SERVICE_GROUP
from tests.integration.test_package import packaged_dev, packaged_in_a_vpc

ROOT = Path(__file__).parents[2]
TEMPLATES = ROOT / "infra" / "cloudformation"
BIN = Path(sys.executable).parent


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain data."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=CfnLoader)
    return data


@pytest.fixture(scope="module")
def packaged() -> Path:
    """dist/dev as `make package STAGE=dev` writes it (built once, with tests/integration/test_package.py)."""
    return packaged_dev().built.directory


def test_chalice_package_merges_roles_dead_letters_retries_and_alarms(packaged: Path) -> None:
    template = load(packaged / "template.yaml")
    resources = template["Resources"]
    assert {"OnIamEvent", "ReconcileAll", "OnIamEventRole", "ReconcileAllRole"} <= set(resources)
    assert {
        "EventsDeadLetterQueue",
        "OnIamEventInvokeConfig",
        "ReconcileAllInvokeConfig",
        "DeadLettersAlarm",
        "OnIamEventErrorsAlarm",
        "ReconcileAllErrorsAlarm",
        "GuardrailRefusalsAlarm",
        "ReconcileFailuresAlarm",
        "IdentityLimitsAlarm",
        "ConfigInvalidAlarm",
    } <= set(resources)
    rule = resources["OnIamEvent"]["Properties"]["Events"]["OnIamEventEvent"]["Properties"]
    assert rule["Pattern"] == EVENT_PATTERN  # the merge kept Chalice's pattern
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] == 185 and "DeadLetterConfig" in rule
    assert resources["OnIamEvent"]["Properties"]["Handler"] == "app.on_iam_event"
    assert resources["ReconcileAll"]["Properties"]["Handler"] == "app.reconcile_all"
    assert (packaged / "deployment.zip").stat().st_size > 1_000_000


def test_every_template_passes_cfn_lint(packaged: Path) -> None:
    templates = [
        packaged / "template.yaml",
        TEMPLATES / "event-forwarder.yaml",
        TEMPLATES / "cluster-bootstrap.yaml",
        TEMPLATES / "tag-governance.yaml",
    ]
    result = subprocess.run([str(BIN / "cfn-lint"), *map(str, templates)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_forwarder_uses_on_iam_event_s_pattern() -> None:
    rule = load(TEMPLATES / "event-forwarder.yaml")["Resources"]["ForwardIamEvents"]["Properties"]
    assert rule["EventPattern"] == EVENT_PATTERN


def test_the_bootstrap_maps_both_roles_to_the_service_group() -> None:
    resources = load(TEMPLATES / "cluster-bootstrap.yaml")["Resources"]
    entries = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EKS::AccessEntry"]
    assert len(entries) == 2 and all(e["KubernetesGroups"] == [SERVICE_GROUP] for e in entries)


# --- operations: log groups, logs permissions, boundary, concurrency, dashboard ------------------------------


def inline_policies(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [s for p in template["Resources"][role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_each_function_logs_to_its_own_group_with_retention_and_may_write_only_there(packaged: Path) -> None:
    template = load(packaged / "template.yaml")
    resources = template["Resources"]
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 90
    for function, group, role in (
        ("OnIamEvent", "OnIamEventLogGroup", "OnIamEventRole"),
        ("ReconcileAll", "ReconcileAllLogGroup", "ReconcileAllRole"),
    ):
        assert resources[function]["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": group}}
        log_group = resources[group]["Properties"]
        assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        name = log_group["LogGroupName"]["Fn::Sub"]
        assert name.startswith("/aws/lambda/eks-iam-sync-${Stage}-")
        logs = [s for s in inline_policies(template, role) if any(a.startswith("logs:") for a in listed(s["Action"]))]
        assert logs and all(not a.endswith("*") for s in logs for a in listed(s["Action"]))
        for resource in (r for s in logs for r in listed(s["Resource"])):
            assert resource == "arn:aws:logs:*:*:log-group:/aws/lambda/eks-iam-sync-dev-*"  # only the stage's groups


def test_a_permissions_boundary_can_be_set_on_every_role(packaged: Path) -> None:
    template = load(packaged / "template.yaml")
    parameter = template["Parameters"]["PermissionsBoundaryArn"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    assert pattern.match("") and pattern.match("arn:aws-us-gov:iam::123456789012:policy/boundaries/eks")
    assert not pattern.match("arn:aws:iam::123456789012:role/x")
    expected = {"Fn::If": ["HasPermissionsBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]}
    roles = [name for name, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
    assert sorted(roles) == ["OnIamEventRole", "ReconcileAllRole"]
    for role in roles:
        assert template["Resources"][role]["Properties"]["PermissionsBoundary"] == expected
    forwarder = load(TEMPLATES / "event-forwarder.yaml")
    assert forwarder["Resources"]["ForwardingRole"]["Properties"]["PermissionsBoundary"]["Fn::If"][0] == (
        "HasPermissionsBoundary"
    )


def test_the_event_function_s_concurrency_is_capped_and_the_schedule_s_is_not(packaged: Path) -> None:
    resources = load(packaged / "template.yaml")["Resources"]
    assert resources["OnIamEvent"]["Properties"]["ReservedConcurrentExecutions"] == 2
    assert "ReservedConcurrentExecutions" not in resources["ReconcileAll"]["Properties"]


def emitted_metrics() -> set[str]:
    """Every EMF metric chalicelib emits: observer.count/milliseconds/percent("Name", ...) and the
    RoleBinding counts named in a table of apply.py."""
    names: set[str] = set()
    for source in (ROOT / "chalicelib").rglob("*.py"):
        text = source.read_text()
        names |= set(re.findall(r"\.(?:count|milliseconds|percent)\(\s*\"([A-Z]\w+)\"", text))
        names |= set(re.findall(r"\(\s*\"(Bindings[A-Z]\w+)\",\s*\(", text))
    return names


def dashboard_body(template: dict[str, Any]) -> dict[str, Any]:
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    references = set(re.findall(r"\$\{([\w:.]+)\}", body))
    known = set(template["Resources"]) | set(template["Parameters"]) | {"AWS::Region"}
    assert {r.split(".")[0] for r in references} <= known, "the dashboard names something the stack does not have"
    data: dict[str, Any] = json.loads(re.sub(r"\$\{[\w:.]+\}", "x", body))
    return data


def test_the_dashboard_shows_every_metric_the_service_emits(packaged: Path) -> None:
    template = load(packaged / "template.yaml")
    widgets = dashboard_body(template)["widgets"]
    expressions = [
        m[0]["expression"]
        for w in widgets
        if w["type"] == "metric"
        for m in w["properties"]["metrics"]
        if isinstance(m[0], dict)
    ]
    shown = {re.search(r'MetricName="(\w+)"', e).group(1) for e in expressions}  # type: ignore[union-attr]
    emitted = emitted_metrics()
    assert {
        "EventsIgnored",
        "AwsAuthEntriesAdded",
        "AccessEntriesChanged",
        "BindingsCreated",
        "Refusals",
        "GuardrailRefusals",
        "ReconcileFailures",
        "ReconcileDuration",
        "AwsAuthSize",
        "AccessEntriesUsage",
    } <= emitted
    assert emitted == shown, f"add to the Dashboard in chalice-merge.yaml: {sorted(emitted - shown)}"
    assert all(e.startswith("SEARCH('{EksIamSync,") and "service}" in e for e in expressions)
    titles = " ".join(w["properties"].get("title", "") for w in widgets).lower()
    for topic in ("events", "failures", "changes", "refusals", "duration", "size"):
        assert topic in titles
    lambda_metrics = {
        m[1] for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"] if m[0] == "AWS/Lambda"
    }
    assert {"Invocations", "Throttles", "Errors", "Duration"} <= lambda_metrics


# --- private clusters: per-stage VPC settings and the ENI permissions ---------------------------------------


def test_a_stage_with_vpc_settings_runs_both_functions_in_the_vpc_with_the_eni_permissions() -> None:
    project, template = packaged_in_a_vpc()
    for function, role in (("OnIamEvent", "OnIamEventRole"), ("ReconcileAll", "ReconcileAllRole")):
        vpc = template["Resources"][function]["Properties"]["VpcConfig"]
        assert vpc == {"SubnetIds": ["subnet-0aaa1111", "subnet-0bbb2222"], "SecurityGroupIds": ["sg-0ccc3333"]}
        actions = {a for s in inline_policies(template, role) for a in listed(s["Action"])}
        assert {"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces"} <= actions
    assert template["Parameters"]["Stage"]["AllowedValues"] == ["vpc"]
    result = subprocess.run(
        [str(BIN / "cfn-lint"), str(project / "dist" / "template.yaml")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
    dev = load(packaged_dev().built.template)
    assert "VpcConfig" not in dev["Resources"]["OnIamEvent"]["Properties"]
    assert not any(a.startswith("ec2:") for s in inline_policies(dev, "OnIamEventRole") for a in listed(s["Action"]))


# --- tag governance --------------------------------------------------------------------------------------------


def test_only_named_principals_may_set_or_remove_the_grant_tags() -> None:
    template = load(TEMPLATES / "tag-governance.yaml")
    resources = template["Resources"]
    scp, policy = resources["EksAccessTagsScp"], resources["EksAccessTagsPolicy"]
    assert scp["Properties"]["Type"] == "SERVICE_CONTROL_POLICY" and scp["Condition"] == "HasScpTargets"
    for document in (scp["Properties"]["Content"], policy["Properties"]["PolicyDocument"]):
        [statement] = document["Statement"]
        assert statement["Effect"] == "Deny" and statement["Resource"] == "*"
        assert set(statement["Action"]) == {
            "iam:TagUser",
            "iam:TagRole",
            "iam:UntagUser",
            "iam:UntagRole",
            "iam:CreateUser",  # a new principal created with the tag
            "iam:CreateRole",
        }
        assert statement["Condition"] == {
            "ForAnyValue:StringLike": {"aws:TagKeys": [{"Fn::Sub": "${TagPrefix}*"}]},
            "ArnNotLike": {"aws:PrincipalArn": {"Ref": "TaggingPrincipalArns"}},
        }
    assert template["Parameters"]["TagPrefix"]["Default"] == "eks-access/"
    from chalicelib.config import TagGrants  # noqa: PLC0415

    assert TagGrants().tag_prefix == template["Parameters"]["TagPrefix"]["Default"]
