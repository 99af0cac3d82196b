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
from chalicelib.errors import PermanentError
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
from chalicelib.run.instances import OwnBindings, managed_by_others
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


# --- the cluster: managed by another instance when what a run read carries its mark ------------------------


@pytest.mark.parametrize(
    ("instance", "marks", "managed_by"),
    [
        ("prod", [], ()),
        ("prod", [None, "prod"], ()),  # unmarked (adopted) and its own: the cluster is its
        ("prod", ["dev"], ("dev",)),
        ("prod", ["prod", "dev", None, "dev", "qa"], ("dev", "qa")),  # every other instance, once, sorted
        ("default", [None], ()),  # the default instance marks nothing: unmarked objects are its own
        ("default", ["prod"], ("prod",)),  # ...and is refused where a named instance manages
        ("dev", ["default"], ("default",)),  # a marker is a name like any other (never written, but read)
    ],
)
def test_a_cluster_is_managed_by_the_other_instances_whose_marks_were_read(
    instance: str, marks: list[str | None], managed_by: tuple[str, ...]
) -> None:
    refusal = managed_by_others("c1", instance, marks)
    assert (refusal.owners if refusal else ()) == managed_by
    if refusal is not None:
        assert isinstance(refusal, PermanentError) and refusal.kind == "managed-by-other-instance"
        assert str(refusal).startswith(f"cluster c1 is managed by eks-iam-sync instance '{managed_by[0]}'")


def test_the_refusal_tells_the_named_instance_how_to_move_the_cluster_and_the_default_how_to_act_as_the_owner() -> None:
    named = managed_by_others("c1", "prod", ["dev"])
    assert named is not None
    assert str(named) == (
        "cluster c1 is managed by eks-iam-sync instance 'dev': eks-iam-sync instance 'prod' writes nothing here; "
        "to move it, uninstall the other instance from it (EKS_IAM_SYNC_INSTANCE=dev eks-iam-sync uninstall "
        "--config F --cluster c1), or remove the cluster from this instance's configuration"
    )
    default = managed_by_others("c1", DEFAULT_INSTANCE, ["prod"])
    assert default is not None
    assert str(default) == (
        "cluster c1 is managed by eks-iam-sync instance 'prod': the default instance writes nothing here "
        "(to act as it, set EKS_IAM_SYNC_INSTANCE=prod)"
    )


def test_each_backend_s_step_says_which_instances_marked_what_it_read() -> None:
    dev_ledger = Ledger(ledger_of(owned_user(A)).records, "dev")
    current = observed_aws_auth([A], dev_ledger)
    assert plan_aws_auth(current, SyncIntent(()), Policy(instance="prod")).instances == {"dev"}
    assert plan_aws_auth(current, SyncIntent(()), Policy()).instances == {"dev"}
    assert plan_aws_auth(current, SyncIntent((owned_user(A),)), Policy(instance="dev")).instances == frozenset()
    unmarked = observed_aws_auth([A], ledger_of(owned_user(A)))
    assert plan_aws_auth(unmarked, SyncIntent(()), Policy(instance="prod")).instances == frozenset()
    # an aws-auth the service will not write over still tells whose it is
    broken = replace(current, data={**current.data, "mapUsers": "- userarn: [unclosed"})
    step = plan_aws_auth(broken, SyncIntent(()), Policy(instance="prod"))
    assert step.status == "refused" and step.instances == {"dev"}

    entries = [tagged(ALICE, "dev"), tagged(BOB, None), observed(CAROL, tags={ENTRY_INSTANCE_TAG: "qa"})]
    assert plan_access_entries(entries, [], None, Policy(instance="prod")).instances == {"dev", "qa"}
    # a foreign entry (not the service's) carrying the tag is no one's mark
    foreign = replace(tagged(ALICE, "dev"), tags={ENTRY_INSTANCE_TAG: "dev"})
    assert plan_access_entries([foreign], [], None, Policy(instance="prod")).instances == frozenset()


def test_the_bindings_listed_keep_the_other_instances_aside() -> None:
    class Store:
        def list_owned(self, principals: object = None) -> list[ObservedBinding]:
            return [observed_binding("dev"), observed_binding(None, "unmarked"), observed_binding("prod", "mine")]

    mine = OwnBindings(Store(), "prod")  # type: ignore[arg-type]
    assert [b.name for b in mine.list_owned()] == ["unmarked", "mine"]
    assert mine.instances == {"dev"}
