"""The access-entries plan and EKS's rules, on plain data: ownership by tag, updates, recreated
principals, foreign and node entries, scope, protection, the deletion breaker and the quota."""

from __future__ import annotations

import pytest

from chalicelib.engine.accessentries.plan import (
    CreateEntry,
    DeleteEntry,
    RecreateEntry,
    UpdateEntry,
    plan_access_entries,
    tags_for,
)
from chalicelib.engine.accessentries.rules import refusal_for
from chalicelib.engine.guardrails import Policy
from chalicelib.model.identities import Entry, OwnedEntry
from chalicelib.model.ownership import ACCESS_ENTRY_QUOTA
from chalicelib.model.ports import ObservedAccessEntry
from chalicelib.model.principals import PrincipalScope
from chalicelib.model.sources import Source

ACCOUNT = "111122223333"


def wanted(
    name: str, *groups: str, kind: str = "user", path: str = "/", pid: str = "", username: str = ""
) -> OwnedEntry:
    arn = f"arn:aws:iam::{ACCOUNT}:{kind}{path}{name}"
    unpathed = f"arn:aws:iam::{ACCOUNT}:{kind}/{name}"
    key = "mapUsers" if kind == "user" else "mapRoles"
    return OwnedEntry(key, Entry(unpathed, username or name, groups), (Source.group("devs"),), arn, pid or f"ID-{name}")


def observed(
    item: OwnedEntry, groups: tuple[str, ...] | None = None, *, ours: bool = True, tags: dict[str, str] | None = None
) -> ObservedAccessEntry:
    base = tags_for(item) if ours else {}
    return ObservedAccessEntry(
        item.iam_arn,
        item.entry.username,
        groups if groups is not None else item.entry.groups,
        tags={**base, **(tags or {})},
        entry_arn=f"arn:aws:eks:us-east-2:{ACCOUNT}:access-entry/c/{item.name}",
    )


ALICE, BOB, CAROL = wanted("alice", "devs"), wanted("bob", "devs"), wanted("carol", "devs")
CI = wanted("ci", "deployers", kind="role", path="/svc/", username="ci:{{SessionName}}")


def test_desired_without_entry_is_created_with_path_username_groups_and_ownership_tags() -> None:
    step = plan_access_entries([], [ALICE, CI], None, Policy(), total=0)
    assert step.status == "write"
    assert [type(a) for a in step.actions] == [CreateEntry, CreateEntry]
    created = {c.after.arn: c.after for c in step.changes if c.after}
    assert created[CI.iam_arn] == Entry(f"arn:aws:iam::{ACCOUNT}:role/svc/ci", "ci:{{SessionName}}", ("deployers",))
    assert tags_for(CI)["eks-iam-sync/principal-id"] == "ID-ci"
    assert tags_for(CI)["app.kubernetes.io/managed-by"] == "eks-iam-sync"


def test_in_place_is_unchanged_and_different_groups_is_an_update() -> None:
    assert plan_access_entries([observed(ALICE)], [ALICE], None, Policy(), 1).status == "unchanged"
    step = plan_access_entries([observed(ALICE, ("old",))], [ALICE], None, Policy(), 1)
    [update] = step.actions
    assert isinstance(update, UpdateEntry) and update.mapping_changed


def test_groups_compare_as_sets() -> None:
    two = wanted("dana", "b", "a")
    assert plan_access_entries([observed(two, ("a", "b"))], [two], None, Policy(), 1).status == "unchanged"


def test_a_recreated_principal_is_deleted_and_created_again() -> None:
    old = observed(ALICE, tags={"eks-iam-sync/principal-id": "ID-old"})
    step = plan_access_entries([old], [ALICE], None, Policy(), 1)
    assert [type(a) for a in step.actions] == [RecreateEntry]
    assert step.changes[0].action == "recreate"


def test_foreign_and_node_entries_are_never_touched_and_a_wanted_foreign_one_is_a_conflict() -> None:
    foreign = observed(ALICE, ours=False)
    node = ObservedAccessEntry(
        f"arn:aws:iam::{ACCOUNT}:role/node", "", (), "EC2_LINUX", {"app.kubernetes.io/managed-by": "eks-iam-sync"}
    )
    step = plan_access_entries([foreign, node], [ALICE], None, Policy(), 2)
    assert step.actions == () and [c.wanted for c in step.conflicts] == [ALICE]


def test_owned_and_no_longer_desired_is_deleted_but_only_in_scope() -> None:
    current = [observed(ALICE), observed(BOB), observed(CAROL)]
    step = plan_access_entries(current, [ALICE, CAROL], None, Policy(), 3)
    assert [(a.verb, a.observed.principal_arn) for a in step.actions if isinstance(a, DeleteEntry)] == [
        ("delete", BOB.iam_arn)
    ]
    assert len(step.actions) == 1
    scoped = plan_access_entries(current, [], PrincipalScope.of(["carol"]), Policy(), None)
    assert [a.observed.principal_arn for a in scoped.actions if isinstance(a, DeleteEntry)] == [CAROL.iam_arn]
    assert len(scoped.actions) == 1


def test_protected_entries_are_never_changed_or_deleted() -> None:
    own = wanted("eks-iam-sync-function", kind="role", path="/svc/")
    policy = Policy(protected_arns=frozenset({own.entry.arn.lower()}))  # canonical: no path
    step = plan_access_entries([observed(own), observed(ALICE)], [ALICE], None, policy, 2)
    assert step.status == "unchanged"


def test_the_deletion_breaker_refuses_mass_deletion_unless_forced() -> None:
    current = [observed(ALICE), observed(BOB), observed(CAROL)]
    step = plan_access_entries(current, [], None, Policy(max_deletion_share=0.5), 3)
    assert step.status == "refused" and [r.reason for r in step.refusals] == ["deletion-breaker"]
    forced = plan_access_entries(current, [], None, Policy(force_deletions=True), 3)
    assert forced.status == "write" and len(forced.actions) == 3


def test_quota_warns_at_80_percent_and_refuses_beyond() -> None:
    near = plan_access_entries([], [ALICE], None, Policy(), total=int(ACCESS_ENTRY_QUOTA * 0.8))
    assert near.status == "write" and near.warnings and "2401 of 3000" in near.warnings[0]
    over = plan_access_entries([], [ALICE], None, Policy(), total=ACCESS_ENTRY_QUOTA)
    assert over.status == "refused" and [r.reason for r in over.refusals] == ["quota"]


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (wanted("x", "system:masters"), "system-group"),
        (wanted("x", "SYSTEM:Masters"), "system-group"),
        (wanted("x", username="eks:admin"), "reserved-username"),
        (wanted("x", username="AWS:me"), "reserved-username"),
        (wanted("x", username="{{SessionName}}"), "session-name-template"),
        (wanted("svc", kind="role", path="/aws-service-role/eks.amazonaws.com/"), "invalid-principal"),
    ],
)
def test_eks_rules_refuse_per_principal_and_the_rest_proceeds(item: OwnedEntry, reason: str) -> None:
    refusal = refusal_for(item)
    assert refusal is not None and refusal.reason == reason and refusal.principal == item.iam_arn
    step = plan_access_entries([], [item, ALICE], None, Policy(), 0)
    assert [r.reason for r in step.refusals] == [reason] and len(step.actions) == 1


def test_a_session_name_after_a_colon_is_fine() -> None:
    assert refusal_for(CI) is None
    assert refusal_for(wanted("x", username="arn:aws:sts::1:assumed-role/x/{{SessionName}}")) is None
