"""reconcile_cluster and the Applier on one fake cluster: every outcome of a RoleBinding write (404,
403, 422, 409, transient, a delete of what is already gone, a stale resourceVersion, a replace),
aws-auth write conflicts (retried, and bounded), the guardrails (deletion breaker, protected
entries, unreadable documents, foreign entries) and the dry run, which writes nothing anywhere."""

from __future__ import annotations

import pytest

from chalicelib.engine.awsauth.backups import Backup
from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.plan import CreateBinding, DeleteBinding, ReplaceBinding, UpdateBinding
from chalicelib.errors import TransientError
from chalicelib.model.bindings import binding_name
from chalicelib.model.ownership import BACKUP_SEQUENCE_ANNOTATION, LEDGER_ANNOTATION, backup_name
from chalicelib.model.principals import PrincipalScope
from chalicelib.run.results import succeeded
from tests.functional.fakes import (
    GROUP,
    KUBERNETES_GROUP,
    NS3,
    POD_READER,
    PROFILE,
    PROJECTS,
    TAG_PREFIX,
    FakeBindings,
    FakeCluster,
    FakeShell,
    user_arn,
)

GROUP_BINDING = binding_name("group", KUBERNETES_GROUP, POD_READER)
FIRST, SECOND = ((ns, GROUP_BINDING) for ns in PROJECTS)


@pytest.fixture
def east(shell: FakeShell) -> FakeCluster:
    shell.iam_port.add_user("alice", groups=[GROUP])
    return shell.clusters["fn-east"]


def mapped(cluster: FakeCluster) -> set[str]:
    reading = read_aws_auth(cluster.aws_auth.data)
    return {e.arn for key in ("mapRoles", "mapUsers") for e in reading.entries(key)}


def owned_by_ledger(cluster: FakeCluster) -> set[str]:
    return {r.arn for r in Ledger.parse(cluster.aws_auth.annotations.get(LEDGER_ANNOTATION)).records.values()}


# RoleBindings, one failure at a time: the other binding is always written


@pytest.mark.parametrize(
    ("fault", "bucket", "metric"),
    [
        ("not-found", "skipped", ("BindingsSkipped", {})),
        ("forbidden", "refused", ("Refusals", {"reason": "api-forbidden"})),
        ("rejected", "refused", ("Refusals", {"reason": "api-rejected"})),
        ("conflict", "conflicts", ("BindingConflicts", {})),
    ],
)
def test_a_refused_binding_create_is_reported_and_the_rest_applied(reconciler, east, fault, bucket, metric) -> None:
    east.bindings.fail("create", fault, target=PROJECTS[0])
    report = reconciler()
    bindings = report.applied.bindings
    [problem] = getattr(bindings, bucket)
    assert PROJECTS[0] in problem and bindings.problems == [problem]
    assert [a.key for a in bindings.done] == [SECOND]
    assert set(east.bindings.owned()) == {SECOND}
    assert report.applied.identities.status == "written" and user_arn("alice") in mapped(east)
    name, dimensions = metric
    assert reconciler.observer.counted(name, **dimensions) == 1
    assert reconciler.observer.counted("BindingsCreated") == 1
    assert succeeded(report) is (bucket not in ("refused",))


def test_a_binding_in_a_namespace_that_does_not_exist_is_skipped_until_it_does(reconciler, shell, east) -> None:
    shell.iam_port.add_user("bob", tags={f"{TAG_PREFIX}team-later-ns": PROFILE})
    report = reconciler()
    [skipped] = report.applied.bindings.skipped
    assert "team-later-ns" in skipped and report.applied.bindings.refused == []
    east.bindings.add_namespace("team-later-ns")
    report = reconciler()
    assert [a.key for a in report.applied.bindings.done] == [
        ("team-later-ns", binding_name("tag", "eks-iam-sync:user:bob", PROFILE))
    ]
    assert report.applied.bindings.problems == []


