"""The Chalice deployment: handler names, stages, and least-privilege policies rendered from the configuration
(chalicelib.deploy.checks: one source of truth for cluster ARNs, partition-aware)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import botocore
import pytest

from app import app
from chalicelib.config import DEFAULT_CONFIG_PATH, load_config, parse_config, partition_of
from chalicelib.deploy import checks as deploy_checks
from chalicelib.engine.events import EVENT_PATTERN
from chalicelib.entry.cli import main

ROOT = Path(__file__).parents[2]
CHALICE = ROOT / ".chalice"
ADAPTERS = ROOT / "chalicelib" / "adapters"
IAM_READS = {
    "iam:GetAccountAuthorizationDetails",
    "iam:GetGroup",
    "iam:GetUser",
    "iam:ListGroupsForUser",
    "iam:GetRole",
}


def test_handler_names_are_the_contract() -> None:
    sources: dict[str, Any] = {source.name: source for source in app.event_sources}
    assert set(sources) == {"on_iam_event", "reconcile_all", "on_iam_events", "reconcile_cluster"}  # issue 21
    assert sources["on_iam_event"].event_pattern == EVENT_PATTERN
    assert sources["reconcile_all"].schedule_expression.to_string() == "rate(15 minutes)"


def test_stages_use_hand_written_policies() -> None:
    config = json.loads((CHALICE / "config.json").read_text())
    assert config["autogen_policy"] is False
    assert set(config["stages"]) == {"dev", "prod"}
    for stage in config["stages"].values():
        assert (CHALICE / stage["iam_policy_file"]).is_file()


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_policies_grant_exactly_the_reads_used_and_no_wildcard_action(stage: str) -> None:
    policy = json.loads((CHALICE / f"policy-{stage}.json").read_text())
    actions = [a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not any("*" in a for a in actions)
    assert {a for a in actions if a.startswith("iam:")} == IAM_READS
    [describe] = [s for s in policy["Statement"] if "eks:DescribeCluster" in s["Action"]]
    seed = load_config(DEFAULT_CONFIG_PATH)
    assert describe["Resource"] == [f"arn:aws:eks:{c.region}:*:cluster/{c.name}" for c in seed.clusters]
    assert not any(s["Resource"] == "arn:aws:logs:*:*:*" or "logs:*" in s["Action"] for s in policy["Statement"])


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_access_entry_actions_are_exactly_those_used_on_the_configured_clusters_and_writes_need_the_ownership_tag(
    stage: str,
) -> None:
    policy = json.loads((CHALICE / f"policy-{stage}.json").read_text())
    statements = [
        s for s in policy["Statement"] if s["Effect"] == "Allow" and any("AccessEntr" in a for a in s["Action"])
    ]
    actions = {a for s in statements for a in s["Action"]}
    assert actions == {
        "eks:ListAccessEntries",
        "eks:DescribeAccessEntry",
        "eks:CreateAccessEntry",
        "eks:UpdateAccessEntry",
        "eks:DeleteAccessEntry",
        "eks:TagResource",
    }
    seed = load_config(DEFAULT_CONFIG_PATH)
    allowed = {f"arn:aws:eks:{c.region}:*:cluster/{c.name}" for c in seed.clusters} | {
        f"arn:aws:eks:{c.region}:*:access-entry/{c.name}/*" for c in seed.clusters
    }
    for statement in statements:
        assert set(statement["Resource"]) <= allowed
        writes = set(statement["Action"]) - {"eks:ListAccessEntries", "eks:DescribeAccessEntry"}
        if writes:
            condition = statement["Condition"]["StringEquals"]
            assert set(condition.values()) == {"eks-iam-sync"}
            assert all(k.endswith("Tag/app.kubernetes.io/managed-by") for k in condition)


def test_every_function_has_time_for_at_least_one_cluster_s_budget() -> None:
    """A run does not start a cluster with less than connect + 2 x read timeout left; a function
    configured with less than that could never reconcile anything."""
    from chalicelib.config.settings import Timeouts  # noqa: PLC0415

    bounds = Timeouts()
    budget = bounds.connect + 2 * bounds.read
    config = json.loads((CHALICE / "config.json").read_text())
    timeouts = [config["lambda_timeout"]] + [
        f["lambda_timeout"] for s in config["stages"].values() for f in s.get("lambda_functions", {}).values()
    ]
    assert min(timeouts) >= 2 * budget


# --- one source of truth: the policy is rendered from the configuration the stage deploys -----------------


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def adapter_actions() -> set[str]:
    """Every IAM and EKS API action chalicelib's adapters call, paginated or not."""
    actions = set()
    pattern = re.compile(r"\b_?(iam|eks)\.(?:get_paginator\(\s*\"([a-z_]+)\"|([a-z_]+)\()")
    for source in ADAPTERS.glob("*.py"):
        for service, paginated, direct in pattern.findall(source.read_text()):
            actions.add(f"{service}:{_camel(paginated or direct)}")
    return actions


