"""IAM Identity Center groups granted per person (issue 25), on fakes, through the handlers, on both
backends: alice (team-a) and bob (team-b) share the Developer permission set (one role per account,
three accounts) and each gets a RoleBinding for their own session's username in their own team's
namespace; Identity Store events re-read that person or every granted group; a failed read keeps
everything; a rename moves a binding, a deletion removes it, the deletion breaker holds a mass removal."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.entry.cli import main
from chalicelib.errors import SyncError
from chalicelib.model.ownership import GROUP_LABEL, PRINCIPAL_LABEL, sso_group_label, sso_user_label
from chalicelib.model.snapshot import IamRole
from tests.functional.fakes import SEED, FakeShell, role_arn
from tests.functional.test_identity_center import mapped
from tests.harness.cloudtrail import identity_store_event

STORE = "d-9067a1b2c3"
SSO_PATH = "/aws-reserved/sso.amazonaws.com/"
ACCOUNTS = ("123456789012", "210987654321", "333333333333")
SUFFIXES = ("0123456789abcdef", "fedcba9876543210", "00112233445566ff")
IDENTITIES = {**SEED["identities"], "permissionSets": [{"name": "Developer", "kubernetesGroups": ["developers"]}]}
GRANTS = [
    {"group": "team-a", "permissionSet": "Developer", "clusterRole": "edit", "namespaces": ["team-a"]},
    {"group": "team-b", "permissionSet": "Developer", "clusterRole": "edit", "namespaces": ["team-b"]},
]
ALICE, BOB = "sso:alice-example.com", "sso:bob-example.com"


def identity_center(**more: Any) -> dict[str, Any]:
    return {"identityStoreId": STORE, "region": "us-east-1", "groupGrants": GRANTS, **more}


@pytest.fixture
def config_path(write_config: Callable[..., Path], backend: str) -> Path:
    from tests.functional.fakes import CLUSTERS  # noqa: PLC0415

    return write_config(
        identities=IDENTITIES,
        identityCenter=identity_center(),
        cluster_settings={name: {"backend": backend} for name in CLUSTERS},
    )


@pytest.fixture
def people(shell: FakeShell) -> dict[str, str]:
    """The Developer permission set provisioned in three accounts; team-a holds alice, team-b bob."""
    for account, suffix in zip(ACCOUNTS, SUFFIXES, strict=True):
        name = f"AWSReservedSSO_Developer_{suffix}"
        shell.iam_port.roles[name.lower()] = IamRole(name, role_arn(name, SSO_PATH, account), {}, f"AROA{suffix}")
    for cluster in shell.clusters.values():
        for namespace in ("team-a", "team-b"):
            cluster.bindings.add_namespace(namespace, {"team": namespace})
        cluster.cluster_roles.roles["edit"] = ["pods: get, list, watch, create, delete"]
    store = shell.sso_store
    store.add_group("team-a")
    store.add_group("team-b")
    store.add_group("team-unrelated")
    return {
        "alice": store.add_user("alice@example.com", "team-a"),
        "bob": store.add_user("bob@example.com", "team-b"),
        "carol": store.add_user("carol@example.com", "team-unrelated"),
    }


def subjects(shell: FakeShell, namespace: str) -> dict[str, set[str]]:
    """Per cluster: the User subjects of the service's Identity Center bindings in ``namespace``."""
    return {
        name: {
            subject
            for (ns, _), binding in cluster.bindings.objects.items()
            if ns == namespace and binding.labels.get(GROUP_LABEL, "").startswith("ssogroup-")
            for kind, subject in binding.subjects
            if kind == "User"
        }
        for name, cluster in shell.clusters.items()
    }


def everywhere(shell: FakeShell, users: set[str]) -> dict[str, set[str]]:
    return dict.fromkeys(shell.clusters, users)


def event(name: str, **parameters: Any) -> dict[str, Any]:
    return identity_store_event(name, {"identityStoreId": STORE, **parameters})


