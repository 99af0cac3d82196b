"""``eks-iam-sync report`` on the fakes shows every path to a namespace, not only the service's own
(issue 23, item 1): a hand-made system:masters entry, a foreign ClusterRoleBinding and an access entry
holding AmazonEKSClusterAdminPolicy each appear as rows, counted in every namespace they reach; a
reader that may not list RBAC still gets a report that says what it could not see. Read-only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.entry.cli import main
from tests.functional.fakes import GROUP, KUBERNETES_GROUP, NS3, PROJECTS, ROLE, FakeShell, role_arn, user_arn
from tests.functional.test_report_command import write_calls

EVERY_NAMESPACE = {"default", "kube-system", *PROJECTS, NS3}  # seed_cluster's
CREATOR = role_arn("cluster-creator")


def report_json(capsys: pytest.CaptureFixture[str], config_path: Path) -> tuple[int, dict[str, Any]]:
    code = main(["report", "--config", str(config_path), "--format", "json", "--output", "-"])
    return code, json.loads(capsys.readouterr().out)


def reach(document: dict[str, Any], name: str, cluster: str) -> dict[str, list[str]]:
    """namespace -> ClusterRoles (or policies) of one principal in one cluster."""
    principal = next(p for p in document["principals"] if p["name"] == name)
    return {
        a["namespace"]: [r["name"] for r in a["clusterRoles"]] for a in principal["access"] if a["cluster"] == cluster
    }


def counted(document: dict[str, Any], cluster: str) -> dict[str, int]:
    return {n["namespace"]: n["principals"] for n in document["namespaces"] if n["cluster"] == cluster}


@pytest.fixture
def world(shell: FakeShell, config_path: Path, use_shell: Any, capsys: pytest.CaptureFixture[str]) -> FakeShell:
    """alice in the seed group, applied everywhere; then, outside eks-iam-sync: mallory mapped into
    system:masters in fn-east's aws-auth, a ClusterRoleBinding of the seed's Kubernetes group to
    cluster-admin there, and on fn-west (access entries) the cluster creator's entry with
    AmazonEKSClusterAdminPolicy."""
    shell.iam_port.add_user("alice", groups=[GROUP])
    west_entries = shell.clusters["fn-west"].with_access_entries(mode="API_AND_CONFIG_MAP")
    assert main(["apply", "--config", str(config_path)]) == 0
    capsys.readouterr()
    east = shell.clusters["fn-east"]
    masters = f"- userarn: {user_arn('mallory')}\n  username: mallory\n  groups: [system:masters]\n"
    east.config_maps.edit({"mapUsers": east.aws_auth.data["mapUsers"] + masters})
    assert east.rbac is not None
    east.rbac.bind_cluster_wide("platform-admins", "cluster-admin", (("Group", KUBERNETES_GROUP),))
    west_entries.put(CREATOR, CREATOR)
    west_entries.associate_by_hand(CREATOR, "AmazonEKSClusterAdminPolicy")
    return shell


def test_every_path_is_a_row_counted_in_every_namespace_it_reaches(
    world: FakeShell, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = write_calls(world)
    code, document = report_json(capsys, config_path)
    assert code == 0
    assert write_calls(world) == before, "the report attempted a write"

    # the hand-made system:masters entry: a row, every namespace of fn-east, granted outside
    assert reach(document, "mallory", "fn-east") == {ns: ["system:masters"] for ns in EVERY_NAMESPACE}
    mallory = next(p for p in document["principals"] if p["name"] == "mallory")
    assert mallory["clusterWide"] == ["fn-east"] and mallory["risk"] == "critical"
    assert all(a["grantedOutside"] for a in mallory["access"])

    # the foreign ClusterRoleBinding: alice (mapped by eks-iam-sync) reaches every namespace of fn-east
    alice_east = reach(document, "alice", "fn-east")
    assert set(alice_east) == EVERY_NAMESPACE and all("cluster-admin" in roles for roles in alice_east.values())
    crbs = {p["origin"]: p for p in document["paths"] if p["grant"] == "ClusterRoleBinding"}
    assert set(crbs) == {f"IAM group {GROUP}", f"IAM role {ROLE} (identities.roles)"}  # the group's two holders
    crb = crbs[f"IAM group {GROUP}"]
    assert (crb["roleBinding"], crb["namespace"], crb["grantedOutside"]) == ("platform-admins", "*", True)
    assert set(reach(document, "alice", "fn-west")) == set(PROJECTS)  # nothing foreign there

    # the access entry with AmazonEKSClusterAdminPolicy: a row reaching every namespace of fn-west
    assert reach(document, "cluster-creator", "fn-west") == {
        ns: ["AmazonEKSClusterAdminPolicy"] for ns in EVERY_NAMESPACE
    }
    creator = next(p for p in document["principals"] if p["name"] == "cluster-creator")
    assert creator["mechanisms"] == ["not managed"] and creator["risk"] == "critical"

    # counted per namespace: mallory, alice and the configured role everywhere in fn-east; the creator
    # everywhere in fn-west, alice and the role in the seed's namespaces there
    assert counted(document, "fn-east") == dict.fromkeys(EVERY_NAMESPACE, 3)
    assert counted(document, "fn-west") == {ns: 3 if ns in PROJECTS else 1 for ns in EVERY_NAMESPACE}
    risks = {(f["cluster"], f["principal"]) for f in document["findings"] if f["kind"] == "risk"}
    assert {("fn-east", user_arn("mallory")), ("fn-east", user_arn("alice")), ("fn-west", CREATOR)} <= risks


def test_a_reader_that_may_not_list_rbac_gets_the_rest_and_is_told(
    world: FakeShell, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    east = world.clusters["fn-east"]
    assert east.rbac is not None
    east.rbac.fail("snapshot", "forbidden", always=True)
    code, document = report_json(capsys, config_path)
    assert code == 0
    incomplete = [(f["cluster"], f["reason"]) for f in document["findings"] if f["kind"] == "incomplete"]
    assert incomplete == [("fn-east", "rbac-unread")]
    assert set(reach(document, "alice", "fn-east")) == set(PROJECTS)  # only what eks-iam-sync owns
    assert set(reach(document, "mallory", "fn-east")) == EVERY_NAMESPACE  # system:masters needs no RBAC read


def test_access_policies_the_reader_may_not_ask_for_are_one_finding(
    world: FakeShell, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = world.clusters["fn-west"].access_entries
    assert entries is not None
    entries.fail("associated_policies", "forbidden", always=True)
    code, document = report_json(capsys, config_path)
    assert code == 0
    unread = [(f["cluster"], f["principal"]) for f in document["findings"] if f["reason"] == "policies-unread"]
    assert unread == [("fn-west", "")]  # one, not one per entry
    assert entries.calls["associated_policies"] == 1
    assert "fn-west" not in next(p for p in document["principals"] if p["name"] == "cluster-creator")["clusterWide"]
