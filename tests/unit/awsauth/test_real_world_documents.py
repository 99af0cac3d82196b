"""aws-auth documents other tools wrote, which the authenticator reads deterministically: exact
duplicates (eksctl), several entries for one role ARN, sso: entries. The service writes around them,
leaves them as they are, and refuses only what it would have to rewrite. Each test runs on both YAML
event sources (libyaml and pure PyYAML)."""

from __future__ import annotations

import pytest

from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.awsauth.writer import AwsAuthWriter
from tests.unit import yaml_paths
from tests.unit.awsauth.builders import NODE, document, owned_role, owned_user, role, user
from tests.unit.awsauth.fakes import FakeConfigMaps
from tests.unit.awsauth.test_writer import Counting

ALICE = user("alice", "devs")
SSO = (
    "- sso:\n    permissionSetName: ReadOnly\n    accountID: '111122223333'\n"
    '  username: "ro:{{SessionName}}"\n  groups: [viewers]\n'
)


@pytest.fixture(autouse=True, params=yaml_paths.PATHS)
def yaml_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml_paths.select(request.param, monkeypatch)


def seeded(data: dict[str, str]) -> tuple[FakeConfigMaps, AwsAuthWriter]:
    store = FakeConfigMaps()
    store.create("kube-system", "aws-auth", data)
    store.writes.clear()
    return store, AwsAuthWriter(store, Counting())


def current(store: FakeConfigMaps) -> dict[str, str]:
    return store.objects[("kube-system", "aws-auth")].data


def test_exact_duplicates_are_understood_and_left_byte_identical_while_users_are_mapped() -> None:
    data = document(roles=[NODE, NODE])
    store, writer = seeded(data)
    assert writer.sync([owned_user(ALICE)]).status == "written"
    assert current(store)["mapRoles"] == data["mapRoles"]
    assert read_aws_auth(current(store)).entries("mapUsers") == (ALICE,)


def test_duplicates_survive_a_rewrite_of_their_key_and_a_desired_entry_for_them_is_a_conflict() -> None:
    dev_a, dev_b = role("dev", "a"), role("dev", "b")
    store, writer = seeded(document(roles=[NODE, dev_a, dev_b]))
    outcome = writer.sync([owned_role(role("ci", "deployers")), owned_role(role("dev", "mine"))])
    assert outcome.status == "written"
    assert [c.wanted.entry.arn for c in outcome.conflicts] == [dev_a.arn]
    roles = read_aws_auth(current(store)).entries("mapRoles")
    assert [r.core() for r in roles] == [NODE, dev_a, dev_b, role("ci", "deployers")]


def test_sso_entries_are_kept_and_a_rewrite_of_their_key_is_refused_with_the_right_reason() -> None:
    data = {"mapRoles": SSO + document(roles=[NODE])["mapRoles"]}
    store, writer = seeded(data)
    assert writer.sync([owned_user(ALICE)]).status == "written"  # mapUsers only: mapRoles untouched
    assert current(store)["mapRoles"] == data["mapRoles"]
    outcome = writer.sync([owned_user(ALICE), owned_role(role("ci", "deployers"))])
    assert outcome.status == "refused" and [r.reason for r in outcome.refusals] == ["sso-entry-rewrite"]
    assert "sso: entries" in outcome.refusals[0].message and "Gen C drops" not in outcome.refusals[0].message
    assert current(store)["mapRoles"] == data["mapRoles"]


def test_user_arns_differing_only_in_case_stay_a_refusal() -> None:
    twin = user("Alice", "ops")
    store, writer = seeded(document(users=[ALICE, twin]))
    outcome = writer.sync([owned_user(user("bob", "devs"))])
    assert outcome.status == "refused" and [r.reason for r in outcome.refusals] == ["current-not-understood"]
    assert store.writes == []
