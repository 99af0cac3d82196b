"""Ownership by instance, on plain data: each backend's plan changes only what carries its instance's
name (or none: made before instances, adopted and marked on this run), never another instance's; what
another instance owns and this one wants is a conflict naming that instance. The default instance marks
nothing and reads nothing else, as every version before instances did."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from chalicelib.config import settings
from chalicelib.engine.accessentries.plan import (
    CreateEntry,
    DeleteEntry,
    UpdateEntry,
    owned,
    plan_access_entries,
    tags_for,
)
from chalicelib.engine.awsauth.ledger import Ledger, LedgerError, LedgerRecord
from chalicelib.engine.awsauth.model import Entry
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.awsauth.plan import SyncIntent, plan_aws_auth
from chalicelib.engine.guardrails import Policy
from chalicelib.engine.plan import CreateBinding, DeleteBinding, UpdateBinding, plan_bindings
from chalicelib.model.bindings import DesiredBinding, binding_labels
from chalicelib.model.identities import OwnedEntry
from chalicelib.model.ownership import (
    DEFAULT_INSTANCE,
    ENTRY_INSTANCE_TAG,
    INSTANCE_LABEL,
    LEDGER_ANNOTATION,
    instance_marker,
    owns,
)
from chalicelib.model.ports import ObservedAccessEntry, ObservedBinding, ObservedConfigMap
from chalicelib.model.sources import Source
from tests.unit.accessentries.test_plan import ALICE, BOB, CAROL, observed
from tests.unit.awsauth.builders import NODE, document, ledger_of, owned_user, user


def test_the_default_instance_is_the_unset_setting_and_marks_nothing() -> None:
    assert settings.DEFAULT_INSTANCE == DEFAULT_INSTANCE
    assert instance_marker(DEFAULT_INSTANCE) is None and instance_marker("prod") == "prod"


@pytest.mark.parametrize(
    ("instance", "marker", "mine"),
    [
        ("prod", "prod", True),
        ("prod", None, True),  # made before instances: adopted
        ("prod", "dev", False),
        ("default", None, True),
        ("default", "prod", False),
    ],
)
def test_who_owns_what(instance: str, marker: str | None, mine: bool) -> None:
    assert owns(instance, marker) is mine


# --- aws-auth: one ledger, a section per instance ----------------------------------------------------------

A = user("alice", "devs")
B = user("bob", "devs")
C = user("carol", "devs")


def observed_aws_auth(entries: list[Entry], ledger: Ledger) -> ObservedConfigMap:
    return ObservedConfigMap(
        "aws-auth", "kube-system", document([NODE], entries), {LEDGER_ANNOTATION: ledger.serialize()}, "7"
    )


def test_the_default_instance_s_ledger_is_written_as_before_instances() -> None:
    ledger = ledger_of(owned_user(A))
    assert json.loads(ledger.serialize()).keys() == {"version", "zlib"}
    assert Ledger.parse(ledger.serialize()).records == ledger.records


def test_a_named_instance_keeps_its_section_and_the_others_as_read() -> None:
    dev = Ledger.of([LedgerRecord(A.arn, "mapUsers", "identities.groups[devs]")])
    dev = Ledger(dev.records, "dev")
    text = dev.serialize()
    assert set(json.loads(text)["instances"]) == {"dev"}
    prod = Ledger.parse(text, "prod")
    assert prod.records == {} and prod.owners == {A.arn.lower(): "dev"} and not prod.adopted
    both = Ledger(ledger_of(owned_user(B)).records, "prod", prod.others).serialize()
    assert set(json.loads(both)["instances"]) == {"dev", "prod"}
    assert set(Ledger.parse(both, "dev").records) == {A.arn.lower()}
    assert set(Ledger.parse(both, "prod").records) == {B.arn.lower()}
    assert set(Ledger.parse(both, None).records) == {A.arn.lower(), B.arn.lower()}  # the report: everyone's
    assert Ledger.parse(both).records == {}  # the default instance owns neither


def test_an_unreadable_section_is_refused() -> None:
    with pytest.raises(LedgerError):
        Ledger.parse(json.dumps({"version": 2, "zlib": Ledger().serialize(), "instances": {"dev": 3}}), "prod")


def test_a_named_instance_adopts_the_unmarked_ledger_and_marks_it_on_its_next_run() -> None:
    legacy = observed_aws_auth([A], ledger_of(owned_user(A)))
    step = plan_aws_auth(legacy, SyncIntent((owned_user(A),)), Policy(instance="prod"))
    assert step.status == "write" and step.changes == ()  # nothing else changes: the ledger moves
    written = json.loads(step.ledger)
    assert set(written["instances"]) == {"prod"}
    assert Ledger.parse(step.ledger).records == {}  # the unmarked section is empty now
    assert set(Ledger.parse(step.ledger, "prod").records) == {A.arn.lower()}
    again = ObservedConfigMap("aws-auth", "kube-system", step.data or {}, {LEDGER_ANNOTATION: step.ledger}, "8")
    assert plan_aws_auth(again, SyncIntent((owned_user(A),)), Policy(instance="prod")).status == "unchanged"


def test_two_instances_on_one_aws_auth_never_touch_each_other_s_entries() -> None:
    dev_ledger = Ledger(ledger_of(owned_user(A)).records, "dev")
    current = observed_aws_auth([A], dev_ledger)
    # prod wants alice (dev's) and bob; it owns nothing yet: alice is a conflict naming dev, bob is added
    step = plan_aws_auth(current, SyncIntent((owned_user(A), owned_user(B))), Policy(instance="prod"))
    assert step.status == "write"
    assert [(c.action, c.arn) for c in step.changes] == [("add", B.arn)]
    [conflict] = step.conflicts
    assert (
        conflict.owner == "eks-iam-sync instance 'dev'"
        and "mapped by eks-iam-sync instance 'dev'" in conflict.describe()
    )
    after = ObservedConfigMap("aws-auth", "kube-system", step.data or {}, {LEDGER_ANNOTATION: step.ledger}, "8")
    # dev, wanting nobody now, removes alice only: bob is prod's
    step = plan_aws_auth(after, SyncIntent(()), Policy(instance="dev", force_deletions=True))
    assert [(c.action, c.arn) for c in step.changes] == [("remove", A.arn)]
    users = {e.arn for e in read_aws_auth(step.data or {}).entries("mapUsers")}
    assert users == {B.arn}
    assert set(Ledger.parse(step.ledger, "prod").records) == {B.arn.lower()}
    assert Ledger.parse(step.ledger, "dev").records == {}


# --- access entries: the instance tag ---------------------------------------------------------------------


def tagged(item: OwnedEntry, instance: str | None) -> ObservedAccessEntry:
    """The service's entry as ``instance`` tagged it (None: before instances)."""
    return observed(item, tags={ENTRY_INSTANCE_TAG: instance} if instance else None)