def test_each_person_gets_their_own_namespace_inside_one_shared_permission_set(
    shell: FakeShell, lambdas: Any, backend: str, people: dict[str, str]
) -> None:
    lambdas.reconcile_all()
    assert subjects(shell, "team-a") == everywhere(shell, {ALICE})
    assert subjects(shell, "team-b") == everywhere(shell, {BOB})
    for cluster in shell.clusters.values():
        # the role's own mapping is shared: one per account's role, the person's session name as username
        roles = {arn: m for arn, m in mapped(cluster, backend).items() if "AWSReservedSSO_Developer_" in arn}
        assert len(roles) == 3 and {m[0] for m in roles.values()} == {"sso:{{SessionName}}"}
        binding = next(b for b in cluster.bindings.objects.values() if b.subjects == (("User", ALICE),))
        assert binding.labels[PRINCIPAL_LABEL] == sso_user_label(people["alice"])
        assert binding.labels[GROUP_LABEL] == sso_group_label("team-a")
        assert binding.cluster_role == "edit" and binding.namespace == "team-a"
    # user names, never display names: nobody is bound as "Display Alice"
    assert all("Display" not in s for c in subjects(shell, "team-a").values() for s in c)
    writes = {name: list(c.writes()) for name, c in shell.clusters.items()}
    lambdas.reconcile_all()  # and a second run changes nothing
    assert {name: list(c.writes()) for name, c in shell.clusters.items()} == writes


def test_removing_alice_from_team_a_removes_her_binding_on_the_event_and_bob_is_unaffected(
    shell: FakeShell, lambdas: Any, people: dict[str, str]
) -> None:
    lambdas.reconcile_all()
    writes_before = {name: len(c.bindings.writes) for name, c in shell.clusters.items()}
    shell.sso_store.remove_member("team-a", people["alice"])
    result = lambdas.send(event("DeleteGroupMembership", membershipId="m-1"))
    assert result["status"] == "reconciled"
    assert subjects(shell, "team-a") == everywhere(shell, set())
    assert subjects(shell, "team-b") == everywhere(shell, {BOB})
    for name, cluster in shell.clusters.items():
        assert [w.split(" ")[0] for w in cluster.bindings.writes[writes_before[name] :]] == ["delete"]


def test_adding_a_person_reads_only_that_person(shell: FakeShell, lambdas: Any, people: dict[str, str]) -> None:
    lambdas.reconcile_all()
    dave = shell.sso_store.add_user("dave@example.com", "team-b")
    shell.sso_store.calls.clear()
    calls = {name: c.bindings.calls.copy() for name, c in shell.clusters.items()}
    membership = {"groupId": shell.sso_store.gid("team-b"), "memberId": {"userId": dave}}
    assert lambdas.send(event("CreateGroupMembership", **membership))["status"] == "reconciled"
    assert subjects(shell, "team-b") == everywhere(shell, {BOB, "sso:dave-example.com"})
    # one person: their name and memberships, no group listed; their own bindings listed by label
    assert shell.sso_store.calls["member_ids"] == 0 and shell.sso_store.calls["member_of"] >= 1
    for name, cluster in shell.clusters.items():
        assert cluster.bindings.calls["list_owned"] - calls[name]["list_owned"] == 1


@pytest.mark.parametrize("operation", ["member_ids", "user_name", "group_id"])
def test_a_throttled_or_failing_identity_store_removes_nothing(
    shell: FakeShell, lambdas: Any, people: dict[str, str], operation: str
) -> None:
    shell.sso_store.add_user("erin@example.com", "team-a")  # team-a is not empty once alice leaves
    lambdas.reconcile_all()
    both = {ALICE, "sso:erin-example.com"}
    shell.sso_store.remove_member("team-a", people["alice"])
    shell.sso_store.fail(operation, "transient", always=True)
    with pytest.raises(SyncError, match="identity-store-unread"):
        lambdas.send(event("DeleteGroupMembership", membershipId="m-1"))
    with pytest.raises(SyncError, match="identity-store-unread"):
        lambdas.reconcile_all()
    assert subjects(shell, "team-a") == everywhere(shell, both)
    assert subjects(shell, "team-b") == everywhere(shell, {BOB})
    shell.sso_store.faults.clear()
    lambdas.reconcile_all()  # the store answers again: now she goes
    assert subjects(shell, "team-a") == everywhere(shell, {"sso:erin-example.com"})


@pytest.mark.parametrize("operation", ["member_of", "user_name", "group_id"])
def test_a_person_s_event_whose_read_fails_removes_nothing(
    shell: FakeShell, lambdas: Any, people: dict[str, str], operation: str
) -> None:
    lambdas.reconcile_all()
    shell.sso_store.remove_member("team-a", people["alice"])
    shell.sso_store.fail(operation, "timeout", always=True)
    with pytest.raises(SyncError, match="identity-store-unread"):
        lambdas.send(event("DeleteUser", userId=people["alice"]))
    assert subjects(shell, "team-a") == everywhere(shell, {ALICE})


