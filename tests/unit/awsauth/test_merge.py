"""Merging owned entries into aws-auth: examples, then properties over generated documents."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.merge import merge
from chalicelib.engine.awsauth.model import MAP_ROLES, MAP_USERS, Entry
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.awsauth.render import render_key
from chalicelib.model.identities import OwnedEntry
from chalicelib.model.sources import Source
from tests.unit.awsauth.builders import NODE, document, ledger_of, owned_role, owned_user, role, user

ALICE, BOB = user("alice", "devs"), user("bob", "devs")


def run(data: dict[str, str], ledger: Ledger, desired: list[OwnedEntry], scope: set[str] | None = None):
    return merge(data, read_aws_auth(data), ledger, desired, scope)


def test_adds_owned_entries_and_leaves_foreign_keys_byte_identical() -> None:
    data = {**document(roles=[NODE]), "mapAccounts": "- '444455556666'\n", "other": "kept"}
    result = run(data, Ledger(), [owned_user(BOB), owned_user(ALICE)])
    assert result.data["mapRoles"] == data["mapRoles"]
    assert result.data["mapAccounts"] == data["mapAccounts"] and result.data["other"] == "kept"
    assert read_aws_auth(result.data).entries(MAP_USERS) == (ALICE, BOB)  # ARN order
    assert [c.action for c in result.changes] == ["add", "add"]
    assert result.ledger.owns(ALICE.arn) and result.ledger.owns(BOB.arn)


def test_a_foreign_entry_for_a_wanted_arn_is_a_conflict_and_left_alone() -> None:
    foreign = Entry(ALICE.arn, "alice-by-hand", ("admins",))
    data = document(users=[foreign])
    result = run(data, Ledger(), [owned_user(ALICE)])
    assert result.data == data
    assert [c.foreign for c in result.conflicts] == [foreign]
    assert not result.ledger.owns(ALICE.arn)
    assert "someone else" in result.conflicts[0].describe()


def test_owned_entries_are_repaired_in_place_and_removed_when_no_longer_desired() -> None:
    edited = Entry(ALICE.arn, "alice", ("devs", "admins"))
    data = document(roles=[NODE], users=[edited, BOB])
    ledger = ledger_of(owned_user(ALICE), owned_user(BOB))
    result = run(data, ledger, [owned_user(ALICE)])
    assert read_aws_auth(result.data).entries(MAP_USERS) == (ALICE,)
    assert [(c.action, c.arn) for c in result.changes] == [("update", ALICE.arn), ("remove", BOB.arn)]
    assert not result.ledger.owns(BOB.arn)
    assert result.data["mapRoles"] == data["mapRoles"]


def test_a_scoped_merge_touches_only_its_principals() -> None:
    data = document(users=[ALICE, BOB])
    ledger = ledger_of(owned_user(ALICE), owned_user(BOB))
    result = run(data, ledger, [], scope={BOB.key})
    assert read_aws_auth(result.data).entries(MAP_USERS) == (ALICE,)
    assert result.ledger.owns(ALICE.arn) and not result.ledger.owns(BOB.arn)


def test_an_owned_entry_deleted_by_hand_comes_back() -> None:
    ledger = ledger_of(owned_user(ALICE))
    result = run(document(), ledger, [owned_user(ALICE)])
    assert read_aws_auth(result.data).entries(MAP_USERS) == (ALICE,)


def test_no_change_means_same_data_and_ledger() -> None:
    first = run(document(roles=[NODE]), Ledger(), [owned_user(ALICE), owned_role(role("dev", "devs"))])
    again = merge(first.data, read_aws_auth(first.data), first.ledger, [owned_user(ALICE)], {ALICE.key})
    assert again.data == first.data and again.ledger == first.ledger  # e2 changed nothing: no write
    assert again.changes == ()


def test_unknown_fields_of_foreign_entries_survive_a_rewrite() -> None:
    foreign = Entry(role("legacy").arn, "legacy", ("x",), (("syncedBy", "qovery"), ("weight", 3), ("on", True)))
    data = document(roles=[foreign])
    result = run(data, Ledger(), [owned_role(role("dev", "devs"))])
    assert result.data["mapRoles"] != data["mapRoles"]
    [kept, _] = read_aws_auth(result.data).entries(MAP_ROLES)
    assert kept == foreign and kept.extra == foreign.extra


def test_rendering_quotes_everything_that_yaml_1_1_would_misread() -> None:
    tricky = Entry(role("t").arn, "{{SessionName}}", ("on", "1234", "a: b", "yes", "null", "~", "0x1F", " x"))
    text = render_key(MAP_ROLES, [tricky])
    assert "\t" not in text
    reading = read_aws_auth({MAP_ROLES: text})
    assert reading.understood
    assert reading.entries(MAP_ROLES) == (tricky,)


# --- properties -------------------------------------------------------------------------------

TRICKY = ["on", "yes", "no", "null", "~", "1234", "010", "0x1F", "1e3", "{{SessionName}}", "a: b", "- x", "#c", ""]
texts = st.one_of(st.sampled_from(TRICKY), st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12))
names = st.text("abcdefgh", min_size=1, max_size=3)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(TRICKY))


@st.composite
def entries(draw: st.DrawFn, kind: str, foreign: bool) -> Entry:
    name = draw(names)
    arn = f"arn:aws:iam::111122223333:{kind}/{name}"
    username = draw(texts.filter(bool)) if foreign else f"u-{draw(names)}"
    groups = tuple(draw(st.lists(texts if foreign else names, max_size=3)))
    extra = tuple(draw(st.dictionaries(st.sampled_from(["syncedBy", "note", "x"]), scalars, max_size=2)).items())
    return Entry(arn, username, groups, extra if foreign else ())


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, str], Ledger, list[OwnedEntry], set[str] | None]:
    foreign_roles = draw(st.lists(entries("role", True), max_size=4, unique_by=lambda e: e.key))
    foreign_users = draw(st.lists(entries("user", True), max_size=4, unique_by=lambda e: e.key))
    wanted = draw(st.lists(entries("user", False), max_size=5, unique_by=lambda e: e.key))
    wanted += draw(st.lists(entries("role", False), max_size=3, unique_by=lambda e: e.key))
    previously = draw(st.lists(entries("user", False), max_size=3, unique_by=lambda e: e.key))
    foreign_keys = {e.key for e in foreign_roles + foreign_users}
    previously = [e for e in previously if e.key not in foreign_keys]
    rule = (Source.group("devs"),)
    desired = [OwnedEntry(MAP_ROLES if ":role/" in e.arn else MAP_USERS, e, rule) for e in wanted]
    owned_before = [OwnedEntry(MAP_USERS, e, rule) for e in previously]
    data = document(roles=foreign_roles, users=foreign_users + previously)
    scope = None
    if draw(st.booleans()):
        everyone = sorted({e.key for e in wanted + previously})
        scope = set(draw(st.lists(st.sampled_from(everyone), max_size=3))) if everyone else set()
    return data, ledger_of(*owned_before), desired, scope


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_merge_properties(scenario: tuple[dict[str, str], Ledger, list[OwnedEntry], set[str] | None]) -> None:
    data, ledger, desired, scope = scenario
    before = read_aws_auth(data)
    assume(before.understood)
    result = merge(data, before, ledger, desired, scope)
    after = read_aws_auth(result.data)

    # rendered output loads the same under both generations, and cleanly
    assert after.understood, [p.render() for p in after.errors]
    for key in (MAP_ROLES, MAP_USERS):
        assert [e.core() for e in after.keys[key].gen_a] == [e.core() for e in after.keys[key].gen_c]

    # foreign entries never change
    for key in (MAP_ROLES, MAP_USERS):
        foreign_before = [e for e in before.entries(key) if not ledger.owns(e.arn)]
        foreign_after = [e for e in after.entries(key) if not ledger.owns(e.arn) and not result.ledger.owns(e.arn)]
        assert foreign_after == foreign_before
        for entry in foreign_before:
            assert entry in after.entries(key)

    # idempotent
    again = merge(result.data, after, result.ledger, desired, scope)
    assert again.data == result.data and again.ledger == result.ledger and again.changes == ()

    # the order of desired entries does not matter
    shuffled = list(desired)
    random.Random(len(desired)).shuffle(shuffled)
    assert merge(data, before, ledger, shuffled, scope).data == result.data
