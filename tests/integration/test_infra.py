"""The deployable artifact: `make package` (Chalice with the merge template, tools/package.py), and every
template through cfn-lint: roles, dead letters, retries, alarms, log groups with retention and logs
permissions scoped to them, a permissions boundary, reserved concurrency, the dashboard, VPC settings with
the ENI permissions, and the tag-governance policy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.engine.events import EVENT_PATTERN
from chalicelib.model.ownership import SERVICE_GROUP
from tests.alarm_rules import alarm_problems, alarms, instance_problems
from tests.cfn import load
from tests.harness.principals import assumed
from tests.integration.test_package import packaged_dev, packaged_in_a_vpc

ROOT = Path(__file__).parents[2]
TEMPLATES = ROOT / "infra" / "cloudformation"
BIN = Path(sys.executable).parent


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
        "TransientFailuresAlarm",
        "AwsAuthSizeAlarm",
        "AccessEntriesUsageAlarm",
        "ConfigInvalidAlarm",
        "FullRunHeartbeatAlarm",
        "EventSilenceAlarm",
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
        TEMPLATES / "cluster-account-role.yaml",
        TEMPLATES / "identity-account-reader.yaml",
    ]
    result = subprocess.run([str(BIN / "cfn-lint"), *map(str, templates)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_forwarder_uses_on_iam_event_s_pattern() -> None:
    rule = load(TEMPLATES / "event-forwarder.yaml")["Resources"]["ForwardIamEvents"]["Properties"]
    assert rule["EventPattern"] == EVENT_PATTERN


def test_the_bootstrap_maps_both_roles_to_the_service_group() -> None:
    template = load(TEMPLATES / "cluster-bootstrap.yaml")
    for parameter in ("OnIamEventRoleArn", "ReconcileAllRoleArn"):
        pattern = re.compile(template["Parameters"][parameter]["AllowedPattern"])
        assert pattern.match("arn:aws:iam::123456789012:role/eks-iam-sync-prod-on-iam-event")
        assert pattern.match("arn:aws-us-gov:iam::123456789012:role/platform/services/eks-iam-sync-prod")  # a path
        assert not pattern.match("arn:aws:iam::123456789012:user/alice")
        assert not pattern.match("arn:aws:sts::123456789012:assumed-role/eks-iam-sync-prod/session")
    resources = template["Resources"]
    entries = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EKS::AccessEntry"]
    assert len(entries) == 2 and all(e["KubernetesGroups"] == [SERVICE_GROUP] for e in entries)


def test_the_stack_maps_its_roles_in_up_to_five_named_clusters() -> None:
    template = load(TEMPLATES / "chalice-merge.yaml")
    pattern = re.compile(template["Parameters"]["AccessEntryClusters"]["AllowedPattern"])
    assert all(pattern.fullmatch(v) for v in ("", "bttrm-eks-dev-0", "a,b-1,c_2,d,E5"))
    assert not any(pattern.fullmatch(v) for v in ("a,b,c,d,e,f", "a, b", "a,", ",a", "-a"))  # refused by CloudFormation
    entries = [r for r in template["Resources"].values() if r["Type"] == "AWS::EKS::AccessEntry"]
    assert len(entries) == 10 and all(e["Properties"]["KubernetesGroups"] == [SERVICE_GROUP] for e in entries)
    principals = sorted(str(e["Properties"]["PrincipalArn"]) for e in entries)
    assert principals == sorted(5 * [str({"Fn::GetAtt": [r, "Arn"]}) for r in ("OnIamEventRole", "ReconcileAllRole")])


# --- operations: log groups, logs permissions, boundary, concurrency, dashboard ------------------------------


def inline_policies(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [s for p in template["Resources"][role]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_each_function_logs_to_its_own_group_with_retention_and_may_write_only_there(packaged: Path) -> None:
    template = load(packaged / "template.yaml")
    resources = template["Resources"]
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 365
    for function, group, role in (
        ("OnIamEvent", "OnIamEventLogGroup", "OnIamEventRole"),
        ("ReconcileAll", "ReconcileAllLogGroup", "ReconcileAllRole"),
        ("OnIamEvents", "OnIamEventsLogGroup", "OnIamEventRole"),
        ("ReconcileCluster", "ReconcileClusterLogGroup", "ReconcileAllRole"),
    ):
        assert resources[function]["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": group}}
        assert resources[group]["DeletionPolicy"] == resources[group]["UpdateReplacePolicy"] == "Retain"
        log_group = resources[group]["Properties"]
        assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        name, names = log_group["LogGroupName"]["Fn::Sub"]
        assert name.startswith("/aws/lambda/eks-iam-sync-${Stage}-") and name.endswith("-${Install}")
        assert names == {"Install": {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}}
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


def test_the_event_function_s_concurrency_is_a_parameter_reserving_none_by_default(packaged: Path) -> None:
    template = load(packaged / "template.yaml")
    resources = template["Resources"]
    assert template["Parameters"]["EventFunctionConcurrency"]["Default"] == 0  # none: new accounts can create it
    assert resources["OnIamEvent"]["Properties"]["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReservesEventConcurrency", {"Ref": "EventFunctionConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    for function in ("ReconcileAll", "OnIamEvents", "ReconcileCluster"):
        assert "ReservedConcurrentExecutions" not in resources[function]["Properties"]


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
    schemas = [e.split("}")[0].split(",") for e in expressions]
    assert all(e.startswith("SEARCH('{EksIamSync,") for e in expressions)
    assert all({"service", "instance"} <= set(schema) for schema in schemas)  # this install's, filtered below
    assert instance_problems(template) == []
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


# --- the packaged stack deployed into moto's CloudFormation ---------------------------------------------------
# moto creates the roles, policies, queues, log groups, SNS topics and the dashboard, and passes over what it
# does not model (the SAM functions, alarms, event invoke configs): it checks references, conditions and
# intrinsic functions as CloudFormation resolves them, and the DeletionPolicy of what it deletes.


# The stacks go into an account of their own (assumed-role credentials: moto keys its state by the caller's
# account). moto keeps the inline role policies CloudFormation creates in a form its
# GetAccountAuthorizationDetails cannot serialise (a 500), which would break every later IAM snapshot of the
# account the other tests use.
STACK_ACCOUNT_ROLE = "arn:aws:iam::999900001111:role/eks-iam-sync-infra-tests"


def stack_account(region: str = "us-east-2") -> Any:
    """A boto3 session in the stacks' account."""
    import boto3  # noqa: PLC0415 - boto3 against the session's moto server

    return assumed(boto3.Session(region_name=region), STACK_ACCOUNT_ROLE, "infra-tests", region)


