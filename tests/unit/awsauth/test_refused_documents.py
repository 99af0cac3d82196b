"""aws-auth documents EKS reads in a way this service does not reproduce are refused, never rewritten:
YAML merge keys (go-yaml merges the aliased mapping in; a rewrite quoted ``"<<"`` and emptied the
username), documents nested deeper than the bound, and sso: entries the authenticator drops. Each is
planned through plan_aws_auth on both YAML paths: the step is a refusal naming the reason, with no
post-image, and the document handed in is left as it was."""

from __future__ import annotations

import copy

import pytest

from chalicelib.engine.awsauth.plan import AwsAuthStep, SyncIntent, plan_aws_auth
from chalicelib.engine.guardrails import Policy
from chalicelib.model.ports import ObservedConfigMap
from tests.unit import yaml_paths
from tests.unit.awsauth.builders import NODE, document, owned_role, owned_user, role, user

DEV = "arn:aws:iam::111122223333:role/dev"
NODE_ROLES = document(roles=[NODE])["mapRoles"]
MERGED = (
    "- &base\n  rolearn: arn:aws:iam::111122223333:role/ops\n  username: ops\n  groups: [ops]\n"
    f"- <<: *base\n  rolearn: {DEV}\n"
)
INVALID_SSO = (
    "- sso:\n    permissionSetName: ReadOnly\n    accountID: '11112222333'\n  username: ro\n  groups: [viewers]\n"
)


@pytest.fixture(autouse=True, params=yaml_paths.PATHS)
def yaml_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml_paths.select(request.param, monkeypatch)


def plan(data: dict[str, str], *desired_roles: str) -> tuple[AwsAuthStep, dict[str, str]]:
    observed = ObservedConfigMap("aws-auth", "kube-system", copy.deepcopy(data), {}, "7")
    desired = (owned_user(user("alice", "devs")), *(owned_role(role(name, "deployers")) for name in desired_roles))
    step = plan_aws_auth(observed, SyncIntent(desired), Policy())
    return step, observed.data


@pytest.mark.parametrize(
    ("name", "map_roles", "reason"),
    [
        ("merge key", NODE_ROLES + MERGED, "YAML merge key '<<'"),
        ("merge of two mappings", NODE_ROLES + "- &a {username: x}\n- &b {groups: [y]}\n- {<<: [*a, *b]}\n", "<<"),
        ("nested 2 000 deep", NODE_ROLES + f"- rolearn: {DEV}\n  groups: " + "[" * 2000 + "]" * 2000 + "\n", "deeper"),
        ("invalid sso: entry", NODE_ROLES + INVALID_SSO, "is not 12 digits"),
        (
            "sso: in a partition older authenticators drop",
            NODE_ROLES + INVALID_SSO.replace("'11112222333'", "'111122223333'\n    partition: aws-iso-f"),
            "from 2025 on",
        ),
    ],
)
def test_a_document_eks_reads_otherwise_is_refused_and_left_as_it_was(name: str, map_roles: str, reason: str) -> None:
    data = {"mapRoles": map_roles, "mapUsers": "[]\n"}
    for roles in ((), ("ci",)):  # a change to mapUsers only, and one to mapRoles as well
        step, handed_in = plan(data, *roles)
        assert step.status == "refused", name
        assert step.data is None
        assert [r.reason for r in step.refusals] == ["current-not-understood"]
        assert reason in step.refusals[0].message
        assert handed_in == data


def test_a_valid_sso_entry_still_lets_other_keys_be_written() -> None:
    data = {"mapRoles": NODE_ROLES + INVALID_SSO.replace("'11112222333'", "'111122223333'"), "mapUsers": "[]\n"}
    step, _ = plan(data)
    assert step.status == "write" and step.data is not None
    assert step.data["mapRoles"] == data["mapRoles"]
