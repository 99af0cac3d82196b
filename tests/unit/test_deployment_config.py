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
