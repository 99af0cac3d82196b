"""The Lambda handlers of app.py through chalice.test.Client, on fakes: IAM events map and unmap users,
tag grants create and delete RoleBindings, irrelevant and malformed events touch nothing, a
duplicate writes nothing, the schedule repairs drift, and DeleteGroup finds former members in the
ownership ledger."""

from __future__ import annotations

import pytest

from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.errors import PermanentError, TransientError
from chalicelib.model.bindings import binding_name
from chalicelib.model.identities import Entry
from chalicelib.model.ownership import LEDGER_ANNOTATION
from tests.functional.fakes import (
    CLUSTERS,
    GROUP,
    KUBERNETES_GROUP,
    NS3,
    POD_READER,
    PROFILE,
    PROJECTS,
    TAG_PREFIX,
    FakeCluster,
    FakeShell,
    user_arn,
)
from tests.harness.cloudtrail import iam_event

TAG = f"{TAG_PREFIX}{NS3}"
GROUP_BINDING = binding_name("group", KUBERNETES_GROUP, POD_READER)


def users(cluster: FakeCluster) -> dict[str, Entry]:
    return {e.arn: e for e in read_aws_auth(cluster.aws_auth.data).entries("mapUsers")}


def ledger(cluster: FakeCluster) -> Ledger:
    return Ledger.parse(cluster.aws_auth.annotations.get(LEDGER_ANNOTATION))


def test_add_user_to_group_maps_the_user_in_every_cluster(shell: FakeShell, lambdas, iam_reads_per_run: int) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    event = iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "alice"})
    result = lambdas.send(event)
    assert result["status"] == "reconciled" and result["eventId"] == event["detail"]["eventID"]
    assert set(result["clusters"]) == set(CLUSTERS)
    for name, cluster in shell.clusters.items():
        assert result["clusters"][name]["identities"]["status"] == "written"
        assert users(cluster)[user_arn("alice")] == Entry(
            user_arn("alice"), "eks-iam-sync:user:alice", (KUBERNETES_GROUP,)
        )
        record = ledger(cluster).records[user_arn("alice").lower()]
        assert record.source == f"identities.groups[{GROUP}]"
        assert "system:nodes" in cluster.aws_auth.data["mapRoles"]  # the node role is left alone
        # no full run came first: the event completes the access it grants, the RoleBindings of the
        # namespace grants of alice's Kubernetes group, listed by that group's label and nothing else
        assert set(cluster.bindings.owned()) == {(ns, GROUP_BINDING) for ns in PROJECTS}
        assert cluster.bindings.calls == {"list_owned_of_groups": 1, "create": len(PROJECTS)}
        assert result["clusters"][name]["roleBindingsDone"] == len(PROJECTS)
    # an event reads only the principals it names
    assert shell.iam_port.calls == {"scoped_snapshot": iam_reads_per_run}
    assert shell.iam_port.requests == [(("alice",), ())] * iam_reads_per_run


