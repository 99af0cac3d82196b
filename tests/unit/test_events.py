"""CloudTrail records -> which principals to re-read, or why the event is ignored. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.config import DEFAULT_CONFIG_PATH, load_config
from chalicelib.engine.events import EVENT_NAMES, EVENT_PATTERN, IAM_EVENT_PATTERN, Ignored, Trigger, read_event
from chalicelib.model.principals import PrincipalScope
from tests.harness.cloudtrail import iam_event

SEED = load_config(DEFAULT_CONFIG_PATH)
GROUP = "iam-bttrm-web-ro-group"


def read(name: str, **params: Any) -> Trigger | Ignored:
    return read_event(iam_event(name, params), SEED)


@pytest.mark.parametrize(
    ("name", "params", "users", "roles"),
    [
        ("AddUserToGroup", {"groupName": GROUP, "userName": "alice"}, {"alice"}, set()),
        ("RemoveUserFromGroup", {"groupName": "IAM-BTTRM-WEB-RO-GROUP", "userName": "Alice"}, {"alice"}, set()),
        ("DeleteUser", {"userName": "alice"}, {"alice"}, set()),
        ("UpdateUser", {"userName": "alice", "newUserName": "alice2"}, {"alice", "alice2"}, set()),
        ("UpdateUser", {"userName": "alice", "newPath": "/eng/"}, {"alice"}, set()),
        ("TagUser", {"userName": "alice", "tags": [{"key": "eks-access/ns3", "value": "pods-ro"}]}, {"alice"}, set()),
        ("UntagUser", {"userName": "alice", "tagKeys": ["eks-access/ns3"]}, {"alice"}, set()),
        ("TagRole", {"roleName": "ci", "tags": [{"key": "eks-access/ns3", "value": "pods-ro"}]}, set(), {"ci"}),
        ("UntagRole", {"roleName": "ci", "tagKeys": ["eks-access/ns3", "x"]}, set(), {"ci"}),
        ("DeleteRole", {"roleName": "ci"}, set(), {"ci"}),
        (
            "CreateRole",
            {"roleName": "iam-bttrm-web-ro-role", "assumeRolePolicyDocument": "{}"},
            set(),
            {"iam-bttrm-web-ro-role"},
        ),
        ("UpdateRole", {"roleName": "iam-bttrm-web-ro-role"}, set(), {"iam-bttrm-web-ro-role"}),
    ],
)
def test_relevant_events_name_the_principals_to_re_read(
    name: str, params: dict[str, Any], users: set[str], roles: set[str]
) -> None:
    trigger = read(name, **params)
    assert isinstance(trigger, Trigger)
    assert (set(trigger.scope.users), set(trigger.scope.roles)) == (users, roles)
    assert trigger.event_name == name and trigger.actor == "arn:aws:iam::123456789012:user/console-admin"


def test_delete_group_is_resolved_through_the_ledger() -> None:
    trigger = read("DeleteGroup", groupName=GROUP)
    assert isinstance(trigger, Trigger) and trigger.deleted_groups == (GROUP,) and not trigger.scope


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("AddUserToGroup", {"groupName": "other", "userName": "alice"}),
        ("DeleteGroup", {"groupName": "other"}),
        ("TagUser", {"userName": "alice", "tags": [{"key": "team", "value": "web"}]}),
        ("UntagRole", {"roleName": "ci", "tagKeys": ["team"]}),
        ("CreateRole", {"roleName": "unrelated"}),
    ],
)
def test_events_that_concern_nothing_configured_are_ignored(name: str, params: dict[str, Any]) -> None:
    ignored = read(name, **params)
    assert isinstance(ignored, Ignored) and ignored.reason == "not-configured"


def test_failed_calls_unsupported_and_malformed_events() -> None:
    failed = read_event(
        iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "a"}, error_code="AccessDenied"), SEED
    )
    assert isinstance(failed, Ignored) and failed.reason == "error-code"
    assert getattr(read("CreateAccessKey", userName="a"), "reason", None) == "unsupported-event"
    missing = read("AddUserToGroup", groupName=GROUP)
    assert isinstance(missing, Ignored) and missing.reason == "malformed" and missing.event_id
    assert getattr(read("AddUserToGroup", groupName=GROUP, userName=""), "reason", None) == "malformed"
    assert getattr(read("TagUser", userName="a", tags="x"), "reason", None) == "malformed"
    garbage = read_event({"detail": "nope", "id": "e-1"}, SEED)
    assert isinstance(garbage, Ignored) and garbage.reason == "malformed" and garbage.event_id == "e-1"
    other = iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "a"})
    other["source"] = "aws.s3"
    assert getattr(read_event(other, SEED), "reason", None) == "not-iam"


def test_the_rule_pattern_covers_every_handled_event_and_drops_failed_calls() -> None:
    assert EVENT_PATTERN["$or"][0] is IAM_EVENT_PATTERN
    assert IAM_EVENT_PATTERN["detail"]["eventName"] == list(EVENT_NAMES)
    assert all(p["detail"]["errorCode"] == [{"exists": False}] for p in EVENT_PATTERN["$or"])


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("UpdateUser", {"userName": "alice", "newUserName": 42}),
        ("UpdateUser", {"userName": "alice", "newUserName": ["bob"]}),
        ("AddUserToGroup", {"groupName": GROUP, "userName": "a/b"}),
        ("AddUserToGroup", {"groupName": GROUP, "userName": ""}),
        ("AddUserToGroup", {"groupName": GROUP}),
        ("TagUser", {"userName": "alice", "tags": "eks-access/ns=pods-ro"}),
        ("TagUser", {"userName": "alice", "tags": [{"value": "x"}]}),
        ("UntagRole", {"roleName": "ci", "tagKeys": [None]}),
        ("DeleteRole", {"roleName": "x" * 129}),
    ],
)
def test_every_field_is_validated_per_event_type_and_anything_malformed_is_ignored_as_such(
    name: str, params: dict[str, Any]
) -> None:
    result = read_event(iam_event(name, params), SEED)
    assert isinstance(result, Ignored) and result.reason == "malformed", result


# Look-alikes of ASCII letters that str.lower() or a Unicode-aware \w would let through: the Kelvin
# sign folds to "k", the Latin capital I with dot above to "i̇", the others are letters of their own
# scripts. IAM names are ASCII, so none of them names any principal.
LOOK_ALIKES = ["\u212aate", "al\u0131ce", "\u0130am", "\u0430lice", "\uff41lice", "stra\u00dfe", "bob\u0663"]


@pytest.mark.parametrize("name", LOOK_ALIKES)
@pytest.mark.parametrize(
    ("event", "field", "params"),
    [
        ("AddUserToGroup", "userName", {"groupName": GROUP}),
        ("AddUserToGroup", "groupName", {"userName": "kate"}),
        ("DeleteUser", "userName", {}),
        ("UpdateUser", "newUserName", {"userName": "kate"}),
        ("TagUser", "userName", {"tags": [{"key": "eks-access/ns3", "value": "pods-ro"}]}),
        ("TagRole", "roleName", {"tags": [{"key": "eks-access/ns3", "value": "pods-ro"}]}),
        ("DeleteRole", "roleName", {}),
        ("UpdateGroup", "newGroupName", {"groupName": "old"}),
    ],
)
def test_an_iam_name_that_is_not_ascii_is_malformed_and_scopes_nobody(
    name: str, event: str, field: str, params: dict[str, Any]
) -> None:
    found = read(event, **{**params, field: name})
    assert isinstance(found, Ignored) and found.reason == "malformed", found


def test_scopes_fold_ascii_case_only() -> None:
    kate = "arn:aws:iam::123456789012:user/kate"
    assert kate in PrincipalScope.of(["KATE"])
    assert kate not in PrincipalScope.of(["\u212aate"])  # str.lower() makes it "kate"
    assert "arn:aws:iam::123456789012:role/ci" not in PrincipalScope.of(roles=["\u0421I"])  # Cyrillic Es


def test_tag_keys_are_case_sensitive_as_iam_keeps_them() -> None:
    found = read("TagUser", userName="alice", tags=[{"key": "EKS-ACCESS/ns3", "value": "pods-ro"}])
    assert isinstance(found, Ignored) and found.reason == "not-configured"
