"""The functions' policy, as rendered for the seed configuration, evaluated as IAM does
(tests/iam_simulator.py): the writes it needs are allowed; no entry the service does not own can be
tagged into ownership and then changed or deleted (tag-then-delete), not even with an operator's broad
statement added; no entry may map a system: group."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.model.ownership import ENTRY_INSTANCE_TAG, MANAGED_BY_LABEL, MANAGED_BY_VALUE
from tests.iam_simulator import Request, decide

POLICY = json.loads((Path(__file__).parents[2] / ".chalice" / "policy-prod.json").read_text())
CLUSTER = "arn:aws:eks:us-east-2:123456789012:cluster/bttrm-eks-dev-0"
ENTRY = "arn:aws:eks:us-east-2:123456789012:access-entry/bttrm-eks-dev-0/role/123456789012/{}/0c1b2a3d"
OWNED = {f"aws:ResourceTag/{MANAGED_BY_LABEL}": MANAGED_BY_VALUE}
OWNERSHIP_REQUESTED = {f"aws:RequestTag/{MANAGED_BY_LABEL}": MANAGED_BY_VALUE, "aws:TagKeys": [MANAGED_BY_LABEL]}
OPERATORS_BROAD_GRANT = {"Sid": "Operators", "Effect": "Allow", "Action": ["eks:*"], "Resource": "*"}


def with_statement(statement: dict[str, Any]) -> dict[str, Any]:
    return {**POLICY, "Statement": [*POLICY["Statement"], statement]}


@pytest.mark.parametrize(
    ("request_", "decision"),
    [
        # what the adapters do
        (
            Request("eks:CreateAccessEntry", CLUSTER, {**OWNERSHIP_REQUESTED, "eks:kubernetesGroups": ["dev"]}),
            "allowed",
        ),
        (Request("eks:UpdateAccessEntry", ENTRY.format("alice"), OWNED), "allowed"),
        (Request("eks:DeleteAccessEntry", ENTRY.format("alice"), OWNED), "allowed"),
        (
            Request(
                "eks:TagResource", ENTRY.format("alice"), {**OWNED, "aws:RequestTag/eks-iam-sync/principal-id": "AIDA"}
            ),
            "allowed",
        ),
        # an entry created without the ownership tag
        (Request("eks:CreateAccessEntry", CLUSTER, {"eks:kubernetesGroups": ["dev"]}), "implicitDeny"),
        # tag-then-delete of a node's, break-glass's, or the service's own (bootstrap) entry: no tag on it
        (Request("eks:TagResource", ENTRY.format("eks-node-group"), OWNERSHIP_REQUESTED), "explicitDeny"),
        (Request("eks:DeleteAccessEntry", ENTRY.format("eks-node-group")), "implicitDeny"),
        (Request("eks:UpdateAccessEntry", ENTRY.format("break-glass")), "implicitDeny"),
        # an entry someone else tagged for themselves
        (
            Request(
                "eks:TagResource",
                ENTRY.format("x"),
                {f"aws:ResourceTag/{MANAGED_BY_LABEL}": "terraform", **OWNERSHIP_REQUESTED},
            ),
            "explicitDeny",
        ),
        # a system: group, on create or update, owned or not
        (
            Request(
                "eks:CreateAccessEntry",
                CLUSTER,
                {**OWNERSHIP_REQUESTED, "eks:kubernetesGroups": ["dev", "system:masters"]},
            ),
            "explicitDeny",
        ),
        (
            Request(
                "eks:UpdateAccessEntry", ENTRY.format("alice"), {**OWNED, "eks:kubernetesGroups": ["system:masters"]}
            ),
            "explicitDeny",
        ),
    ],
)
def test_the_policy_decides_as_iam_would(request_: Request, decision: str) -> None:
    assert decide(POLICY, request_) == decision


def test_tag_then_delete_fails_at_the_tag_even_with_an_operator_s_statement_allowing_every_eks_action() -> None:
    broad = with_statement(OPERATORS_BROAD_GRANT)
    node = ENTRY.format("eks-node-group")
    assert decide(broad, Request("eks:TagResource", node, OWNERSHIP_REQUESTED)) == "explicitDeny"
    assert decide(broad, Request("eks:UntagResource", ENTRY.format("alice"), {"aws:TagKeys": [MANAGED_BY_LABEL]})) == (
        "explicitDeny"
    )
    # the statement does widen the rest, which is why the fence is a Deny and not only a narrow Allow
    assert decide(broad, Request("eks:DeleteAccessEntry", node)) == "allowed"


def test_the_simulator_applies_iam_s_missing_key_rules() -> None:
    deny_unless_owned = {
        "Statement": [
            {"Effect": "Allow", "Action": "s:A", "Resource": "*"},
            {"Effect": "Deny", "Action": "s:A", "Resource": "*", "Condition": {"StringNotEquals": {"k": "v"}}},
        ]
    }
    assert decide(deny_unless_owned, Request("s:A", "r")) == "explicitDeny"  # absent key: negated operator matches
    assert decide(deny_unless_owned, Request("s:A", "r", {"k": "v"})) == "allowed"
    allow_if = {
        "Statement": [{"Effect": "Allow", "Action": "s:*", "Resource": "*", "Condition": {"StringEquals": {"k": "v"}}}]
    }
    assert decide(allow_if, Request("S:a", "r")) == "implicitDeny"  # absent key: no match
    assert decide(allow_if, Request("S:a", "r", {"K": "v"})) == "allowed"  # actions and keys case-insensitive
    if_exists = {
        "Statement": [
            {"Effect": "Allow", "Action": "s:A", "Resource": "*", "Condition": {"StringEqualsIfExists": {"k": "v"}}}
        ]
    }
    assert decide(if_exists, Request("s:A", "r")) == "allowed"  # absent key: ...IfExists matches
    assert decide(if_exists, Request("s:A", "r", {"k": "v"})) == "allowed"
    assert decide(if_exists, Request("s:A", "r", {"k": "w"})) == "implicitDeny"


# The prod stage's instance is "prod" (its stack's Instance default); tools/package.py makes the template's
# copy of these conditions follow the Instance parameter.
PROD_S = {**OWNED, f"aws:ResourceTag/{ENTRY_INSTANCE_TAG}": "prod"}
DEV_S = {**OWNED, f"aws:ResourceTag/{ENTRY_INSTANCE_TAG}": "dev"}


@pytest.mark.parametrize(
    ("request_", "decision"),
    [
        # its own entries, and the unmarked ones it adopts (tagging them with its name)
        (Request("eks:UpdateAccessEntry", ENTRY.format("alice"), PROD_S), "allowed"),
        (Request("eks:DeleteAccessEntry", ENTRY.format("alice"), PROD_S), "allowed"),
        (
            Request("eks:TagResource", ENTRY.format("old"), {**OWNED, f"aws:RequestTag/{ENTRY_INSTANCE_TAG}": "prod"}),
            "allowed",
        ),
        (
            Request(
                "eks:CreateAccessEntry",
                CLUSTER,
                {**OWNERSHIP_REQUESTED, f"aws:RequestTag/{ENTRY_INSTANCE_TAG}": "prod", "eks:kubernetesGroups": ["d"]},
            ),
            "allowed",
        ),
        # another instance's: out of reach, and it cannot be tagged over, nor created in another's name
        (Request("eks:UpdateAccessEntry", ENTRY.format("bob"), DEV_S), "implicitDeny"),
        (Request("eks:DeleteAccessEntry", ENTRY.format("bob"), DEV_S), "implicitDeny"),
        (
            Request("eks:TagResource", ENTRY.format("bob"), {**DEV_S, f"aws:RequestTag/{ENTRY_INSTANCE_TAG}": "prod"}),
            "implicitDeny",
        ),
        (
            Request(
                "eks:TagResource", ENTRY.format("alice"), {**PROD_S, f"aws:RequestTag/{ENTRY_INSTANCE_TAG}": "dev"}
            ),
            "implicitDeny",
        ),
        (
            Request("eks:UntagResource", ENTRY.format("alice"), {**PROD_S, "aws:TagKeys": [ENTRY_INSTANCE_TAG]}),
            "implicitDeny",
        ),
        (
            Request(
                "eks:CreateAccessEntry",
                CLUSTER,
                {**OWNERSHIP_REQUESTED, f"aws:RequestTag/{ENTRY_INSTANCE_TAG}": "dev", "eks:kubernetesGroups": ["d"]},
            ),
            "implicitDeny",
        ),
    ],
)
def test_one_instance_s_policy_reaches_none_of_another_instance_s_entries(request_: Request, decision: str) -> None:
    assert decide(POLICY, request_) == decision
