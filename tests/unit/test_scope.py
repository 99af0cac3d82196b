"""Who a run concerns (chalicelib/run/scope.py): an event's principals, the identity step's, the re-read's."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pytest

from chalicelib.engine.events import Trigger
from chalicelib.engine.plan import CreateBinding, DeleteBinding, Plan
from chalicelib.model.bindings import DesiredBinding
from chalicelib.model.identities import Change, Conflict, Entry, Refusal
from chalicelib.model.ports import ObservedBinding
from chalicelib.model.principals import EveryoneBut, PrincipalScope
from chalicelib.model.snapshot import IamRole, IamSnapshot, IamUser
from chalicelib.model.sources import Source
from chalicelib.run.scope import REREAD_LIMIT, identity_scope, reread_scope, resolve_scope, touched_principals

ACCOUNT = "arn:aws:iam::111122223333"


def trigger(users: Iterable[str] = (), roles: Iterable[str] = (), **kwargs: object) -> Trigger:
    return Trigger("e-1", "AddUserToGroup", None, PrincipalScope.of(users, roles), **kwargs)  # type: ignore[arg-type]


class Lookups:
    """Group members and former members, each call recorded."""

    def __init__(self, members: dict[str, list[str]] | None = None, former: list[str] | None = None) -> None:
        self.groups, self.former, self.asked = members or {}, former or [], list[object]()

    def members(self, group: str) -> list[str]:
        self.asked.append(group)
        return self.groups[group]

    def former_members(self, groups: tuple[str, ...]) -> list[str]:
        self.asked.append(groups)
        return self.former


def test_no_trigger_is_everyone_and_reads_nothing() -> None:
    lookups = Lookups()
    assert resolve_scope(None, lookups.members, lookups.former_members) is None
    assert lookups.asked == []


def test_an_event_concerns_its_principals_alone_and_reads_nothing_more() -> None:
    lookups = Lookups()
    scope = resolve_scope(trigger(["Alice"], ["Deployer"]), lookups.members, lookups.former_members)
    assert scope == PrincipalScope.of(["alice"], ["deployer"])
    assert scope.names("user") == ["Alice"]  # the event's spelling is what IAM is read with
    assert lookups.asked == []


def test_a_group_renamed_to_a_configured_name_brings_its_current_members() -> None:
    lookups = Lookups(members={"devs": ["Bob", "carol"]})
    scope = resolve_scope(trigger(groups_to_read=("devs",)), lookups.members, lookups.former_members)
    assert scope.users == {"bob", "carol"} and scope.names("user") == ["Bob", "carol"]
    assert lookups.asked == ["devs"]


def test_a_deleted_group_brings_its_former_members_as_the_service_recorded_them() -> None:
    lookups = Lookups(members={"qa": ["dan"]}, former=["Erin"])
    scope = resolve_scope(
        trigger(["alice"], groups_to_read=("qa",), deleted_groups=("devs", "ops")),
        lookups.members,
        lookups.former_members,
    )
    assert scope.users == {"alice", "dan", "erin"}
    assert lookups.asked == ["qa", ("devs", "ops")]  # every deleted group asked for at once


def test_without_missing_groups_the_identity_step_has_the_run_s_scope_and_reads_nothing() -> None:
    asked: list[tuple[str, ...]] = []

    def members_of(groups: tuple[str, ...]) -> list[str]:
        asked.append(groups)
        return []

    scope = PrincipalScope.of(["alice"])
    assert identity_scope(scope, (), members_of) == (scope, frozenset())
    assert identity_scope(None, (), members_of) == (None, frozenset())
    assert asked == []


@pytest.mark.parametrize("run", ["full", "event"])
def test_a_missing_group_s_former_members_are_kept_out_of_the_identity_step(run: str) -> None:
    scope = None if run == "full" else PrincipalScope.of(["alice", "Bob"], ["deployer"])
    narrowed, kept = identity_scope(scope, ("devs",), lambda groups: ["BOB"] if groups == ("devs",) else [])
    assert kept == {"bob"}
    assert f"{ACCOUNT}:user/bob" not in narrowed  # type: ignore[operator]
    assert f"{ACCOUNT}:role/deployer" in narrowed  # type: ignore[operator]
    if run == "full":
        assert narrowed == EveryoneBut(frozenset({"bob"}))
        assert f"{ACCOUNT}:user/anyone" in narrowed
    else:
        assert narrowed == PrincipalScope.of(["alice"], ["deployer"])


@dataclass(frozen=True)
class Step:
    """An identity step (either backend's) with these changes."""

    changes: tuple[Change, ...] = ()
    status: Literal["unchanged", "refused", "write"] = "write"
    conflicts: tuple[Conflict, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    warnings: tuple[str, ...] = ()
    instances: frozenset[str] = frozenset()


def change(arn: str) -> Change:
    return Change("add", "mapUsers", None, Entry(arn, "user"), "rule")


def binding(principal: str | None) -> DesiredBinding:
    return DesiredBinding("ns", "rb", "view", "User", "u", (Source.tag("eks-access/ns=view"),), principal=principal)


def test_the_principals_a_plan_touches_are_spelled_as_iam_spells_them() -> None:
    snapshot = IamSnapshot(
        users=(IamUser("Alice", f"{ACCOUNT}:user/team/Alice"),),
        roles=(IamRole("Deployer", f"{ACCOUNT}:role/Deployer"),),
    )
    observed = ObservedBinding("ns", "old", "view", (("User", "x"),), "tag", f"{ACCOUNT}:user/gone")
    plan = Plan(
        Step((change(f"{ACCOUNT}:user/alice"),)),
        (CreateBinding(binding(f"{ACCOUNT}:role/deployer")), CreateBinding(binding(None)), DeleteBinding(observed)),
    )
    assert touched_principals(plan, snapshot) == {("user", "Alice"), ("role", "Deployer"), ("user", "gone")}


def test_a_plan_that_touches_nobody_touches_nobody() -> None:
    assert touched_principals(Plan(Step(status="unchanged")), IamSnapshot()) == frozenset()


def test_a_few_touched_principals_are_re_read_one_by_one_past_the_limit_everyone_at_once() -> None:
    scope = reread_scope(frozenset({("user", "Alice"), ("role", "Deployer")}))
    assert scope == PrincipalScope.of(["alice"], ["deployer"]) and scope.names("user") == ["Alice"]
    many = frozenset(("user", f"u{n}") for n in range(REREAD_LIMIT + 1))
    assert reread_scope(many) is None
    assert reread_scope(frozenset(list(many)[:REREAD_LIMIT])) is not None