def test_a_named_instance_tags_what_it_creates_and_the_default_instance_does_not() -> None:
    assert tags_for(ALICE, None, "prod")[ENTRY_INSTANCE_TAG] == "prod"
    assert ENTRY_INSTANCE_TAG not in tags_for(ALICE)
    [create] = plan_access_entries([], [ALICE], None, Policy(instance="prod")).actions
    assert isinstance(create, CreateEntry)


def test_another_instance_s_entries_are_never_changed_and_a_wanted_one_is_a_conflict_naming_it() -> None:
    entries = [
        tagged(ALICE, "dev"),
        observed(BOB, ("other",), tags={ENTRY_INSTANCE_TAG: "dev"}),  # dev's, differing from what prod wants
        tagged(CAROL, "prod"),
    ]
    step = plan_access_entries(entries, [BOB], None, Policy(instance="prod", force_deletions=True))
    # carol (prod's, no longer wanted) goes; alice and bob are dev's: untouched, bob a conflict
    assert [(type(a), a.principal_arn) for a in step.actions] == [(DeleteEntry, CAROL.iam_arn)]
    [conflict] = step.conflicts
    assert conflict.foreign.arn == BOB.iam_arn and conflict.owner == "eks-iam-sync instance 'dev'"
    assert not owned(entries[0], "prod") and owned(entries[0], "dev") and owned(entries[0], None)


def test_an_unmarked_entry_is_adopted_by_a_named_instance_and_tagged_in_place() -> None:
    legacy = tagged(ALICE, None)
    [update] = plan_access_entries([legacy], [ALICE], None, Policy(instance="prod")).actions
    assert isinstance(update, UpdateEntry) and not update.mapping_changed and update.tags_changed
    assert update.tags[ENTRY_INSTANCE_TAG] == "prod"
    assert plan_access_entries([tagged(ALICE, "prod")], [ALICE], None, Policy(instance="prod")).actions == ()
    # the default instance leaves a named instance's entry alone, as foreign
    step = plan_access_entries([tagged(ALICE, "prod")], [], None, Policy(force_deletions=True))
    assert step.actions == ()


# --- RoleBindings: the instance label ----------------------------------------------------------------------

GRANT = DesiredBinding("team-a", "eks-iam-sync:group:devs:view", "view", "Group", "devs", (Source.group("devs"),))


def observed_binding(instance: str | None, name: str = GRANT.name) -> ObservedBinding:
    return ObservedBinding(
        "team-a", name, "view", (("Group", "devs"),), GRANT.source, None, "1", None, GRANT.group_label, instance
    )


def test_a_binding_carries_its_instance_s_label_and_an_unmarked_one_is_relabelled() -> None:
    mine = replace(GRANT, instance="prod")
    assert binding_labels(mine)[INSTANCE_LABEL] == "prod" and INSTANCE_LABEL not in binding_labels(GRANT)
    [update] = plan_bindings([mine], [observed_binding(None)])
    assert isinstance(update, UpdateBinding)
    assert plan_bindings([mine], [observed_binding("prod")]) == ()
    assert isinstance(plan_bindings([], [observed_binding("prod")])[0], DeleteBinding)
    assert isinstance(plan_bindings([mine], [])[0], CreateBinding)