def test_a_transient_binding_failure_is_raised_after_the_others_were_tried(reconciler, east) -> None:
    east.bindings.fail("create", "transient", target=PROJECTS[0])
    with pytest.raises(TransientError, match=r"1 rolebinding writes failed: \+ rolebinding bttrm-web-proj-1-ns/"):
        reconciler()
    assert set(east.bindings.owned()) == {SECOND}  # tried after the failure
    assert user_arn("alice") in mapped(east)  # aws-auth is written before the bindings
    assert "rolebinding write failed" in reconciler.observer.messages("error")


def test_deleting_a_binding_someone_already_deleted_is_fine(reconciler, east) -> None:
    reconciler()
    east.bindings.interfere.append(lambda store: store.remove(*FIRST))  # gone between list and delete
    report = reconciler(config=reconciler.config.model_copy(update={"namespace_grants": ()}))
    assert [(a.verb, a.key) for a in report.applied.bindings.done] == [("delete", FIRST), ("delete", SECOND)]
    assert report.applied.bindings.problems == [] and succeeded(report)
    assert east.bindings.owned() == {}
    assert east.bindings.writes[-1] == f"delete {SECOND[0]}/{SECOND[1]}"


def test_a_delete_refused_by_the_api_server_is_reported(reconciler, east) -> None:
    reconciler()
    east.bindings.fail("delete", "forbidden", target=PROJECTS[1])
    report = reconciler(config=reconciler.config.model_copy(update={"namespace_grants": ()}))
    [refused] = report.applied.bindings.refused
    assert refused.startswith(f"- rolebinding {PROJECTS[1]}/") and "403" in refused
    assert set(east.bindings.owned()) == {SECOND}
    assert not succeeded(report)


def test_a_binding_edited_by_hand_is_updated_and_a_stale_update_is_a_conflict(reconciler, east) -> None:
    reconciler()
    east.bindings.touch(*FIRST, subjects=(("Group", "someone-else"),))
    east.bindings.interfere.append(lambda store: store.touch(*FIRST))  # edited again between list and update
    report = reconciler()
    assert [type(a) for a in report.plan.bindings] == [UpdateBinding]
    [conflict] = report.applied.bindings.conflicts
    assert "stale" in conflict and PROJECTS[0] in conflict
    report = reconciler()  # the next run repairs it
    assert report.applied.bindings.problems == []
    assert east.bindings.objects[FIRST].subjects == (("Group", KUBERNETES_GROUP),)


def test_a_changed_role_ref_is_a_replace_and_a_vanished_namespace_skips_it(reconciler, east) -> None:
    east.bindings.put_binding(*FIRST, "view", (("Group", KUBERNETES_GROUP),), owned=True)
    report = reconciler()
    [action] = [a for a in report.plan.bindings if a.key == FIRST]
    assert isinstance(action, ReplaceBinding)
    assert east.bindings.objects[FIRST].cluster_role == POD_READER
    assert east.bindings.writes[:2] == [f"delete {FIRST[0]}/{FIRST[1]}", f"create {FIRST[0]}/{FIRST[1]}"]

    east.bindings.put_binding(*FIRST, "view", (("Group", KUBERNETES_GROUP),), owned=True)
    east.bindings.fail("create", "not-found", target=PROJECTS[0])  # namespace deleted mid-replace
    report = reconciler()
    assert len(report.applied.bindings.skipped) == 1 and report.applied.bindings.refused == []


def test_unlabelled_bindings_are_never_touched(reconciler, east) -> None:
    east.bindings.put_binding(
        PROJECTS[0],
        "team-admins",
        "admin",
        (
            (
                "Group",
                "team",
            ),
        ),
    )
    reconciler(config=reconciler.config.model_copy(update={"namespace_grants": ()}))
    assert (PROJECTS[0], "team-admins") in east.bindings.objects
    assert all("team-admins" not in w for w in east.bindings.writes)


def test_a_scoped_run_deletes_only_the_bindings_of_its_principals(reconciler, shell, east) -> None:
    for name in ("bob", "carol"):
        shell.iam_port.add_user(name, tags={f"{TAG_PREFIX}{NS3}": PROFILE})
    reconciler()
    for name in ("bob", "carol"):
        shell.iam_port.untag_user(name, f"{TAG_PREFIX}{NS3}")
    report = reconciler(scope=PrincipalScope.of(["bob"]))
    assert [(type(a), a.key) for a in report.plan.bindings] == [
        (DeleteBinding, (NS3, binding_name("tag", "eks-iam-sync:user:bob", PROFILE)))
    ]
    assert (NS3, binding_name("tag", "eks-iam-sync:user:carol", PROFILE)) in east.bindings.owned()
    assert user_arn("carol") in mapped(east) and user_arn("bob") not in mapped(east)