def test_remove_user_from_group_unmaps_the_user(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    shell.iam_port.add_user("bob", groups=[GROUP])
    lambdas.reconcile_all()  # the group's RoleBindings come from full runs
    lambdas.event("AddUserToGroup", groupName=GROUP, userName="alice")
    lambdas.event("AddUserToGroup", groupName=GROUP, userName="bob")
    shell.iam_port.remove_from_group("alice", GROUP)
    result = lambdas.event("RemoveUserFromGroup", groupName=GROUP, userName="alice")
    for name, cluster in shell.clusters.items():
        [change] = result["clusters"][name]["identities"]["changes"]
        assert change["action"] == "remove" and change["arn"] == user_arn("alice")
        assert set(users(cluster)) == {user_arn("bob")}
        assert not ledger(cluster).owns(user_arn("alice")) and ledger(cluster).owns(user_arn("bob"))
        assert len(cluster.bindings.owned()) == 2  # the group's bindings stay: bob is still in it


def test_tag_user_creates_a_role_binding_for_the_tagged_namespace(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("bob", tags={TAG: PROFILE})
    result = lambdas.event("TagUser", userName="bob", tags=[{"key": TAG, "value": PROFILE}])
    name = binding_name("tag", "eks-iam-sync:user:bob", PROFILE)
    for cluster_name, cluster in shell.clusters.items():
        binding = cluster.bindings.owned()[(NS3, name)]
        assert binding.cluster_role == POD_READER and binding.subjects == (("User", "eks-iam-sync:user:bob"),)
        assert binding.annotations["eks-iam-sync.io/principal"] == user_arn("bob")
        assert binding.annotations["eks-iam-sync.io/source"] == f"tag {TAG}={PROFILE}"
        assert users(cluster)[user_arn("bob")] == Entry(user_arn("bob"), "eks-iam-sync:user:bob", ())
        actions = {(b["action"], b["namespace"]) for b in result["clusters"][cluster_name]["roleBindings"]}
        assert ("create", NS3) in actions


def test_untag_user_deletes_the_role_binding_and_the_mapping(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("bob", tags={TAG: PROFILE})
    lambdas.event("TagUser", userName="bob", tags=[{"key": TAG, "value": PROFILE}])
    shell.iam_port.untag_user("bob", TAG)
    lambdas.event("UntagUser", userName="bob", tagKeys=[TAG])
    for cluster in shell.clusters.values():
        assert (NS3, binding_name("tag", "eks-iam-sync:user:bob", PROFILE)) not in cluster.bindings.objects
        assert user_arn("bob") not in users(cluster)
        assert cluster.bindings.writes[-1] == f"delete {NS3}/{binding_name('tag', 'eks-iam-sync:user:bob', PROFILE)}"


def test_a_renamed_user_is_remapped_under_the_new_arn(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    lambdas.event("AddUserToGroup", groupName=GROUP, userName="alice")
    shell.iam_port.delete_user("alice")
    shell.iam_port.add_user("alice-renamed", groups=[GROUP], path="/moved/")
    lambdas.event("UpdateUser", userName="alice", newUserName="alice-renamed", newPath="/moved/")
    for cluster in shell.clusters.values():
        assert set(users(cluster)) == {user_arn("alice-renamed", "/moved/")}
        assert users(cluster)[user_arn("alice-renamed", "/moved/")].username == "eks-iam-sync:user:alice-renamed"


def test_delete_user_revokes_the_mapping_and_the_tag_bindings(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("bob", groups=[GROUP], tags={TAG: PROFILE})
    lambdas.reconcile_all()
    lambdas.event("TagUser", userName="bob", tags=[{"key": TAG, "value": PROFILE}])
    shell.iam_port.delete_user("bob")
    lambdas.event("DeleteUser", userName="bob")
    for cluster in shell.clusters.values():
        assert user_arn("bob") not in users(cluster) and not ledger(cluster).owns(user_arn("bob"))
        assert set(cluster.bindings.owned()) == {(ns, GROUP_BINDING) for ns in PROJECTS}


@pytest.mark.parametrize(
    ("name", "params", "reason"),
    [
        ("AddUserToGroup", {"groupName": "some-other-group", "userName": "alice"}, "not-configured"),
        ("TagUser", {"userName": "alice", "tags": [{"key": "team", "value": "web"}]}, "not-configured"),
        ("CreateRole", {"roleName": "unrelated-role"}, "not-configured"),
        ("CreateUser", {"userName": "alice"}, "not-configured"),
        ("CreateAccessKey", {"userName": "alice"}, "unsupported-event"),
    ],
)
def test_an_irrelevant_event_is_ignored_without_touching_any_port(shell: FakeShell, lambdas, name, params, reason):
    result = lambdas.event(name, **params)
    assert result["status"] == "ignored" and result["reason"] == reason
    assert lambdas.shells_made == [] and shell.port_calls() == 0


def test_a_failed_api_call_is_ignored(shell: FakeShell, lambdas) -> None:
    event = iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "alice"}, error_code="AccessDenied")
    assert lambdas.send(event)["reason"] == "error-code"
    assert shell.port_calls() == 0


@pytest.mark.parametrize(
    "spoil",
    [
        lambda e: e["detail"]["requestParameters"].pop("userName"),
        lambda e: e["detail"]["requestParameters"].update(userName=["not", "a", "name"]),
        lambda e: e["detail"].pop("eventName"),
        lambda e: e.update(detail="not an object"),
        lambda e: e["detail"].update(eventID=""),
    ],
    ids=["no-user", "user-not-a-string", "no-event-name", "detail-not-an-object", "empty-event-id"],
)
def test_a_malformed_event_is_reported_and_touches_nothing(shell: FakeShell, lambdas, spoil) -> None:
    event = iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "alice"})
    spoil(event)
    result = lambdas.send(event)
    assert result["status"] == "ignored" and result["reason"] == "malformed"
    detail = event["detail"]
    assert result["eventId"] == (detail["eventID"] if isinstance(detail, dict) and detail["eventID"] else event["id"])
    assert shell.port_calls() == 0


def test_a_duplicate_event_writes_nothing(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    event = iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "alice"})
    lambdas.send(event)
    before = shell.writes()
    versions = {name: c.aws_auth.resource_version for name, c in shell.clusters.items()}
    again = lambdas.send(event)
    assert shell.writes() == before
    assert {name: c.aws_auth.resource_version for name, c in shell.clusters.items()} == versions
    assert {r["status"] for r in again["clusters"].values()} == {"no-changes"}