def test_a_store_that_cannot_be_reached_as_its_role_removes_nothing(
    shell: FakeShell, lambdas: Any, write_config: Callable[..., Path], people: dict[str, str]
) -> None:
    lambdas.reconcile_all()
    role = "arn:aws:iam::111111111111:role/eks-iam-sync-identity-store"
    write_config(identities=IDENTITIES, identityCenter=identity_center(roleArn=role))
    shell.sso_store.remove_member("team-a", people["alice"])
    with pytest.raises(SyncError, match="identity-store-unread"):
        lambdas.reconcile_all()
    assert subjects(shell, "team-a") == everywhere(shell, {ALICE})
    shell.trusted_roles[role] = None  # the management account's role now trusts the function
    lambdas.reconcile_all()
    assert subjects(shell, "team-a") == everywhere(shell, set())
    assert (role, None) in shell.assumed


def test_a_renamed_person_s_binding_moves_and_a_deleted_one_s_goes(
    shell: FakeShell, lambdas: Any, people: dict[str, str]
) -> None:
    lambdas.reconcile_all()
    shell.sso_store.rename_user(people["alice"], "alice.smith@example.com")
    lambdas.send(event("UpdateUser", userId=people["alice"], operations=[{"attributePath": "userName"}]))
    assert subjects(shell, "team-a") == everywhere(shell, {"sso:alice.smith-example.com"})
    shell.sso_store.delete_user(people["bob"])
    lambdas.send(event("DeleteUser", userId=people["bob"]))
    assert subjects(shell, "team-b") == everywhere(shell, set())


def test_a_deleted_group_s_bindings_go_and_the_run_says_so(
    shell: FakeShell, lambdas: Any, people: dict[str, str]
) -> None:
    lambdas.reconcile_all()
    shell.sso_store.delete_group("team-b")
    with pytest.raises(SyncError, match="identity-center-group-missing"):
        lambdas.send(event("DeleteGroup", groupId="9067aaaa-0000-4000-8000-000000000000"))
    assert subjects(shell, "team-b") == everywhere(shell, set())
    assert subjects(shell, "team-a") == everywhere(shell, {ALICE})


def test_the_deletion_breaker_holds_a_mass_removal(shell: FakeShell, lambdas: Any, people: dict[str, str]) -> None:
    for name in ("erin", "frank", "grace"):
        shell.sso_store.add_user(f"{name}@example.com", "team-a")
    lambdas.reconcile_all()
    shell.sso_store.delete_group("team-a")  # 4 of 5 people would lose their access
    with pytest.raises(SyncError, match="identity-center-deletion-breaker"):
        lambdas.send(identity_store_event("PatchGroup", None, event_source="identitystore-scim.amazonaws.com"))
    assert len(next(iter(subjects(shell, "team-a").values()))) == 4
    assert subjects(shell, "team-b") == everywhere(shell, {BOB})