# aws-auth


def test_an_aws_auth_write_conflict_is_re_read_re_planned_and_retried(reconciler, east, sleeps) -> None:
    foreign = "- userarn: arn:aws:iam::123456789012:user/by-hand\n  username: by-hand\n"
    east.config_maps.interfere.append({"mapUsers": foreign})  # eksctl writes between our read and our update
    report = reconciler()
    outcome = report.applied.identities
    assert outcome.status == "written" and outcome.attempts == 2
    assert {user_arn("alice"), user_arn("by-hand")} <= mapped(east)
    assert reconciler.observer.counted("ConflictsRetried") == 1 and len(sleeps) == 1


def test_aws_auth_conflicts_are_bounded_then_raised_as_transient(reconciler, east, sleeps) -> None:
    before = east.aws_auth
    east.config_maps.fail("update", "conflict", always=True)
    with pytest.raises(TransientError, match="changed under every one of 30 attempts"):
        reconciler()
    assert len(sleeps) == 30 and max(sleeps) <= 2.0  # capped backoff, jittered
    assert east.aws_auth == before and east.config_maps.calls["update"] == 30
    assert east.bindings.writes == []  # the run stopped before RoleBindings


def test_an_absent_aws_auth_is_created_with_its_ledger(reconciler, east) -> None:
    del east.config_maps.objects[("kube-system", "aws-auth")]
    report = reconciler()
    assert report.applied.identities.status == "written"
    assert east.config_maps.writes == ["create aws-auth"]  # nothing to back up
    assert user_arn("alice") in owned_by_ledger(east)


def test_every_write_is_backed_up_first(reconciler, shell, east) -> None:
    original = east.aws_auth
    reconciler()
    writes = east.config_maps.writes
    assert writes[-1] == "update aws-auth" and f"put {backup_name(1)}" in writes[:-1]
    backup = east.config_maps.get(name=backup_name(1))
    assert backup is not None and backup.data["resourceVersion"] == original.resource_version
    assert Backup.from_data(backup.data).data == original.data
    assert east.aws_auth.annotations[BACKUP_SEQUENCE_ANNOTATION] == "1"
    assert reconciler().applied.identities.status == "unchanged"  # and a no-op writes nothing
    assert east.config_maps.writes == writes


def test_a_conflicting_write_costs_no_backup(reconciler, east) -> None:
    east.config_maps.fail("update", "conflict", times=2)
    report = reconciler()
    assert report.applied.identities.attempts == 3
    assert [w for w in east.config_maps.writes if w.startswith("update")] == ["update aws-auth"]
    assert east.aws_auth.annotations[BACKUP_SEQUENCE_ANNOTATION] == "1"


def test_the_deletion_breaker_refuses_a_mass_removal_until_forced(reconciler, shell, east) -> None:
    for name in ("bob", "carol"):
        shell.iam_port.add_user(name, groups=[GROUP])
    reconciler()
    for name in ("alice", "bob", "carol"):
        shell.iam_port.remove_from_group(name, GROUP)
    east.config_maps.writes.clear()
    report = reconciler()
    outcome = report.applied.identities
    assert outcome.status == "refused" and [r.reason for r in outcome.refusals] == ["deletion-breaker"]
    assert east.config_maps.writes == [] and {user_arn(n) for n in ("alice", "bob", "carol")} <= mapped(east)
    assert reconciler.observer.counted("GuardrailRefusals", reason="deletion-breaker") == 1
    assert not succeeded(report)

    report = reconciler(force_deletions=True)
    assert report.applied.identities.status == "written"
    assert not {user_arn(n) for n in ("alice", "bob", "carol")} & mapped(east)


