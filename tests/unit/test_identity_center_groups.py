"""IAM Identity Center group grants, pure: the configuration's rules, the username a session gets,
Identity Store events, work items carrying their scope, desired bindings, the reader and the breaker's count."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from chalicelib.config import ConfigError, parse_config, per_person_template_problem, session_username
from chalicelib.engine.events import EVENT_PATTERN, Ignored, Trigger, read_event
from chalicelib.engine.sso import read_identity_center, removals, sso_bindings
from chalicelib.engine.workitems import body as item_body
from chalicelib.engine.workitems import coalesce, event_items, parse
from chalicelib.errors import TransientError
from chalicelib.model.sso import SsoGroup, SsoMember, SsoScope, SsoSnapshot
from tests.functional.fakes import FakeIdentityStore, RecordingObserver
from tests.harness.cloudtrail import identity_store_event

STORE = "d-9067a1b2c3"
USER = "9067a1b2c3-11111111-2222-4333-8444-555555555555"
BASE: dict[str, Any] = {
    "clusters": [{"name": "c1", "region": "us-east-2"}],
    "identities": {"permissionSets": [{"name": "Developer"}, {"name": "Raw", "username": "sso:{{SessionNameRaw}}"}]},
    "identityCenter": {
        "identityStoreId": STORE,
        "region": "us-east-1",
        "groupGrants": [
            {
                "group": "team-a",
                "permissionSet": "Developer",
                "clusterRole": "edit",
                "namespaces": ["team-a", "kube-system"],
            },
            {
                "group": "team-b",
                "permissionSet": "Raw",
                "clusterRole": "view",
                "namespaceSelector": {"matchLabels": {"team": "b"}},
            },
        ],
    },
}


def config(**changes: Any) -> Any:
    document = yaml.safe_load(yaml.safe_dump(BASE))
    document["identityCenter"].update(changes)
    return document


def problems(document: dict[str, Any]) -> list[str]:
    try:
        parse_config(yaml.safe_dump(document))
    except ConfigError as err:
        return [f"{p.path}: {p.message}" for p in err.problems]
    return []


@pytest.mark.parametrize(
    ("template", "session", "username"),
    [
        ("sso:{{SessionName}}", "alice@example.com", "sso:alice-example.com"),
        ("sso:{{SessionNameRaw}}", "alice@example.com", "sso:alice@example.com"),
        ("sso:{{SessionName}}", "a@b@c", "sso:a-b-c"),
        ("sso:{{SessionName}}/{{SessionNameRaw}}", "bob@x.org", "sso:bob-x.org/bob@x.org"),
        ("sso:{{SessionName}}", "carol", "sso:carol"),
    ],
)
def test_a_session_s_username_is_rendered_as_the_authenticator_renders_it(
    template: str, session: str, username: str
) -> None:
    assert session_username(template, session) == username


def test_only_a_template_that_keeps_the_session_name_and_nothing_per_account_names_one_person() -> None:
    assert per_person_template_problem("sso:{{SessionName}}") is None
    assert per_person_template_problem("sso:{{SessionNameRaw}}") is None
    assert "the same for every session" in (per_person_template_problem("eks-iam-sync:developers") or "")
    assert "{{AccountID}}" in (per_person_template_problem("sso:{{AccountID}}:{{SessionName}}") or "")
    assert "{{AccessKeyID}}" in (per_person_template_problem("sso:{{SessionName}}:{{AccessKeyID}}") or "")


def test_the_configuration_is_validated_like_the_rest() -> None:
    document = config()
    assert problems(document) == [
        "identityCenter.groupGrants[0].namespaces[1]: 'kube-system' is a system namespace: "
        "set allowSystemNamespaces: true on this grant to grant it"
    ]
    document["identityCenter"]["groupGrants"][0]["namespaces"] = ["team-a"]
    assert problems(document) == []
    document["identityCenter"]["groupGrants"][1]["permissionSet"] = "Admin"
    document["identityCenter"]["groupGrants"][0]["clusterRole"] = "cluster-admin"
    found = problems(document)
    assert any("permission set 'Admin' is not mapped: add it to identities.permissionSets" in p for p in found)
    assert any("'cluster-admin' is privileged" in p for p in found)
    assert problems(config(identityStoreId="store-1"))[0].startswith("identityCenter.identityStoreId")
    assert any("externalId is sent when assuming roleArn" in p for p in problems(config(externalId="abc123")))


def test_a_permission_set_whose_username_names_everyone_is_refused_naming_the_fix() -> None:
    document = config()
    document["identityCenter"]["groupGrants"][0]["namespaces"] = ["team-a"]
    document["identities"]["permissionSets"][0]["username"] = "eks-iam-sync:developers"
    (found,) = problems(document)
    assert found.startswith("identityCenter.groupGrants[0].permissionSet")
    assert "'sso:{{SessionName}}'" in found


def parsed() -> Any:
    document = config()
    document["identityCenter"]["groupGrants"][0]["namespaces"] = ["team-a"]
    return parse_config(yaml.safe_dump(document))


@pytest.mark.parametrize(
    ("name", "params", "source", "scope"),
    [
        ("CreateGroupMembership", {"groupId": USER, "memberId": {"userId": USER}}, None, SsoScope(frozenset({USER}))),
        ("UpdateUser", {"userId": USER, "operations": []}, None, SsoScope(frozenset({USER}))),
        ("DeleteUser", {"userId": USER}, None, SsoScope(frozenset({USER}))),
        ("DeleteGroupMembership", {"membershipId": "m-1"}, None, SsoScope(all_groups=True)),
        ("DeleteGroup", {"groupId": USER}, None, SsoScope(all_groups=True)),
        ("UpdateGroup", {"groupId": USER}, None, SsoScope(all_groups=True)),
        ("PatchGroup", None, "identitystore-scim.amazonaws.com", SsoScope(all_groups=True)),
        ("PutUser", None, "identitystore-scim.amazonaws.com", SsoScope(all_groups=True)),
    ],
)
def test_identity_store_events_say_whom_to_read_again(
    name: str, params: dict[str, Any] | None, source: str | None, scope: SsoScope
) -> None:
    raw = identity_store_event(
        name, {"identityStoreId": STORE, **(params or {})}, source or "identitystore.amazonaws.com"
    )
    found = read_event(raw, parsed())
    assert isinstance(found, Trigger) and found.sso == scope and not found.scope and not found.rebinds


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (identity_store_event("DeleteUser", {"identityStoreId": "d-0000000000", "userId": USER}), "not-configured"),
        (identity_store_event("DeleteUser", {"identityStoreId": STORE, "userId": "../x"}), "malformed"),
        (identity_store_event("CreateUser", {"identityStoreId": STORE}), "unsupported-event"),
        (identity_store_event("ListUsers", None, "identitystore-scim.amazonaws.com"), "unsupported-event"),
    ],
)
def test_identity_store_events_that_concern_nothing_configured_are_ignored(raw: dict[str, Any], reason: str) -> None:
    found = read_event(raw, parsed())
    assert isinstance(found, Ignored) and found.reason == reason


def test_without_grants_identity_store_events_are_ignored_and_the_pattern_subscribes_to_them() -> None:
    document = config()
    del document["identityCenter"]
    raw = identity_store_event("DeleteUser", {"identityStoreId": STORE, "userId": USER})
    assert getattr(read_event(raw, parse_config(yaml.safe_dump(document))), "reason", None) == "not-configured"
    sources = {s for p in EVENT_PATTERN["$or"] for s in p["detail"]["eventSource"]}
    assert sources == {"iam.amazonaws.com", "identitystore.amazonaws.com", "identitystore-scim.amazonaws.com"}


def test_work_items_carry_an_identity_store_scope_through_the_queue() -> None:
    one = read_event(identity_store_event("DeleteUser", {"identityStoreId": STORE, "userId": USER}), parsed())
    two = read_event(identity_store_event("PatchGroup", None, "identitystore-scim.amazonaws.com"), parsed())
    assert isinstance(one, Trigger) and isinstance(two, Trigger)
    batch = coalesce([one])
    assert batch is not None
    (item,) = event_items(batch, ["c1"])
    assert parse(item_body(item)).trigger().sso == SsoScope(frozenset({USER}))
    both = coalesce([one, two])
    assert both is not None and both.sso == SsoScope(frozenset({USER}), all_groups=True)


def test_each_member_gets_a_binding_for_their_own_session_s_username() -> None:
    snapshot = SsoSnapshot(
        (
            SsoGroup("team-a", "g-a", (SsoMember("u1", "alice@example.com"), SsoMember("u2", "bob@example.com"))),
            SsoGroup("team-b", "g-b", (SsoMember("u1", "alice@example.com"),)),
        )
    )
    live = {"team-a": {}, "b-1": {"team": "b"}, "b-2": {"team": "b"}, "other": {"team": "c"}}
    bindings, refusals, skipped = sso_bindings(parsed(), snapshot, live)
    assert refusals == [] and skipped == []
    assert sorted((b.namespace, b.subject_name, b.cluster_role) for b in bindings) == [
        ("b-1", "sso:alice@example.com", "view"),  # the Raw permission set keeps the '@'
        ("b-2", "sso:alice@example.com", "view"),
        ("team-a", "sso:alice-example.com", "edit"),
        ("team-a", "sso:bob-example.com", "edit"),
    ]
    assert {b.sso_user for b in bindings if b.subject_name.startswith("sso:alice")} == {"u1"}
    # a listed namespace that does not exist yet is skipped; a failed group binds nothing and says so
    failed = SsoSnapshot((SsoGroup("team-a", error="TransientError: throttled"), SsoGroup("team-b")))
    bindings, refusals, skipped = sso_bindings(parsed(), failed, {})
    assert bindings == [] and [r.reason for r in refusals] == ["identity-store-unread", "identity-center-group-missing"]


def test_the_reader_keeps_an_error_apart_from_an_empty_group() -> None:
    store = FakeIdentityStore()
    store.add_group("team-a")
    alice = store.add_user("alice@example.com", "team-a")
    observer = RecordingObserver()
    settings = parsed().identity_center
    assert settings is not None
    whole = read_identity_center(settings, store, None, observer)
    assert whole.group("team-a") == SsoGroup("team-a", store.gid("team-a"), (SsoMember(alice, "alice@example.com"),))
    assert whole.group("team-b") == SsoGroup("team-b")  # not in the store: missing, not failed
    person = read_identity_center(settings, store, SsoScope(frozenset({alice})), observer)
    assert person.users == frozenset({alice}) and person.group("team-a") is not None
    store.fail("member_of", "transient")
    failed = read_identity_center(settings, store, SsoScope(frozenset({alice})), observer)
    assert all(not g.read for g in failed.groups) and observer.counted("IdentityStoreReadFailures") == 2
    unreachable = read_identity_center(settings, TransientError("sts:AssumeRole timed out"), None, observer)
    assert [g.error for g in unreachable.groups] == ["TransientError: sts:AssumeRole timed out"] * 2


def test_the_breaker_counts_people_and_a_rename_removes_nobody() -> None:
    snapshot = SsoSnapshot((SsoGroup("team-a", "g-a", (SsoMember("u1", "alice.smith@example.com"),)),))
    bindings, _, _ = sso_bindings(parsed(), snapshot, {"team-a": {}})
    label = bindings[0].principal_label
    assert removals(bindings, [label]) == (1, 0)  # alice renamed: her old binding goes, a new one comes
    assert removals([], [label, label, "ssouser-other"]) == (2, 2)
    assert removals([], ["user-not-identity-center"]) == (0, 0)
