"""The queued path's pure model: a batch's triggers coalesced into one scope, work items per cluster,
their message bodies (round trip and refusals) and send_message_batch sizing."""

from __future__ import annotations

import json

import pytest

from chalicelib.engine.events import Trigger
from chalicelib.engine.workitems import (
    MAX_PRINCIPALS_PER_ITEM,
    BadWorkItem,
    WorkItem,
    batches,
    body,
    coalesce,
    event_items,
    full_run_items,
    messages,
    parse,
)
from chalicelib.model.principals import PrincipalScope


def trigger(event_id: str, users: tuple[str, ...] = (), roles: tuple[str, ...] = (), **kwargs: object) -> Trigger:
    name = str(kwargs.pop("name", "AddUserToGroup"))
    return Trigger(event_id, name, None, PrincipalScope.of(users, roles), **kwargs)  # type: ignore[arg-type]


def test_a_batch_of_triggers_is_one_scope_with_every_principal_once() -> None:
    batch = coalesce(
        [
            trigger("e1", ("Alice",), rebinds=False),
            trigger("e2", ("alice", "bob"), rebinds=False),
            trigger("e3", roles=("Deployer",), name="TagRole"),
            trigger("e2", ("bob",), rebinds=False),  # a duplicate delivery
        ]
    )
    assert batch is not None
    assert batch.scope.users == {"alice", "bob"} and batch.scope.roles == {"deployer"}
    assert batch.scope.names("role") == ["Deployer"]  # the spelling IAM is read with is kept
    assert batch.event_ids == ("e1", "e2", "e3")
    assert batch.rebinds  # the tag event may change RoleBindings
    assert batch.as_trigger().scope == batch.scope and batch.as_trigger().event_id == "e1"


def test_membership_only_batches_do_not_rebind_and_groups_are_kept_once() -> None:
    batch = coalesce(
        [
            trigger("e1", ("a",), rebinds=False),
            trigger("e2", deleted_groups=("devs",), rebinds=True),
            trigger("e3", deleted_groups=("devs", "ops"), rebinds=True),
            trigger("e4", groups_to_read=("qa",), rebinds=True),
        ]
    )
    assert batch is not None
    assert batch.deleted_groups == ("devs", "ops") and batch.groups_to_read == ("qa",)
    only_membership = coalesce([trigger("e1", ("a",), rebinds=False), trigger("e2", ("b",), rebinds=False)])
    assert only_membership is not None and not only_membership.rebinds
    assert only_membership.as_trigger().event_name == "AddUserToGroup"


def test_nothing_to_coalesce_and_renames_are_refused_not_coalesced() -> None:
    assert coalesce([]) is None
    renamed = Trigger("e9", "UpdateGroup", None, PrincipalScope(), renamed_groups=(("devs", "devs2"),))
    with pytest.raises(ValueError, match="e9"):
        coalesce([trigger("e1", ("a",)), renamed])


def test_one_item_per_cluster_carrying_scope_only() -> None:
    batch = coalesce([trigger("e1", ("alice",), rebinds=False), trigger("e2", roles=("r",), deleted_groups=("g",))])
    assert batch is not None
    items = event_items(batch, ["east", "west"])
    assert [i.cluster for i in items] == ["east", "west"]
    assert all(i.users == ("alice",) and i.roles == ("r",) and i.deleted_groups == ("g",) for i in items)
    assert all(not i.everyone and i.events == ("e1", "e2") and i.rebinds for i in items)
    assert items[0].trigger().scope == batch.scope


def test_a_large_scope_is_split_into_items_within_the_message_limit() -> None:
    users = tuple(f"user-{n:05d}-{'x' * 50}" for n in range(MAX_PRINCIPALS_PER_ITEM * 2 + 1))
    batch = coalesce([trigger("e1", users, deleted_groups=("g",))])
    assert batch is not None
    items = event_items(batch, ["east"])
    assert len(items) == 3
    assert sorted(u for i in items for u in i.users) == sorted(users)
    assert [i.deleted_groups for i in items] == [("g",), (), ()]  # read once, with the first
    assert max(len(body(i).encode()) for i in items) < 256 * 1024


@pytest.mark.parametrize(
    "item",
    [
        WorkItem("east", everyone=True, run="schedule-1"),
        WorkItem("west", users=("Alice", "bob"), roles=("r",), deleted_groups=("g",), rebinds=False, events=("e1",)),
        WorkItem("x_1", groups_to_read=("qa",), events=("e1", "e2")),
    ],
)
def test_a_body_reads_back_as_its_item(item: WorkItem) -> None:
    text = body(item)
    assert json.loads(text)["cluster"] == item.cluster
    assert parse(text) == item


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "body"),
        ("[]", "body"),
        ('{"version": 2, "cluster": "east", "scope": "everyone"}', "version"),
        ('{"version": 1, "cluster": "-east", "scope": "everyone"}', "cluster"),
        ('{"version": 1, "cluster": "east", "scope": "someone"}', "scope"),
        ('{"version": 1, "cluster": "east", "scope": {"users": ["a b"]}}', "scope"),
        ('{"version": 1, "cluster": "east", "scope": {"users": []}, "desired": {}}', "desired"),
    ],
)
def test_a_body_that_is_not_a_work_item_is_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(BadWorkItem, match=problem):
        parse(text)


def test_full_runs_items_differ_by_run_and_messages_group_by_cluster() -> None:
    first, second = full_run_items(["east", "west"], "run-1"), full_run_items(["east", "west"], "run-2")
    sent = messages(first)
    assert [m.group for m in sent] == ["east", "west"] and [m.id for m in sent] == ["0", "1"]
    assert [m.dedup for m in sent] == [m.dedup for m in messages(full_run_items(["east", "west"], "run-1"))]
    assert not {m.dedup for m in sent} & {m.dedup for m in messages(second)}


def test_send_batches_hold_at_most_ten_entries_and_the_byte_limit() -> None:
    sent = messages(full_run_items([f"c{n}" for n in range(25)], "r"))
    assert [len(b) for b in batches(sent)] == [10, 10, 5]
    size = len(sent[0].body.encode())
    assert [len(b) for b in batches(sent[:5], max_bytes=size * 2)] == [2, 2, 1]
    with pytest.raises(ValueError, match="bytes"):
        batches(sent[:1], max_bytes=size - 1)
