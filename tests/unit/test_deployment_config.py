"""The Chalice deployment: handler names, stages, and hand-written least-privilege policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app import app
from chalicelib.config import DEFAULT_CONFIG_PATH, load_config
from chalicelib.events import EVENT_PATTERN

CHALICE = Path(__file__).parents[2] / ".chalice"
IAM_READS = {"iam:GetAccountAuthorizationDetails", "iam:GetUser", "iam:ListGroupsForUser", "iam:GetRole"}


def test_handler_names_are_the_contract() -> None:
    sources: dict[str, Any] = {source.name: source for source in app.event_sources}
    assert set(sources) == {"on_iam_event", "reconcile_all"}
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


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_access_entry_actions_are_exactly_those_used_on_the_configured_clusters_and_writes_need_the_ownership_tag(
    stage: str,
) -> None:
    policy = json.loads((CHALICE / f"policy-{stage}.json").read_text())
    statements = [s for s in policy["Statement"] if any("AccessEntr" in a for a in s["Action"])]
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
    from chalicelib.settings import Timeouts  # noqa: PLC0415

    bounds = Timeouts()
    budget = bounds.connect + 2 * bounds.read
    config = json.loads((CHALICE / "config.json").read_text())
    timeouts = [config["lambda_timeout"]] + [
        f["lambda_timeout"] for s in config["stages"].values() for f in s.get("lambda_functions", {}).values()
    ]
    assert min(timeouts) >= 2 * budget