def policy_actions(policy: dict[str, Any], prefixes: tuple[str, ...] = ("iam:", "eks:")) -> set[str]:
    """The actions the policy allows (a Deny grants nothing)."""
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    listed = (a for s in allows for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    return {a for a in listed if a.startswith(prefixes)}


# Made only by operator commands (`report --last-used`, `validate --live`'s catalogue check), with the
# operator's own credentials, never by the functions: their policy does not grant them.
REPORT_ONLY_ACTIONS = {"eks:ListAccessPolicies", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed"}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_policy_allows_exactly_the_iam_and_eks_calls_the_adapters_make(stage: str) -> None:
    """GetGroup (a renamed group's members) was called and not allowed: AccessDenied in Lambda."""
    policy = json.loads((CHALICE / f"policy-{stage}.json").read_text())
    # The seed grants no access policy, so its functions may associate none (see the access-policy tests).
    assert not load_config(DEFAULT_CONFIG_PATH).granted_access_policies()
    assert adapter_actions() - REPORT_ONLY_ACTIONS - {"eks:AssociateAccessPolicy"} == policy_actions(policy)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_shipped_policies_are_the_rendering_of_the_seed_configuration(stage: str) -> None:
    seed = load_config(DEFAULT_CONFIG_PATH)
    assert deploy_checks.project_problems(ROOT, stage, seed) == []
    settings = deploy_checks.read_stage(json.loads((CHALICE / "config.json").read_text()), stage)
    rendered = deploy_checks.merged_policy(deploy_checks.render_policy(settings, seed), None)
    assert json.loads((CHALICE / f"policy-{stage}.json").read_text()) == rendered
    [logs] = [s for s in rendered["Statement"] if s["Sid"] == "WriteOwnLogs"]
    assert logs["Resource"] == f"arn:aws:logs:*:*:log-group:/aws/lambda/eks-iam-sync-{stage}-*"


REGIONS = {
    "us-east-2": "aws",
    "eu-west-1": "aws",
    "cn-north-1": "aws-cn",
    "cn-northwest-1": "aws-cn",
    "us-gov-west-1": "aws-us-gov",
    "us-iso-east-1": "aws-iso",
    "us-isob-east-1": "aws-iso-b",
    "eu-isoe-west-1": "aws-iso-e",
    "us-isof-south-1": "aws-iso-f",
    "eusc-de-east-1": "aws-eusc",
}


def test_partitions_follow_botocore_s_region_patterns() -> None:
    partitions = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())["partitions"]
    for region, partition in REGIONS.items():
        [matching] = [p["id"] for p in partitions if re.match(p["regionRegex"], region)]
        assert partition_of(region) == partition == matching, region


def stage(**settings: Any) -> deploy_checks.Stage:
    chalice = {
        "autogen_policy": False,
        "lambda_timeout": 120,
        "stages": {"s": {"iam_policy_file": "p.json", **settings}},
    }
    return deploy_checks.read_stage(chalice, "s")


def test_a_cluster_s_partition_comes_from_its_region() -> None:
    config = parse_config("clusters: [{name: c1, region: cn-north-1}, {name: c2, region: cn-northwest-1}]")
    policy = deploy_checks.render_policy(stage(), config)
    resources = {
        r for s in policy["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }
    assert "arn:aws-cn:eks:cn-north-1:*:cluster/c1" in resources
    assert "arn:aws-cn:eks:cn-northwest-1:*:access-entry/c2/*" in resources
    assert "arn:aws-cn:logs:*:*:log-group:/aws/lambda/eks-iam-sync-s-*" in resources
    assert not [r for r in resources if r.startswith("arn:aws:")]
    assert deploy_checks.policy_problems(policy, policy, config) == []


def test_the_check_names_what_differs_from_the_configuration() -> None:
    seed = load_config(DEFAULT_CONFIG_PATH)
    policy = deploy_checks.render_policy(stage(), seed)
    other = parse_config("clusters: [{name: bttrm-eks-dev-0, region: us-east-2}, {name: platform, region: eu-west-1}]")
    problems = deploy_checks.policy_problems(policy, deploy_checks.render_policy(stage(), other), other)
    assert (
        "FindConfiguredClusters lacks arn:aws:eks:eu-west-1:*:cluster/platform (configured cluster platform)"
        in problems
    )
    # a stale ARN, the wrong partition, clusters in two partitions
    problems = deploy_checks.policy_problems(deploy_checks.render_policy(stage(), other), policy, seed)
    assert any("names arn:aws:eks:eu-west-1:*:cluster/platform (no configured cluster has it)" in p for p in problems)
    gov = parse_config("clusters: [{name: bttrm-eks-dev-0, region: us-gov-west-1}]")
    problems = deploy_checks.policy_problems(policy, deploy_checks.render_policy(stage(), gov), gov)
    assert any("is in partition aws, not aws-us-gov" in p for p in problems)
    mixed = parse_config("clusters: [{name: a, region: us-east-2}, {name: b, region: cn-north-1}]")
    problems = deploy_checks.policy_problems(policy, deploy_checks.render_policy(stage(), mixed), mixed)
    assert problems[0] == "the clusters span partitions aws, aws-cn: one deployment reaches one partition"


def test_a_stage_in_a_vpc_gets_the_eni_permissions_and_only_then() -> None:
    seed = load_config(DEFAULT_CONFIG_PATH)
    vpc = stage(subnet_ids=["subnet-1", "subnet-2"], security_group_ids=["sg-1"])
    assert vpc.vpc and vpc.subnet_ids == ("subnet-1", "subnet-2")
    [eni] = [s for s in deploy_checks.render_policy(vpc, seed)["Statement"] if s["Sid"] == "UseVpcNetworkInterfaces"]
    assert set(eni["Action"]) == {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    }
    without = deploy_checks.render_policy(stage(), seed)
    assert "UseVpcNetworkInterfaces" not in {s["Sid"] for s in without["Statement"]}
    problems = deploy_checks.policy_problems(deploy_checks.render_policy(vpc, seed), without, seed)
    assert "statement UseVpcNetworkInterfaces is not needed by this stage" in problems


def test_a_remote_configuration_is_readable_and_nothing_else() -> None:
    seed = load_config(DEFAULT_CONFIG_PATH)
    ssm = stage(environment_variables={"EKS_IAM_SYNC_CONFIG": "ssm:/eks-iam-sync/prod"})
    [read] = [s for s in deploy_checks.render_policy(ssm, seed)["Statement"] if s["Sid"] == "ReadConfiguration"]
    assert read["Action"] == ["ssm:GetParameter"] and read["Resource"] == "arn:aws:ssm:*:*:parameter/eks-iam-sync/prod"
    s3 = stage(environment_variables={"EKS_IAM_SYNC_CONFIG": "s3://bucket/eks/config.yaml"})
    [read] = [s for s in deploy_checks.render_policy(s3, seed)["Statement"] if s["Sid"] == "ReadConfiguration"]
    assert read["Action"] == ["s3:GetObject"] and read["Resource"] == "arn:aws:s3:::bucket/eks/config.yaml"


def test_a_cluster_in_another_account_is_reached_through_its_role_only() -> None:
    config = parse_config(
        "clusters:\n"
        "  - {name: here, region: us-east-2}\n"
        "  - {name: there, region: us-east-2, roleArn: 'arn:aws:iam::111122223333:role/eks-iam-sync'}\n"
    )
    policy = deploy_checks.render_policy(stage(), config)
    text = json.dumps(policy)
    assert "cluster/there" not in text and "cluster/here" in text
    [assume] = [s for s in policy["Statement"] if s["Sid"] == "AssumeConfiguredRoles"]
    assert assume["Action"] == ["sts:AssumeRole"] and assume["Resource"] == [
        "arn:aws:iam::111122223333:role/eks-iam-sync"
    ]


def test_operators_own_statements_are_kept_and_the_old_logs_statement_is_not() -> None:
    seed = load_config(DEFAULT_CONFIG_PATH)
    generated = deploy_checks.render_policy(stage(), seed)
    kms = {
        "Sid": "DecryptConfiguration",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": "arn:aws:kms:*:*:key/k",
    }
    old = {"Sid": "WriteLogs", "Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "arn:aws:logs:*:*:*"}
    merged = deploy_checks.merged_policy(generated, {"Statement": [old, kms]})
    assert merged["Statement"] == [*generated["Statement"], kms]
    assert deploy_checks.policy_problems(merged, generated, seed) == []
    assert "statement WriteLogs is not needed by this stage" in deploy_checks.policy_problems(
        {"Statement": [*generated["Statement"], old]}, generated, seed
    )


def test_no_function_reserves_concurrency_in_chalice_s_settings() -> None:
    """Reserved concurrency fails stack creation in an account with less than 100 + N unreserved (new
    accounts have 10): it is the template's EventFunctionConcurrency parameter, default none."""
    config = json.loads((CHALICE / "config.json").read_text())
    scopes = [config, *config["stages"].values()]
    for settings in scopes:
        for function in settings.get("lambda_functions", {}).values():
            assert "reserved_concurrency" not in function


def test_deploy_problems_cover_vpc_halves_timeouts_and_a_configuration_outside_the_package(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(CHALICE, project / ".chalice", ignore=shutil.ignore_patterns("deployments"))
    (project / "chalicelib").mkdir()
    config = json.loads((CHALICE / "config.json").read_text())
    config["stages"]["prod"].update(
        subnet_ids=["subnet-1"],
        lambda_timeout=60,
        environment_variables={"EKS_IAM_SYNC_CONFIG": "/etc/elsewhere.yaml", "EKS_IAM_SYNC_READ_TIMEOUT_SECONDS": "30"},
    )
    (project / ".chalice" / "config.json").write_text(json.dumps(config))
    problems = deploy_checks.project_problems(project, "prod", load_config(DEFAULT_CONFIG_PATH))
    assert "a VPC needs both subnet_ids and security_group_ids (Chalice ignores one without the other)" in problems
    assert "on_iam_event: lambda_timeout 60 s is under twice one cluster's budget (65 s)" in problems
    assert "EKS_IAM_SYNC_CONFIG=/etc/elsewhere.yaml: a file outside chalicelib/ is not packaged" in problems
    assert any(p.startswith("policy-prod.json: ") for p in problems)  # ENI permissions missing


def test_validate_deploy_checks_a_stage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # .chalice/ is read from the working directory, the project's root
    assert main(["validate", "--deploy", "prod"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "deploy checks (prod): ok"
    other = tmp_path / "other.yaml"
    other.write_text("clusters: [{name: bttrm-eks-dev-0, region: us-east-2}, {name: platform, region: eu-west-1}]\n")
    assert main(["validate", "--deploy", "prod", "--config", str(other)]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1] == "deploy checks (prod): 9 problem(s)"  # 2 per access-entry statement
    assert (
        "deploy: policy-prod.json: FindConfiguredClusters lacks arn:aws:eks:eu-west-1:*:cluster/platform"
        in captured.err
    )
    assert main(["validate", "--deploy", "staging"]) == 1
    assert "no stage 'staging'" in capsys.readouterr().err


IDENTITY_CENTER = """
clusters: [{name: c1, region: us-east-2}]
identities: {permissionSets: [{name: Developer}]}
identityCenter:
  identityStoreId: d-9067a1b2c3
  region: eu-west-1
  groupGrants: [{group: team-a, permissionSet: Developer, clusterRole: edit, namespaces: [team-a]}]
"""


def test_identity_center_is_read_on_its_own_store_only_or_through_its_role() -> None:
    policy = deploy_checks.render_policy(stage(), parse_config(IDENTITY_CENTER))
    [read] = [s for s in policy["Statement"] if s["Sid"] == "ReadIdentityStore"]
    assert all(a.startswith("identitystore:") and "*" not in a for a in read["Action"])
    assert {"identitystore:ListGroupMemberships", "identitystore:DescribeUser"} <= set(read["Action"])
    assert read["Resource"][0] == "arn:aws:identitystore::*:identitystore/d-9067a1b2c3"
    assert not any(s["Sid"] == "AssumeConfiguredRoles" for s in policy["Statement"])
    role = "arn:aws:iam::111111111111:role/eks-iam-sync-identity-store"
    through = IDENTITY_CENTER.replace("  region: eu-west-1", f"  region: eu-west-1\n  roleArn: {role}")
    policy = deploy_checks.render_policy(stage(), parse_config(through))
    assert not any(s["Sid"] == "ReadIdentityStore" for s in policy["Statement"])
    [assume] = [s for s in policy["Statement"] if s["Sid"] == "AssumeConfiguredRoles"]
    assert assume["Resource"] == [role]