def test_apply_force_lifts_the_breaker_and_plan_shows_what_it_would_remove(
    shell: FakeShell,
    lambdas: Any,
    people: dict[str, str],
    use_shell: Any,
    config_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("erin", "frank", "grace"):
        shell.sso_store.add_user(f"{name}@example.com", "team-a")
    lambdas.reconcile_all()
    shell.sso_store.delete_group("team-a")
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", str(config_path))
    assert main(["plan"]) == 1  # the breaker: a failure, shown
    out = capsys.readouterr().out
    assert "identity-center-deletion-breaker" in out
    assert "check the Identity Store's group memberships, then apply with --force" in out and "check IAM" not in out
    assert len(next(iter(subjects(shell, "team-a").values()))) == 4
    assert main(["apply", "--force"]) == 1  # applied; still a failure: the configuration names a missing group
    assert subjects(shell, "team-a") == everywhere(shell, set())
    assert subjects(shell, "team-b") == everywhere(shell, {BOB})


def test_identity_store_events_for_another_store_or_no_grant_are_ignored(
    shell: FakeShell, lambdas: Any, people: dict[str, str]
) -> None:
    other = identity_store_event("DeleteUser", {"identityStoreId": "d-0000000000", "userId": people["alice"]})
    result = lambdas.send(other)
    assert result["status"] == "ignored" and result["reason"] == "not-configured"
    assert shell.sso_store.calls.total() == 0


def test_explain_reads_person_group_permission_set_role_binding_cluster_role(
    shell: FakeShell,
    lambdas: Any,
    people: dict[str, str],
    use_shell: Any,
    config_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lambdas.reconcile_all()
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", str(config_path))
    capsys.readouterr()
    assert main(["explain", "alice@example.com", "--cluster", "fn-east"]) == 0
    out = capsys.readouterr().out
    chain = [line.strip() for line in out.splitlines() if line.strip().startswith(("->", "alice@"))]
    assert chain[:3] == [
        f"alice@example.com (Identity Center user {people['alice']})",
        "-> Identity Center group 'team-a' (identityCenter.groupGrants[0])",
        f"-> permission set Developer, signed in as {ALICE}",
    ]
    roles = [line for line in chain if line.startswith("-> role ")]
    assert len(roles) == 3 and all(line.endswith("in place now: yes") for line in roles)
    assert chain[-1] == f"-> RoleBinding team-a/eks-iam-sync:sso:team-a:{ALICE}:edit: User {ALICE} -> ClusterRole edit"
    assert "can pods: get, list, watch, create, delete" in out and "team-b" not in out
    # the same person, asked by their session's ARN or their username, in JSON
    session = f"arn:aws:sts::{ACCOUNTS[1]}:assumed-role/AWSReservedSSO_Developer_{SUFFIXES[1]}/bob@example.com"
    assert main(["explain", session, "--cluster", "fn-east", "--output", "json"]) == 0
    [bob] = json.loads(capsys.readouterr().out)["clusters"]["fn-east"]["identityCenter"]
    assert (bob["group"], bob["permissionSet"], bob["clusterRole"]) == ("team-b", "Developer", "edit")
    assert bob["roleBinding"]["namespace"] == "team-b" and bob["roleBinding"]["username"] == BOB
    assert main(["explain", BOB, "--cluster", "fn-east"]) == 0 and "team-b" in capsys.readouterr().out


def test_the_report_reaches_each_person_through_the_permission_set_s_roles(
    shell: FakeShell,
    lambdas: Any,
    people: dict[str, str],
    use_shell: Any,
    config_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lambdas.reconcile_all()
    capsys.readouterr()
    assert main(["report", "--config", str(config_path), "--format", "json", "--output", "-"]) == 0
    report = json.loads(capsys.readouterr().out)
    paths = {p["id"]: p for p in report["paths"] if p["cluster"] == "fn-east"}
    [alice] = [i for i, p in paths.items() if any(ALICE in step["what"] for step in p["chain"])]
    chain = [step["what"] for step in paths[alice]["chain"]]
    assert chain[0] == f"Kubernetes user {ALICE}" and chain[1] in ("aws-auth mapRoles entry", "access entry")
    assert "Identity Center group 'team-a', permission set Developer" in chain[3] and chain[3].startswith("team-a/")
    assert chain[4:] == ["edit", "pods: get, list, watch, create, delete"]
    # each of the permission set's three roles reaches team-a through her binding (and team-b through bob's)
    roles = [p for p in report["principals"] if p["name"].startswith("AWSReservedSSO_Developer_")]
    assert len(roles) == 3
    for role in roles:
        reach = {a["namespace"]: a["paths"] for a in role["access"] if a["cluster"] == "fn-east"}
        assert set(reach) == {"team-a", "team-b"} and alice in reach["team-a"]


def test_uninstall_removes_identity_center_bindings_too_and_dropping_the_key_revokes_them(
    shell: FakeShell,
    lambdas: Any,
    people: dict[str, str],
    use_shell: Any,
    config_path: Path,
    write_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lambdas.reconcile_all()
    reads = shell.sso_store.calls["group_id"]
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", str(config_path))
    assert main(["uninstall", "--cluster", "fn-east"]) == 0
    assert subjects(shell, "team-a")["fn-east"] == set() and subjects(shell, "team-a")["fn-west"] == {ALICE}
    # identityCenter taken out of the configuration: its bindings are no longer desired, and taking
    # everyone's at once is the breaker's to hold until an operator forces it
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", str(write_config(identities=IDENTITIES)))
    with pytest.raises(SyncError, match="identity-center-deletion-breaker"):
        lambdas.reconcile_all()
    assert subjects(shell, "team-a")["fn-west"] == {ALICE}
    assert main(["apply", "--force"]) == 0
    assert subjects(shell, "team-a") == everywhere(shell, set()) and subjects(shell, "team-b") == everywhere(
        shell, set()
    )
    assert shell.sso_store.calls["group_id"] == reads  # Identity Center no longer read by any of them
