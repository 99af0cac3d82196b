"""The access-entries identity backend on fakes: ``backend: auto`` follows the authentication mode,
entries are created, updated, recreated and deleted for the principals the service owns (by tag)
and nobody else's, EKS refusals and transient failures are reported like RoleBinding ones, a dry run
writes nothing, and a backend the cluster cannot honour is a permanent failure of that cluster only."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.config import load_config
from chalicelib.errors import PermanentError, TransientError
from chalicelib.model.ownership import ENTRY_PRINCIPAL_ID_TAG, ENTRY_SOURCE_TAG, MANAGED_BY_LABEL, MANAGED_BY_VALUE
from chalicelib.run import runner
from chalicelib.run.reconcile import Options
from chalicelib.run.results import as_json, as_text, succeeded
from tests.functional.fakes import (
    GROUP,
    KUBERNETES_GROUP,
    NODE_ROLE,
    ROLE,
    FakeAccessEntries,
    FakeShell,
    role_arn,
    user_arn,
)


@pytest.fixture
def west(shell: FakeShell) -> FakeAccessEntries:
    shell.iam_port.add_user("alice", groups=[GROUP])
    return shell.clusters["fn-west"].with_access_entries("API")


def principals(entries: FakeAccessEntries) -> set[str]:
    return {e.principal_arn for e in entries.entries.values()}


def test_a_cluster_in_api_mode_maps_through_access_entries_and_leaves_aws_auth(reconciler, shell, west) -> None:
    aws_auth = shell.clusters["fn-west"].aws_auth
    report = reconciler("fn-west")
    assert report.applied.identities.status == "written"
    assert {c.key for c in report.applied.identities.changes} == {"accessEntry"}
    entry = west.entries[user_arn("alice")]
    assert (entry.username, entry.kubernetes_groups) == ("eks-iam-sync:user:alice", (KUBERNETES_GROUP,))
    assert entry.tags[MANAGED_BY_LABEL] == MANAGED_BY_VALUE
    assert entry.tags[ENTRY_SOURCE_TAG] == f"identities.groups[{GROUP}]"
    assert entry.tags[ENTRY_PRINCIPAL_ID_TAG] == shell.iam_port.users["alice"].id
    assert shell.clusters["fn-west"].config_maps.writes == [] and shell.clusters["fn-west"].aws_auth == aws_auth
    assert len(shell.clusters["fn-west"].bindings.owned()) == 2  # RoleBindings do not depend on the backend


def test_only_owned_entries_are_deleted(reconciler, shell, west) -> None:
    west.put(user_arn("by-console"), "by-console", ("ops",))
    reconciler("fn-west")
    shell.iam_port.remove_from_group("alice", GROUP)
    report = reconciler("fn-west")
    assert [(c.action, c.arn) for c in report.applied.identities.changes] == [("remove", user_arn("alice"))]
    assert principals(west) == {NODE_ROLE, user_arn("by-console"), role_arn(ROLE)}


def test_deleting_an_entry_someone_already_deleted_is_fine(reconciler, shell, west) -> None:
    reconciler("fn-west")
    shell.iam_port.remove_from_group("alice", GROUP)
    west.fail("delete", "not-found", target=user_arn("alice"))  # gone between describe and delete
    report = reconciler("fn-west")
    assert report.applied.identities.status == "written" and report.applied.identities.refusals == ()
    assert [(c.action, c.arn) for c in report.applied.identities.changes] == [("remove", user_arn("alice"))]


def test_someone_else_s_entry_for_a_desired_principal_is_a_conflict(reconciler, west) -> None:
    west.put(user_arn("alice"), "alice-by-hand", ("ops",))
    report = reconciler("fn-west")
    [conflict] = report.applied.identities.conflicts
    assert conflict.foreign.username == "alice-by-hand"
    assert west.entries[user_arn("alice")].username == "alice-by-hand"
    assert west.writes == [f"create {role_arn(ROLE)}"]  # the configured role, not alice


def test_a_recreated_principal_gets_its_entry_recreated(reconciler, shell, west) -> None:
    reconciler("fn-west")
    shell.iam_port.delete_user("alice")
    shell.iam_port.add_user("alice", groups=[GROUP])  # same ARN, new unique id
    report = reconciler("fn-west")
    assert [c.action for c in report.applied.identities.changes] == ["recreate"]
    assert west.writes[-2:] == [f"delete {user_arn('alice')}", f"create {user_arn('alice')}"]
    assert west.entries[user_arn("alice")].tags[ENTRY_PRINCIPAL_ID_TAG] == shell.iam_port.users["alice"].id


def test_an_entry_edited_by_hand_is_updated(reconciler, west) -> None:
    reconciler("fn-west")
    west.entries[user_arn("alice")] = replace(west.entries[user_arn("alice")], kubernetes_groups=("admins",))
    report = reconciler("fn-west")
    assert [c.action for c in report.applied.identities.changes] == ["update"]
    assert west.entries[user_arn("alice")].kubernetes_groups == (KUBERNETES_GROUP,)


def test_a_refused_create_is_reported_and_the_rest_written(reconciler, shell, west) -> None:
    shell.iam_port.add_user("bob", groups=[GROUP])
    west.fail("create", "forbidden", target=user_arn("alice"))
    report = reconciler("fn-west")
    [refusal] = report.applied.identities.refusals
    assert refusal.reason == "eks-forbidden" and "403" in refusal.message
    assert user_arn("bob") in principals(west) and user_arn("alice") not in principals(west)
    assert not succeeded(report)


def test_a_transient_failure_is_raised_after_the_other_entries_were_written(reconciler, shell, west) -> None:
    shell.iam_port.add_user("bob", groups=[GROUP])
    west.fail("create", "transient", target=user_arn("alice"))
    with pytest.raises(TransientError, match="1 access-entry writes failed"):
        reconciler("fn-west")
    assert user_arn("bob") in principals(west)


def test_a_dry_run_writes_no_access_entry(reconciler, shell, west) -> None:
    report = reconciler("fn-west", dry_run=True)
    assert report.applied.identities.status == "planned" and report.changed
    assert shell.writes()["fn-west"] == [] and principals(west) == {NODE_ROLE}
    assert {c.arn for c in report.applied.identities.changes} == {user_arn("alice"), role_arn(ROLE)}


def test_an_event_maps_each_cluster_through_its_own_backend(shell, lambdas, west) -> None:
    result = lambdas.event("AddUserToGroup", groupName=GROUP, userName="alice")
    assert {c["key"] for c in result["clusters"]["fn-east"]["identities"]["changes"]} == {"mapUsers"}
    assert {c["key"] for c in result["clusters"]["fn-west"]["identities"]["changes"]} == {"accessEntry"}
    assert user_arn("alice") in shell.clusters["fn-east"].aws_auth.data["mapUsers"]
    assert user_arn("alice") in principals(west) and shell.clusters["fn-west"].config_maps.writes == []


def test_the_report_names_the_backend_used(reconciler, west) -> None:
    report = reconciler("fn-west")
    assert report.backend == "accessEntries"
    assert as_json(report)["backend"] == "accessEntries"
    assert "  access entries: written" in as_text("fn-west", report)


def test_a_backend_the_cluster_cannot_honour_fails_that_cluster_only(runtime, shell, west, write_config) -> None:
    config = load_config(write_config(cluster_settings={"fn-west": {"backend": "configMap"}}))
    results = runner.reconcile_clusters(
        config, runner.connect(config, shell, runtime), shell.iam_port.full_snapshot(), None, Options(), runtime
    )
    failed = as_json(results["fn-west"])
    assert failed["status"] == "failed" and failed["errorKind"] == "permanent"
    assert "EKS ignores aws-auth" in failed["error"]
    assert as_json(results["fn-east"])["status"] == "changes"
    assert principals(west) == {NODE_ROLE} and shell.clusters["fn-west"].config_maps.writes == []


def test_access_entries_out_of_reach_are_a_permanent_failure(reconciler, shell) -> None:
    shell.clusters["fn-west"].authentication_mode = "API"  # described, but no EKS client for the entries
    with pytest.raises(PermanentError, match="access-entry API is not reachable"):
        reconciler("fn-west")