def test_another_event_that_changes_nothing_writes_nothing(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    first = lambdas.event("AddUserToGroup", groupName=GROUP, userName="alice")
    before = shell.writes()
    lambdas.event("AddUserToGroup", groupName=GROUP, userName="alice")  # a new eventID, the same truth
    assert shell.writes() == before
    assert first["clusters"]["fn-east"]["identities"]["changes"]  # the first event made the change


def test_a_stale_event_follows_iam_not_the_event(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("alice")  # added and removed again before the event is delivered
    result = lambdas.event("AddUserToGroup", groupName=GROUP, userName="alice")
    for name, cluster in shell.clusters.items():
        assert result["clusters"][name]["identities"]["status"] == "unchanged"
        assert user_arn("alice") not in users(cluster)


def test_reconcile_all_repairs_drift_and_leaves_foreign_entries(
    shell: FakeShell, lambdas, iam_reads_per_run: int
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    assert lambdas.reconcile_all()["status"] == "reconciled"
    east = shell.clusters["fn-east"]
    foreign = "- userarn: arn:aws:iam::123456789012:user/by-hand\n  username: by-hand\n  groups: [ops]\n"
    hijacked = east.aws_auth.data["mapUsers"].replace('username: "eks-iam-sync:user:alice"', 'username: "hijacked"')
    assert hijacked != east.aws_auth.data["mapUsers"]
    east.config_maps.edit({"mapUsers": hijacked + foreign})
    east.bindings.remove(PROJECTS[1], GROUP_BINDING)

    result = lambdas.reconcile_all()
    assert result["clusters"]["fn-east"]["status"] == "changes"
    assert result["clusters"]["fn-west"]["status"] == "no-changes"
    repaired = users(east)
    assert repaired[user_arn("alice")].username == "eks-iam-sync:user:alice"
    assert repaired["arn:aws:iam::123456789012:user/by-hand"].groups == ("ops",)
    assert (PROJECTS[1], GROUP_BINDING) in east.bindings.owned()
    assert shell.iam_port.calls["full_snapshot"] == 2 * iam_reads_per_run


def test_delete_group_uses_the_ledger_to_find_former_members(shell: FakeShell, lambdas) -> None:
    iam = shell.iam_port
    for name in ("alice", "bob"):
        iam.add_user(name, groups=[GROUP])
    for name in ("carol", "dave", "erin"):  # mapped for other reasons: the removals stay a minority
        iam.add_user(name, tags={f"{TAG_PREFIX}{PROJECTS[0]}": PROFILE})
    lambdas.reconcile_all()
    iam.delete_group(GROUP)  # IAM can no longer say who was in it

    result = lambdas.event("DeleteGroup", groupName=GROUP)
    assert sorted(iam.requests[-1][0]) == ["alice", "bob"]  # whom the ledger remembers, nobody else
    for name, cluster in shell.clusters.items():
        removed = {c["arn"] for c in result["clusters"][name]["identities"]["changes"]}
        assert removed == {user_arn("alice"), user_arn("bob")}
        assert set(users(cluster)) == {user_arn(n) for n in ("carol", "dave", "erin")}


def test_delete_group_of_most_owned_entries_trips_the_deletion_breaker(shell: FakeShell, lambdas) -> None:
    for name in ("alice", "bob"):
        shell.iam_port.add_user(name, groups=[GROUP])
    lambdas.reconcile_all()
    shell.iam_port.delete_group(GROUP)
    written = shell.writes()
    # A refusal is a failure of the invocation (Errors metric, DLQ), named per cluster, never a retryable one.
    with pytest.raises(PermanentError) as raised:
        lambdas.event("DeleteGroup", groupName=GROUP)
    assert not isinstance(raised.value, TransientError)
    for name, cluster in shell.clusters.items():
        assert f"cluster {name}: refused (deletion-breaker)" in str(raised.value)
        assert set(users(cluster)) == {user_arn("alice"), user_arn("bob")}
    assert shell.writes() == written


def test_reconcile_all_raises_for_a_retry_when_a_cluster_is_unreachable(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    shell.fail("cluster", "timeout", target="fn-east", always=True)
    with pytest.raises(TransientError, match="fn-east"):
        lambdas.reconcile_all()
    assert user_arn("alice") in users(shell.clusters["fn-west"])  # the other cluster was still reconciled
    assert shell.clusters["fn-east"].writes() == []


def test_a_cluster_is_not_started_without_time_for_it(shell: FakeShell, lambdas) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    lambdas.remaining_ms = 3_000  # far under one cluster's budget of bounded requests
    with pytest.raises(TransientError, match="not tried"):
        lambdas.event("AddUserToGroup", groupName=GROUP, userName="alice")
    assert shell.writes() == {name: [] for name in shell.clusters}
    lambdas.remaining_ms = 120_000  # the retry, with the whole timeout ahead of it
    assert lambdas.event("AddUserToGroup", groupName=GROUP, userName="alice")["status"] == "reconciled"


def test_a_tag_event_lists_only_its_principal_s_bindings_and_old_bindings_get_the_label_on_a_full_run(
    shell: FakeShell, lambdas
) -> None:
    from chalicelib.model.ownership import PRINCIPAL_LABEL, principal_label  # noqa: PLC0415

    shell.iam_port.add_user("bob", tags={TAG: PROFILE})
    shell.iam_port.add_user("carol", tags={TAG: PROFILE})
    lambdas.reconcile_all()
    east = shell.clusters["fn-east"]
    bob_binding = east.bindings.owned()[(NS3, binding_name("tag", "eks-iam-sync:user:bob", PROFILE))]
    assert bob_binding.labels[PRINCIPAL_LABEL] == principal_label("user", "bob")
    del bob_binding.labels[PRINCIPAL_LABEL]  # as made by the previous release
    lambdas.reconcile_all()
    assert east.bindings.owned()[(NS3, binding_name("tag", "eks-iam-sync:user:bob", PROFILE))].labels[PRINCIPAL_LABEL]

    shell.iam_port.untag_user("bob", TAG)
    listed_before = east.bindings.calls["list_owned"]
    lambdas.event("UntagUser", userName="bob", tagKeys=[TAG])
    assert east.bindings.calls["list_owned"] == listed_before + 1
    owned = east.bindings.owned()
    assert (NS3, binding_name("tag", "eks-iam-sync:user:bob", PROFILE)) not in owned
    assert (NS3, binding_name("tag", "eks-iam-sync:user:carol", PROFILE)) in owned