def test_the_deletion_breaker_also_holds_back_the_tag_grants_of_the_principals_it_keeps(
    reconciler, shell, east
) -> None:
    for name in ("bob", "carol", "dave"):
        shell.iam_port.add_user(name, tags={f"{TAG_PREFIX}{NS3}": PROFILE})
    reconciler()
    for name in ("bob", "carol", "dave"):
        shell.iam_port.delete_user(name)
    report = reconciler()
    assert [r.reason for r in report.applied.identities.refusals] == ["deletion-breaker"]
    for name in ("bob", "carol", "dave"):
        assert (NS3, binding_name("tag", f"eks-iam-sync:user:{name}", PROFILE)) in east.bindings.owned()
    assert len([p for p in report.applied.bindings.refused if "held back by the deletion breaker" in p]) == 3


def test_a_granted_cluster_role_that_came_to_hold_a_wildcard_is_refused_unless_allowed(reconciler, shell, east) -> None:
    role = reconciler.config.tag_grants.profiles[PROFILE]
    east.cluster_roles.roles[role] = ["pods: get, list", "*: *"]  # someone widened it after validation
    shell.iam_port.add_user("bob", tags={f"{TAG_PREFIX}{NS3}": PROFILE})
    report = reconciler()
    assert {r.reason for r in report.desired.refusals} == {"privileged-cluster-role"}
    assert not [k for k in east.bindings.owned() if k[1] == binding_name("tag", "eks-iam-sync:user:bob", PROFILE)]
    allowed = reconciler.config.model_copy(update={"allow_privileged_cluster_roles": (role,)})
    reconciler(config=allowed)
    assert (NS3, binding_name("tag", "eks-iam-sync:user:bob", PROFILE)) in east.bindings.owned()


def test_one_removal_is_never_a_mass_deletion_even_of_the_only_owned_entry(reconciler, shell, east) -> None:
    shell.iam_port.delete_role(reconciler.config.identities.roles[0].iam_role)
    reconciler()
    assert owned_by_ledger(east) == {user_arn("alice")}
    shell.iam_port.remove_from_group("alice", GROUP)
    report = reconciler()
    assert report.applied.identities.status == "written" and report.applied.identities.refusals == ()
    assert user_arn("alice") not in mapped(east) and owned_by_ledger(east) == set()


def test_a_break_glass_entry_is_never_removed(reconciler, shell, east, write_config) -> None:
    from chalicelib.config import load_config  # noqa: PLC0415

    config = load_config(write_config(awsAuth={"breakGlassArns": [user_arn("alice")]}))
    reconciler(config=config)
    shell.iam_port.remove_from_group("alice", GROUP)
    report = reconciler(config=config)
    [refusal] = report.applied.identities.refusals
    assert refusal.reason == "protected-entry-changed" and user_arn("alice") in refusal.message
    assert user_arn("alice") in mapped(east)


def test_the_service_s_own_mapping_is_never_removed(reconciler, shell, east) -> None:
    role = reconciler.config.identities.roles[0].iam_role
    shell.arn = shell.iam_port.roles[role.lower()].arn  # the service runs as the configured role
    reconciler()
    shell.iam_port.delete_role(role)
    report = reconciler()
    assert [r.reason for r in report.applied.identities.refusals] == ["protected-entry-changed"]
    assert shell.arn in mapped(east)


def test_an_aws_auth_eks_would_misread_is_not_written_over(reconciler, east) -> None:
    east.config_maps.edit({"mapRoles": east.aws_auth.data["mapRoles"].replace("  username:", "\tusername:", 1)})
    before = east.aws_auth
    report = reconciler()
    assert [r.reason for r in report.applied.identities.refusals] == ["current-not-understood"]
    assert east.aws_auth == before and east.config_maps.writes == []


def test_an_unreadable_ledger_stops_every_aws_auth_write(reconciler, east) -> None:
    east.config_maps.seed("kube-system", "aws-auth", east.aws_auth.data, {LEDGER_ANNOTATION: "{not json"})
    report = reconciler()
    assert [r.reason for r in report.applied.identities.refusals] == ["ledger-unreadable"]
    assert east.config_maps.writes == []