def deploy(template: Path, stack: str, region: str = "us-east-2", **parameters: str) -> dict[str, Any]:
    """Creates the stack in moto (AWS_ENDPOINT_URL) and returns its description once complete."""

    cloudformation = stack_account().client("cloudformation", region_name=region)
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=template.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    [described] = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
    return dict(described)


def log_group_names(prefix: str, region: str = "us-east-2") -> set[str]:

    pages = (
        stack_account()
        .client("logs", region_name=region)
        .get_paginator("describe_log_groups")
        .paginate(logGroupNamePrefix=prefix)
    )
    return {g["logGroupName"] for page in pages for g in page["logGroups"]}


@pytest.mark.filterwarnings("ignore:Tried to parse")
def test_the_audit_trail_outlives_the_stack_and_the_stack_can_be_created_again(
    packaged: Path, aws_endpoint: str
) -> None:

    prefix = "/aws/lambda/eks-iam-sync-dev-"
    before = log_group_names(prefix)
    first = deploy(packaged / "template.yaml", "eks-iam-sync-dev-retain", LogRetentionDays="731")
    install = first["StackId"].split("/")[2]
    created = log_group_names(prefix) - before
    assert created == {
        f"{prefix}{f}-{install}" for f in ("on-iam-event", "reconcile-all", "on-iam-events", "reconcile-cluster")
    }
    outputs = {o["OutputKey"]: o["OutputValue"] for o in first["Outputs"]}
    assert set(outputs["LogGroups"].split(",")) == created
    groups = (
        stack_account()
        .client("logs", region_name="us-east-2")
        .describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]
    )
    assert {g["retentionInDays"] for g in groups if g["logGroupName"] in created} == {731}

    cloudformation = stack_account().client("cloudformation", region_name="us-east-2")
    cloudformation.delete_stack(StackName="eks-iam-sync-dev-retain")
    assert created <= log_group_names(prefix), "the audit trail went with the stack"

    second = deploy(packaged / "template.yaml", "eks-iam-sync-dev-retain")  # the same name again: no clash
    again = log_group_names(prefix) - before - created
    assert len(again) == 4 and all(name.endswith(second["StackId"].split("/")[2]) for name in again)
    cloudformation.delete_stack(StackName="eks-iam-sync-dev-retain")