def test_an_entry_someone_else_made_is_a_conflict_and_left_alone(reconciler, east) -> None:
    hand_made = f"- userarn: {user_arn('alice')}\n  username: alice-by-hand\n  groups: [ops]\n"
    east.config_maps.edit({"mapUsers": hand_made})
    report = reconciler()
    [conflict] = report.applied.identities.conflicts
    assert conflict.foreign.username == "alice-by-hand"
    [entry] = [e for e in read_aws_auth(east.aws_auth.data).entries("mapUsers") if e.arn == user_arn("alice")]
    assert entry.username == "alice-by-hand" and user_arn("alice") not in owned_by_ledger(east)
    assert reconciler.observer.counted("OwnershipConflicts") == 1


# Dry run


def test_a_dry_run_writes_nothing_on_any_fake_and_reports_the_plan(reconciler, shell, east) -> None:
    shell.iam_port.add_user("bob", tags={f"{TAG_PREFIX}{NS3}": PROFILE})
    east.bindings.put_binding(PROJECTS[0], "old", POD_READER, (("User", "gone"),), owned=True)
    aws_auth = east.aws_auth
    report = reconciler(dry_run=True)
    assert shell.writes() == {name: [] for name in shell.clusters}
    assert east.aws_auth == aws_auth
    write_calls = {"update", "create", "put", "delete"}
    assert not write_calls & set(east.config_maps.calls) and not write_calls & set(east.bindings.calls)
    assert report.applied.display_only and report.applied.identities.status == "planned"
    assert report.changed and {c.arn for c in report.applied.identities.changes} >= {user_arn("alice"), user_arn("bob")}
    verbs = sorted(type(a).__name__ for a in report.applied.bindings.done)
    assert verbs == ["CreateBinding", "CreateBinding", "CreateBinding", "DeleteBinding"]
    assert reconciler.observer.counted("BindingsCreated") == 0  # nothing was done, so nothing counted


def test_a_dry_run_attempts_no_write_even_where_every_write_would_fail(reconciler, east) -> None:
    for operation in ("update", "create", "put"):
        east.config_maps.fail(operation, "forbidden", always=True)
    for operation in ("create", "update", "delete"):
        east.bindings.fail(operation, "forbidden", always=True)
    report = reconciler(dry_run=True)
    assert report.applied.identities.status == "planned" and report.applied.bindings.problems == []
    assert [type(a) for a in report.plan.bindings] == [CreateBinding, CreateBinding]
    assert east.config_maps.raised == [] and east.bindings.raised == []


def test_a_full_reconcile_is_idempotent(reconciler, shell, east) -> None:
    shell.iam_port.add_user("bob", tags={f"{TAG_PREFIX}{NS3}": PROFILE})
    assert reconciler().changed
    writes = shell.writes()
    report = reconciler()
    assert not report.changed and report.plan.bindings == () and shell.writes() == writes


def test_selector_grants_follow_namespace_labels(reconciler, shell, east, write_config) -> None:
    from chalicelib.config import load_config  # noqa: PLC0415

    grant = {
        "kubernetesGroup": KUBERNETES_GROUP,
        "clusterRole": POD_READER,
        "namespaceSelector": {"matchLabels": {"team": "web"}},
    }
    config = load_config(write_config(namespaceGrants=[grant]))
    east.bindings.add_namespace("web-a", {"team": "web"})
    east.bindings.add_namespace("api-a", {"team": "api"})
    reconciler(config=config)
    assert {ns for ns, _ in east.bindings.owned()} == {"web-a"}
    east.bindings.namespace_labels["web-a"] = {"team": "api"}
    reconciler(config=config)
    assert east.bindings.owned() == {}


def test_fakes_keep_bindings_owned_only_when_labelled() -> None:
    """The one test of a fake itself: the label is what makes a binding ours, as in the adapter."""
    store = FakeBindings()
    store.add_namespace("ns")
    store.put_binding("ns", "theirs", "view", (("User", "x"),))
    store.put_binding("ns", "ours", "view", (("User", "x"),), owned=True)
    assert [b.name for b in store.list_owned()] == ["ours"]