# --- alarms that reach someone ------------------------------------------------------------------------------


def test_every_alarm_of_the_packaged_template_keeps_cloudwatch_s_rules_and_notifies_the_topic(packaged: Path) -> None:
    template = load(packaged / "template.yaml")
    assert alarm_problems(template) == []
    topic = {"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}
    for name, alarm in alarms(template).items():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [topic], name
    # the schedule's alarms evaluate the schedule's period (15 minutes unless EKS_IAM_SYNC_SCHEDULE_MINUTES)
    resources = template["Resources"]
    for name in ("FullRunHeartbeatAlarm", "ReconcileAllErrorsAlarm"):
        assert resources[name]["Properties"]["Period"] == 900
    heartbeat = resources["FullRunHeartbeatAlarm"]["Properties"]
    assert (heartbeat["MetricName"], heartbeat["TreatMissingData"]) == ("FullRunsSucceeded", "breaching")
    # what the runner emits, of this install only
    assert heartbeat["Dimensions"] == [
        {"Name": "instance", "Value": {"Ref": "Instance"}},
        {"Name": "service", "Value": "eks-iam-sync"},
    ]
    assert instance_problems(template) == []
    assert template["Parameters"]["Instance"]["Default"] == "dev"  # the packaged stage
    for function in package_functions():
        environment = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert environment["EKS_IAM_SYNC_INSTANCE"] == {"Ref": "Instance"}, function


def package_functions() -> list[str]:
    from tools import package  # noqa: PLC0415

    return list(package.FUNCTIONS)


def test_the_schedule_s_alarms_follow_the_packaged_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    from tools import package  # noqa: PLC0415

    monkeypatch.setenv("EKS_IAM_SYNC_SCHEDULE_MINUTES", "60")
    skeleton = {
        "Parameters": {},
        "Resources": {
            **{logical: {"Properties": {}} for logical in package.FUNCTIONS},
            **{logical: {"Properties": {"Period": 900}} for logical in package.SCHEDULE_ALARMS},
        },
    }
    finished = package.finish_template(skeleton, "dev")
    assert {finished["Resources"][a]["Properties"]["Period"] for a in package.SCHEDULE_ALARMS} == {3600}


@pytest.mark.filterwarnings("ignore:Tried to parse")
def test_the_stack_creates_the_alarm_topic_and_subscribes_the_address(packaged: Path, aws_endpoint: str) -> None:

    sns = stack_account().client("sns", region_name="us-east-2")
    before = {t["TopicArn"] for t in sns.list_topics()["Topics"]}
    stack = deploy(packaged / "template.yaml", "eks-iam-sync-dev-alarms", AlarmEmail="oncall@example.com")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    created = {t["TopicArn"] for t in sns.list_topics()["Topics"]} - before
    assert created == {outputs["AlarmTopicArn"]}
    # moto's CloudFormation has no AWS::SNS::Subscription: the subscription is checked as written
    subscription = load(packaged / "template.yaml")["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Fn::If": ["HasAlarmTopic", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }

    cloudformation = stack_account().client("cloudformation", region_name="us-east-2")
    cloudformation.delete_stack(StackName="eks-iam-sync-dev-alarms")  # the roles' names are the instance's
    given = sns.create_topic(Name="platform-pager")["TopicArn"]
    stack = deploy(packaged / "template.yaml", "eks-iam-sync-dev-given-topic", AlarmTopicArn=given)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["AlarmTopicArn"] == given
    assert {t["TopicArn"] for t in sns.list_topics()["Topics"]} - before == {given}  # no topic of its own
    cloudformation.delete_stack(StackName="eks-iam-sync-dev-given-topic")


@pytest.mark.filterwarnings("ignore:Tried to parse")
def test_the_forwarder_creates_its_alarm_topic_in_us_east_1(aws_endpoint: str) -> None:
    stack = deploy(
        TEMPLATES / "event-forwarder.yaml",
        "eks-iam-sync-forwarder-test",
        region="us-east-1",
        TargetRegion="us-east-2",
        AlarmEmail="oncall@example.com",
    )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["AlarmTopicArn"].startswith("arn:aws:sns:us-east-1:")


# --- the cross-account roles ------------------------------------------------------------------------------------


def test_the_cross_account_roles_hold_what_the_functions_policy_holds_and_trust_only_the_functions() -> None:
    from chalicelib.config import DEFAULT_CONFIG_PATH, load_config  # noqa: PLC0415
    from chalicelib.deploy import checks  # noqa: PLC0415

    seed = load_config(DEFAULT_CONFIG_PATH)
    stage = checks.Stage("prod", "policy-prod.json", "", (), (), False, {}, {})
    generated = {s["Sid"]: s for s in checks.render_policy(stage, seed)["Statement"]}
    for name, logical in (
        ("cluster-account-role.yaml", "ClusterAccessRole"),
        ("identity-account-reader.yaml", "IamReaderRole"),
    ):
        role = load(TEMPLATES / name)["Resources"][logical]["Properties"]
        [trust] = role["AssumeRolePolicyDocument"]["Statement"]
        # The functions' account, narrowed to their two roles by ARN (which survives a reinstall's new roles).
        [account_root, pieces] = trust["Principal"]["AWS"]["Fn::Sub"]
        assert account_root == "arn:${Partition}:iam::${Account}:root"
        first = {"Fn::Select": [0, {"Ref": "ServiceRoleArns"}]}
        assert pieces == {
            "Partition": {"Fn::Select": [1, {"Fn::Split": [":", first]}]},
            "Account": {"Fn::Select": [4, {"Fn::Split": [":", first]}]},
        }
        assert trust["Condition"]["ArnEquals"] == {"aws:PrincipalArn": {"Ref": "ServiceRoleArns"}}
        assert trust["Condition"]["StringEquals"]["sts:RoleSessionName"] == "eks-iam-sync"
        [policy] = role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]:
            want = generated[statement["Sid"]]
            assert (statement["Effect"], sorted(statement["Action"])) == (want["Effect"], sorted(want["Action"]))
            assert as_instance(statement.get("Condition"), "prod") == want.get("Condition"), statement["Sid"]
    cluster_role = load(TEMPLATES / "cluster-account-role.yaml")["Resources"]["ClusterAccessRole"]["Properties"]
    sids = {s["Sid"] for s in cluster_role["Policies"][0]["PolicyDocument"]["Statement"]}
    assert sids == {
        "FindConfiguredClusters",
        "ReadAccessEntries",
        "CreateOwnedAccessEntries",
        "ChangeOnlyOwnedAccessEntries",
        "NeverTagIntoOwnership",
        "NeverMapSystemGroups",
    }


def as_instance(condition: dict[str, Any] | None, instance: str) -> dict[str, Any] | None:
    """A condition of the template as the stack resolves it with ``Instance=instance`` (its !If taken)."""
    if condition is None or "StringEqualsIfExists" not in condition:
        return condition
    _, chosen, _ = condition["StringEqualsIfExists"]["Fn::If"]
    resolved = {k: instance if v == {"Ref": "Instance"} else v for k, v in chosen.items()}
    return {**condition, "StringEqualsIfExists": resolved}


@pytest.mark.filterwarnings("ignore:Tried to parse")
def test_the_cross_account_roles_deploy_with_a_path(aws_endpoint: str) -> None:
    functions = "arn:aws:iam::123456789012:role/eks-iam-sync-prod-on-iam-event,arn:aws:iam::123456789012:role/x"
    stack = deploy(
        TEMPLATES / "cluster-account-role.yaml",
        "eks-iam-sync-cluster-access",
        ServiceRoleArns=functions,
        RolePath="/platform/",
        ExternalId="bttrm-eks-prod-0-7f3a",
    )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["RoleArn"].endswith(":role/platform/eks-iam-sync-access")
    role = stack_account().client("iam").get_role(RoleName="eks-iam-sync-access")["Role"]
    document = role["AssumeRolePolicyDocument"]
    [trust] = (json.loads(document) if isinstance(document, str) else document)["Statement"]
    assert trust["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert trust["Condition"]["ArnEquals"] == {"aws:PrincipalArn": functions.split(",")}
    stack = deploy(TEMPLATES / "identity-account-reader.yaml", "eks-iam-sync-iam-reader", ServiceRoleArns=functions)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["RoleArn"].endswith(":role/eks-iam-sync-iam-reader")


# --- isolation: the same stage in two regions, two instances in one account -----------------------------------


def stack_names(stack: dict[str, Any], region: str) -> dict[str, str]:
    """What a stack created under an account-global or regional name: roles, queues, dashboard."""
    account = stack_account(region)
    resources = account.client("cloudformation", region_name=region).describe_stack_resources(
        StackName=stack["StackId"]
    )["StackResources"]
    # moto lists what it does not model (alarms, functions) without ids
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if "LogicalResourceId" in r}


@pytest.mark.filterwarnings("ignore:Tried to parse")
def test_the_same_stage_deploys_in_two_regions_and_two_instances_in_one(packaged: Path, aws_endpoint: str) -> None:
    template = packaged / "template.yaml"
    ohio = deploy(template, "eks-iam-sync-dev-isolation", region="us-east-2")
    # the same stage, the same (default) instance, another region: IAM role names are account-global
    oregon = deploy(template, "eks-iam-sync-dev-isolation", region="us-west-2")
    # a second instance of the stage beside the first: every regional name differs too
    team = deploy(template, "eks-iam-sync-dev-team-b", region="us-east-2", Instance="team-b")
    named = {
        "ohio": stack_names(ohio, "us-east-2"),
        "oregon": stack_names(oregon, "us-west-2"),
        "team": stack_names(team, "us-east-2"),
    }
    roles = {where: names["ReconcileAllRole"] for where, names in named.items()}
    assert roles == {
        "ohio": "eks-iam-sync-dev-us-east-2-reconcile-all",
        "oregon": "eks-iam-sync-dev-us-west-2-reconcile-all",
        "team": "eks-iam-sync-team-b-us-east-2-reconcile-all",
    }
    dashboards = {where: names["Dashboard"] for where, names in named.items()}
    assert dashboards == {
        "ohio": "eks-iam-sync-dev-us-east-2",
        "oregon": "eks-iam-sync-dev-us-west-2",
        "team": "eks-iam-sync-team-b-us-east-2",
    }
    for logical in ("EventQueue", "WorkQueue", "EventsDeadLetterQueue", "WorkQueueDeadLetters"):
        assert named["ohio"][logical] != named["team"][logical], logical
        assert "team-b" in named["team"][logical] and "-dev-" in named["ohio"][logical]
    assert len({n["OnIamEventRole"] for n in named.values()}) == 3
    for region, stack in (("us-east-2", ohio), ("us-west-2", oregon), ("us-east-2", team)):
        stack_account(region).client("cloudformation", region_name=region).delete_stack(StackName=stack["StackId"])


# --- reinstall: the function roles' access entries follow the roles -----------------------------------------

STACK_ACCOUNT = STACK_ACCOUNT_ROLE.split(":")[4]


class AccessEntryResources:
    """What CloudFormation does with a stack's AWS::EKS::AccessEntry resources, which moto's CloudFormation
    does not model: on create, each whose Condition holds is created (the emulator's CreateAccessEntry, as
    the stack's account); on delete, deleted. Properties are evaluated with the stack's parameters and the
    ARNs of its roles, for the intrinsics the templates use (Ref, GetAtt .Arn, Sub, Split, Select, Not, Equals)."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.created: dict[str, list[tuple[str, str]]] = {}  # stack name -> (cluster, principal ARN)

    def create(self, stack: dict[str, Any]) -> list[tuple[str, str]]:
        values = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
        account = stack_account()
        for resource in account.client("cloudformation").describe_stack_resources(StackName=stack["StackId"])[
            "StackResources"
        ]:
            if resource.get("ResourceType") == "AWS::IAM::Role":  # moto lists what it does not model bare
                role = account.client("iam").get_role(RoleName=resource["PhysicalResourceId"])["Role"]
                values[f"{resource['LogicalResourceId']}.Arn"] = role["Arn"]
        made = []
        for resource in self.template["Resources"].values():
            holds = "Condition" not in resource or self._value(
                self.template["Conditions"][resource["Condition"]], values
            )
            if resource["Type"] == "AWS::EKS::AccessEntry" and holds:
                props = {k: self._value(v, values) for k, v in resource["Properties"].items()}
                account.client("eks").create_access_entry(
                    clusterName=props["ClusterName"],
                    principalArn=props["PrincipalArn"],
                    username=props["Username"],
                    kubernetesGroups=props["KubernetesGroups"],
                    type=props["Type"],
                )
                made.append((props["ClusterName"], props["PrincipalArn"]))
        self.created[stack["StackName"]] = made
        return made

    def delete(self, stack_name: str) -> None:
        for cluster, principal in self.created.pop(stack_name):
            stack_account().client("eks").delete_access_entry(clusterName=cluster, principalArn=principal)

    def _value(self, node: Any, values: dict[str, str]) -> Any:
        if isinstance(node, list):
            return [self._value(n, values) for n in node]
        if not isinstance(node, dict):
            return node
        [(function, argument)] = node.items()
        if function == "Ref":
            return values[argument]
        if function == "Fn::GetAtt":
            return values[".".join(argument)]
        if function == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], argument)
        first, *rest = (self._value(a, values) for a in argument)
        found: dict[str, Callable[[], Any]] = {
            "Fn::Split": lambda: rest[0].split(first),
            "Fn::Select": lambda: rest[0][int(first)],
            "Fn::Not": lambda: not first,
            "Fn::Equals": lambda: first == rest[0],
        }
        return found[function]()


def reaches(plane: Any, role_arn: str, cluster: str) -> str:
    """Who the cluster takes a fresh token of a session of ``role_arn`` for: the 403's username, or 401."""
    from kubernetes.client.rest import ApiException  # noqa: PLC0415

    from tests.harness.principals import Principal, forbidden_as  # noqa: PLC0415

    session = assumed(stack_account(), role_arn, "eks-iam-sync", "us-east-2")
    try:
        message = forbidden_as(plane.client_for(Principal(role_arn, session).token(cluster, "us-east-2")))
    except ApiException as err:
        return str(err.status)
    return message.split('"')[1]  # User "eks-iam-sync" cannot list resource "nodes" ...


@pytest.mark.filterwarnings("ignore:Tried to parse")
def test_a_stack_created_again_maps_its_new_roles_in_the_clusters_it_names(
    packaged: Path, aws_endpoint: str, eks: Any
) -> None:
    """A stack deleted and created again gets new roles (same ARNs, new unique ids). In the cluster named in
    AccessEntryClusters its entries went and came with the roles, so the new roles reach it at once; in
    the cluster mapped by a cluster-bootstrap.yaml stack kept meanwhile, the entries are the old roles'
    and authenticate nobody (401) until the guide's step for such clusters (that stack deleted and
    deployed again)."""
    from contextlib import ExitStack  # noqa: PLC0415

    from tests.harness.stack import start_cluster  # noqa: PLC0415

    owned, elsewhere = "bttrm-eks-reinstall-0", "bttrm-eks-reinstall-1"
    template_path = packaged / "template.yaml"
    entries = AccessEntryResources(load(template_path))
    bootstrap = AccessEntryResources(load(TEMPLATES / "cluster-bootstrap.yaml"))
    with ExitStack() as stack:
        planes = {
            name: start_cluster(stack, aws_endpoint, name, eks=eks, mode="API_AND_CONFIG_MAP", account=STACK_ACCOUNT)[0]
            for name in (owned, elsewhere)
        }
        service = deploy(template_path, "eks-iam-sync-reinstall", Instance="reinstall", AccessEntryClusters=owned)
        made = entries.create(service)
        roles = sorted({principal for _, principal in made})
        assert {cluster for cluster, _ in made} == {owned} and len(roles) == 2
        outputs = {o["OutputKey"]: o["OutputValue"] for o in service["Outputs"]}
        assert sorted([outputs["OnIamEventRoleArn"], outputs["ReconcileAllRoleArn"]]) == roles
        arns = dict(OnIamEventRoleArn=outputs["OnIamEventRoleArn"], ReconcileAllRoleArn=outputs["ReconcileAllRoleArn"])
        kept = deploy(
            TEMPLATES / "cluster-bootstrap.yaml", "eks-iam-sync-reinstall-bootstrap", ClusterName=elsewhere, **arns
        )
        bootstrap.create(kept)
        ids = {
            arn: stack_account().client("iam").get_role(RoleName=arn.rsplit("/", 1)[1])["Role"]["RoleId"]
            for arn in roles
        }
        assert {(c, reaches(planes[c], arn, c)) for c in planes for arn in roles} == {
            (c, "eks-iam-sync") for c in planes
        }

        cloudformation = stack_account().client("cloudformation")
        cloudformation.delete_stack(StackName="eks-iam-sync-reinstall")
        entries.delete("eks-iam-sync-reinstall")
        again = deploy(template_path, "eks-iam-sync-reinstall", Instance="reinstall", AccessEntryClusters=owned)
        assert sorted({p for _, p in entries.create(again)}) == roles  # the same ARNs ...
        renewed = {
            arn: stack_account().client("iam").get_role(RoleName=arn.rsplit("/", 1)[1])["Role"]["RoleId"]
            for arn in roles
        }
        assert all(renewed[arn] != ids[arn] for arn in roles)  # ... new roles
        assert {reaches(planes[owned], arn, owned) for arn in roles} == {"eks-iam-sync"}
        assert {reaches(planes[elsewhere], arn, elsewhere) for arn in roles} == {"401"}  # bound to the old ids

        cloudformation.delete_stack(StackName="eks-iam-sync-reinstall-bootstrap")  # the guide's step
        bootstrap.delete("eks-iam-sync-reinstall-bootstrap")
        kept = deploy(
            TEMPLATES / "cluster-bootstrap.yaml", "eks-iam-sync-reinstall-bootstrap", ClusterName=elsewhere, **arns
        )
        bootstrap.create(kept)
        assert {reaches(planes[elsewhere], arn, elsewhere) for arn in roles} == {"eks-iam-sync"}

        for name, resources in (("eks-iam-sync-reinstall-bootstrap", bootstrap), ("eks-iam-sync-reinstall", entries)):
            cloudformation.delete_stack(StackName=name)
            resources.delete(name)
        assert not [e for c in planes for e in eks.entries(c)], "the stacks' entries went with them"


def test_the_access_entry_fence_of_the_packaged_roles_follows_the_instance_parameter(packaged: Path) -> None:
    """The stage's policy names its stage as the instance; the stack's roles name the Instance parameter,
    so a second instance of the stage (Instance=team-b) reaches only its own entries."""
    from chalicelib.model.ownership import ENTRY_INSTANCE_TAG  # noqa: PLC0415
    from tools import package  # noqa: PLC0415

    template = load(packaged / "template.yaml")
    fenced = {
        key: value
        for condition in package.role_conditions(template)
        for key, value in condition.items()
        if key.endswith(f"/{ENTRY_INSTANCE_TAG}")
    }
    assert set(fenced) == {f"aws:ResourceTag/{ENTRY_INSTANCE_TAG}", f"aws:RequestTag/{ENTRY_INSTANCE_TAG}"}
    assert all(value == {"Ref": "Instance"} for value in fenced.values())
    policy = json.loads((ROOT / ".chalice" / "policy-dev.json").read_text())
    assert f'"aws:ResourceTag/{ENTRY_INSTANCE_TAG}": "dev"' in json.dumps(policy, separators=(",", ": "))
