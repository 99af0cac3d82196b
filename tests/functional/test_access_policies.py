"""EKS access policies as grants, on fakes: an owned entry's associations follow its rules (one per
policy, namespaces merged, cluster scope wins), a new scope is ONE AssociateAccessPolicy and never a
disassociate first, a policy no rule names is disassociated, foreign and node entries' associations
are never read nor changed, EKS's propagation is waited out, the deletion breaker counts
associations, and an aws-auth cluster gets the RBAC equivalents as RoleBindings."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import Config, load_config
from chalicelib.errors import Rejected
from chalicelib.model.ownership import ENTRY_POLICIES_TAG
from chalicelib.model.ports import AssociatedPolicy
from chalicelib.run.results import as_text
from tests.functional.conftest import Reconciler
from tests.functional.fakes import (
    GROUP,
    KUBERNETES_GROUP,
    NODE_ROLE,
    NS3,
    PROJECTS,
    SEED,
    TAG_PREFIX,
    FakeAccessEntries,
    FakeShell,
    user_arn,
)

VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
EDIT = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
A, B = PROJECTS


def identities(*rules: dict[str, Any], groups: tuple[str, ...] = (KUBERNETES_GROUP,)) -> dict[str, Any]:
    """The seed's identities with these access policies on the IAM group's rule."""
    found = copy.deepcopy(SEED["identities"])
    found["groups"][0]["accessPolicies"] = list(rules)
    found["groups"][0]["kubernetesGroups"] = list(groups)
    return dict(found)


@pytest.fixture
def configure(shell: FakeShell, write_config: Callable[..., Path]) -> Callable[..., Config]:
    def configure(*rules: dict[str, Any], **overrides: Any) -> Config:
        return load_config(write_config(identities=identities(*rules), **overrides))

    return configure


@pytest.fixture
def west(shell: FakeShell) -> FakeAccessEntries:
    shell.iam_port.add_user("alice", groups=[GROUP])
    return shell.clusters["fn-west"].with_access_entries("API")


def associations(entries: FakeAccessEntries, name: str = "alice") -> dict[str, tuple[str, tuple[str, ...]]]:
    return {p.policy_arn: (p.scope, p.namespaces) for p in entries.policies.get(user_arn(name).lower(), [])}


def policy_writes(entries: FakeAccessEntries) -> list[str]:
    return [w for w in entries.writes if w.startswith(("associate", "disassociate"))]


def test_a_rule_s_policy_is_associated_with_its_namespaces(reconciler: Reconciler, configure, west) -> None:
    config = configure({"policy": "AmazonEKSViewPolicy", "namespaces": [A]})
    report = reconciler("fn-west", config=config)
    assert associations(west) == {VIEW: ("namespace", (A,))}
    assert west.entries[user_arn("alice")].tags[ENTRY_POLICIES_TAG] == "View"
    assert f"+ accessPolicy {user_arn('alice')}: AmazonEKSViewPolicy namespaces ['{A}']" in "\n".join(
        as_text("fn-west", report)
    )
    west.writes.clear()
    again = reconciler("fn-west", config=config)
    assert west.writes == [] and not again.changed


def test_a_new_scope_is_one_associate_and_never_a_disassociate(reconciler: Reconciler, configure, west) -> None:
    reconciler("fn-west", config=configure({"policy": "AmazonEKSViewPolicy", "namespaces": [A]}))
    west.writes.clear()
    report = reconciler("fn-west", config=configure({"policy": "AmazonEKSViewPolicy", "namespaces": [A, B]}))
    assert west.writes == [f"associate {user_arn('alice')} AmazonEKSViewPolicy {[A, B]}"]
    assert associations(west) == {VIEW: ("namespace", (A, B))}
    [change] = report.applied.identities.changes
    assert (change.action, change.before and change.before.groups, change.after and change.after.groups) == (
        "update",
        (A,),
        (A, B),
    )


def test_rules_merge_per_policy_and_cluster_scope_wins(reconciler: Reconciler, shell, configure, west) -> None:
    config = configure(
        {"policy": "AmazonEKSViewPolicy", "namespaces": [B]},
        {"policy": "AmazonEKSViewPolicy", "namespaces": [A, "team-a-*"]},
        {"policy": "AmazonEKSEditPolicy", "namespaces": [A]},
    )
    reconciler("fn-west", config=config)
    assert associations(west) == {VIEW: ("namespace", (A, B, "team-a-*")), EDIT: ("namespace", (A,))}
    wide = configure({"policy": "AmazonEKSViewPolicy"}, {"policy": "AmazonEKSViewPolicy", "namespaces": [A]})
    reconciler("fn-west", config=wide)
    assert associations(west) == {VIEW: ("cluster", ())}  # Edit is named by no rule any more


def test_a_policy_no_rule_names_is_disassociated(reconciler: Reconciler, configure, west) -> None:
    reconciler("fn-west", config=configure({"policy": "AmazonEKSViewPolicy", "namespaces": [A]}))
    west.writes.clear()
    reconciler("fn-west", config=configure())
    assert west.writes == [f"disassociate {user_arn('alice')} AmazonEKSViewPolicy", f"tag {user_arn('alice')}"]
    assert associations(west) == {} and west.entries[user_arn("alice")].tags[ENTRY_POLICIES_TAG] == ""
    west.writes.clear()
    west.calls.clear()
    reconciler("fn-west", config=configure())
    assert west.writes == [] and west.calls["associated_policies"] == 0  # the record says: none left


def test_foreign_and_node_entries_associations_are_never_read_nor_changed(
    reconciler: Reconciler, configure, west
) -> None:
    west.put(user_arn("by-console"), "by-console")
    west.associate_by_hand(user_arn("by-console"), "AmazonEKSClusterAdminPolicy")
    west.associate_by_hand(NODE_ROLE, "AmazonEKSAutoNodePolicy")
    before = copy.deepcopy(west.policies)
    for principal in (user_arn("by-console"), NODE_ROLE):
        west.fail(
            "associated_policies", Rejected("read of a foreign entry's associations"), always=True, target=principal
        )
    config = configure({"policy": "AmazonEKSViewPolicy", "namespaces": [A]})
    for _ in range(2):
        reconciler("fn-west", config=config)
    assert west.raised == []
    assert {k: v for k, v in west.policies.items() if k != user_arn("alice").lower()} == before


def test_entries_without_policies_cost_no_association_read(reconciler: Reconciler, configure, west) -> None:
    reconciler("fn-west", config=configure())
    reconciler("fn-west", config=configure())
    assert west.calls["associated_policies"] == 0 and policy_writes(west) == []


def test_an_association_that_answers_404_right_after_the_create_is_retried(
    reconciler: Reconciler, configure, west, sleeps: list[float]
) -> None:
    west.fail("associate", "not-found", times=2, target=user_arn("alice"))
    report = reconciler("fn-west", config=configure({"policy": "AmazonEKSViewPolicy", "namespaces": [A]}))
    assert report.applied.identities.status == "written" and associations(west) == {VIEW: ("namespace", (A,))}
    assert sleeps[:2] == [0.5, 1.0]


def test_the_deletion_breaker_counts_associations(reconciler: Reconciler, shell, configure, west) -> None:
    for name in ("bob", "carol"):
        shell.iam_port.add_user(name, groups=[GROUP])
    reconciler("fn-west", config=configure({"policy": "AmazonEKSViewPolicy", "namespaces": [A]}))
    report = reconciler("fn-west", config=configure())
    assert report.applied.identities.status == "refused"
    assert [r.reason for r in report.applied.identities.refusals] == ["deletion-breaker"]
    assert all(associations(west, n) for n in ("alice", "bob", "carol"))
    forced = reconciler("fn-west", config=configure(), force_deletions=True)
    assert forced.applied.identities.status == "written"
    assert not any(associations(west, n) for n in ("alice", "bob", "carol"))


def test_an_event_associates_the_policies_of_the_groups_it_gives(shell, lambdas, west, write_config) -> None:
    write_config(identities=identities({"policy": "AmazonEKSViewPolicy", "namespaces": [A]}))
    shell.iam_port.add_user("bob", groups=[GROUP])
    result = lambdas.event("AddUserToGroup", groupName=GROUP, userName="bob")
    changes = result["clusters"]["fn-west"]["identities"]["changes"]
    assert {c["key"] for c in changes} == {"accessEntry", "accessPolicy"}
    assert associations(west, "bob") == {VIEW: ("namespace", (A,))}


def test_a_tag_profile_grants_its_policy_in_the_tag_s_namespace(
    reconciler: Reconciler, shell, write_config, west
) -> None:
    profiles = {**SEED["tagGrants"]["profiles"], "view": {"accessPolicy": "AmazonEKSViewPolicy"}}
    config = load_config(write_config(tagGrants={**SEED["tagGrants"], "profiles": profiles}))
    shell.iam_port.add_user("dave", tags={f"{TAG_PREFIX}{NS3}": "view"})
    reconciler("fn-west", config=config)
    assert associations(west, "dave") == {VIEW: ("namespace", (NS3,))}
    assert not [b for b in shell.clusters["fn-west"].bindings.owned().values() if b.namespace == NS3]


def test_1000_principals_with_2_policies_take_one_run_and_then_no_write(
    reconciler: Reconciler, shell, configure, west
) -> None:
    for index in range(999):
        shell.iam_port.add_user(f"user-{index:04d}", groups=[GROUP])
    config = configure(
        {"policy": "AmazonEKSViewPolicy", "namespaces": [A, B]}, {"policy": "AmazonEKSEditPolicy", "namespaces": [A]}
    )
    first = reconciler("fn-west", config=config)
    assert first.applied.identities.status == "written"
    owned = [e for e in west.entries.values() if e.principal_arn.startswith(user_arn(""))]
    assert len(owned) == 1000
    assert all(len(west.policies[e.key]) == 2 for e in owned)
    assert len(policy_writes(west)) == 2000
    west.writes.clear()
    second = reconciler("fn-west", config=config)
    assert west.writes == [] and not second.changed
    assert west.calls["associated_policies"] == 1000  # the second run's reads: one per owned entry with policies


def test_an_aws_auth_cluster_binds_the_rbac_equivalent_to_the_username(
    reconciler: Reconciler, shell, configure
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    config = configure(
        {"policy": "AmazonEKSViewPolicy", "namespaces": [A]}, {"policy": "AmazonEKSAdminViewPolicy", "namespaces": [B]}
    )
    report = reconciler("fn-east", config=config, dry_run=True)
    text = "\n".join(as_text("fn-east", report))
    name = "eks-iam-sync:policy:eks-iam-sync:user:alice:view"
    assert f"+ rolebinding {A}/{name}: User eks-iam-sync:user:alice -> ClusterRole view" in text
    assert "AmazonEKSViewPolicy" in text
    reconciler("fn-east", config=config)
    bound = {(b.namespace, b.cluster_role, b.subjects) for b in shell.clusters["fn-east"].bindings.owned().values()}
    assert (A, "view", (("User", "eks-iam-sync:user:alice"),)) in bound
    assert (B, "eks-iam-sync-admin-view", (("User", "eks-iam-sync:user:alice"),)) in bound
    shell.clusters["fn-east"].bindings.writes.clear()
    assert not reconciler("fn-east", config=config).changed


def test_cluster_admin_is_refused_on_an_aws_auth_cluster(reconciler: Reconciler, shell, write_config) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    config = load_config(
        write_config(
            identities=identities({"policy": "AmazonEKSClusterAdminPolicy"}),
            allowPrivilegedAccessPolicies=["AmazonEKSClusterAdminPolicy"],
        )
    )
    report = reconciler("fn-east", config=config)
    [refusal] = [r for r in report.desired.refusals if r.reason == "access-policy-on-aws-auth"]
    assert "AmazonEKSClusterAdminPolicy" in refusal.subject
    assert not [b for b in shell.clusters["fn-east"].bindings.owned().values() if b.observed().principal]


def test_a_membership_event_on_an_aws_auth_cluster_binds_the_equivalent(shell, lambdas, write_config) -> None:
    write_config(identities=identities({"policy": "AmazonEKSViewPolicy", "namespaces": [A]}))
    shell.iam_port.add_user("bob", groups=[GROUP])
    lambdas.event("AddUserToGroup", groupName=GROUP, userName="bob")
    bound = {
        (b.namespace, b.cluster_role)
        for b in shell.clusters["fn-east"].bindings.owned().values()
        if b.observed().principal
    }
    assert bound == {(A, "view")}
    shell.iam_port.remove_from_group("bob", GROUP)
    lambdas.event("RemoveUserFromGroup", groupName=GROUP, userName="bob")
    assert not [b for b in shell.clusters["fn-east"].bindings.owned().values() if b.observed().principal]


def test_associations_as_the_fake_keeps_them(west) -> None:
    """The fake keeps EKS's semantics the tests rely on: again replaces the scope, 404 without an entry."""
    west.put(user_arn("x"), "x")
    west.associate(user_arn("x"), VIEW, (A,))
    west.associate(user_arn("x"), VIEW, ())
    assert west.policies[user_arn("x").lower()] == [AssociatedPolicy(VIEW, "cluster", ())]
    with pytest.raises(Rejected):
        west.associated_policies(NODE_ROLE)


def test_validate_live_compares_the_catalogue_with_list_access_policies(
    shell, use_shell, write_config, west, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.entry.cli import main  # noqa: PLC0415

    path = write_config(identities=identities({"policy": "AmazonEKSViewPolicy", "namespaces": [A]}))
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", str(path))
    west.offered = [*west.offered, "AmazonEKSBrandNewPolicy"]
    assert main(["validate", "--live"]) == 1
    assert "live: cluster fn-east: ClusterRole 'view': missing" in capsys.readouterr().err  # View's equivalent
    for cluster in shell.clusters.values():
        cluster.cluster_roles.roles["view"] = ["pods: get, list, watch"]
    assert main(["validate", "--live"]) == 0
    out = capsys.readouterr().out
    assert "live: note: cluster fn-west: EKS offers access policies the catalogue of" in out
    assert "AmazonEKSBrandNewPolicy" in out and "live checks: ok" in out
    west.offered.remove("AmazonEKSViewPolicy")
    assert main(["validate", "--live"]) == 1
    assert "live: cluster fn-west: EKS offers no access policy 'AmazonEKSViewPolicy'" in capsys.readouterr().err


def test_explain_shows_policy_access_as_invisible_to_rbac_and_warns_about_edit_with_crds(
    shell, use_shell, write_config, west, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.entry.cli import main  # noqa: PLC0415

    rules = ({"policy": "AmazonEKSViewPolicy", "namespaces": [A]}, {"policy": "AmazonEKSEditPolicy", "namespaces": [B]})
    path = write_config(identities=identities(*rules))
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", str(path))
    west.associate_by_hand(NODE_ROLE, "AmazonEKSAutoNodePolicy")  # read by nobody
    shell.clusters["fn-west"].rbac.crds = ["widgets.example.com"]
    assert main(["explain", "alice", "--cluster", "fn-west"]) == 0
    before = capsys.readouterr().out
    assert (
        "+ access policy AmazonEKSViewPolicy, scope " + A in before
        and "associated now: NO (now: not associated)" in before
    )
    assert "invisible to kubectl auth can-i (--list, --as) and to impersonating proxies" in before
    assert "AmazonEKSEditPolicy grants no custom resources, and this cluster has 1 CRDs (widgets.example.com)" in before
    main(["apply", "--cluster", "fn-west"])
    capsys.readouterr()
    assert main(["explain", "alice", "--cluster", "fn-west"]) == 0
    after = capsys.readouterr().out
    source = f"identities.groups[{GROUP}]"
    assert (
        f"+ access policy AmazonEKSViewPolicy, scope {A}: {source} -> access entry -> AmazonEKSViewPolicy; associated now: yes"
        in after
    )
    assert main(["explain", "alice", "--cluster", "fn-east"]) == 0  # aws-auth: the RBAC equivalents
    east = capsys.readouterr().out
    assert f"+ namespace {A}: ClusterRole view via accessPolicy AmazonEKSViewPolicy" in east
    assert f"+ namespace {B}: ClusterRole edit via accessPolicy AmazonEKSEditPolicy" in east


def test_the_report_shows_a_policy_the_service_associated_as_its_rule_s_and_invisible_to_rbac(
    shell, use_shell, write_config, west, capsys: pytest.CaptureFixture[str]
) -> None:
    import json  # noqa: PLC0415

    from chalicelib.entry.cli import main  # noqa: PLC0415

    path = write_config(identities=identities({"policy": "AmazonEKSViewPolicy", "namespaces": [A]}))
    assert main(["apply", "--config", str(path), "--cluster", "fn-west"]) == 0
    capsys.readouterr()
    main(["report", "--config", str(path), "--format", "json", "--output", "-"])
    document = json.loads(capsys.readouterr().out)
    [policy] = [p for p in document["paths"] if p["grant"] == "access policy" and p["cluster"] == "fn-west"]
    assert (
        policy["namespace"] == A and policy["origin"] == f"identities.groups[{GROUP}]" and not policy["grantedOutside"]
    )
    assert "AmazonEKSViewPolicy, namespace scope" in policy["roleBinding"]
    assert "invisible to kubectl auth can-i (--list, --as) and to impersonating proxies" in policy["roleBinding"]


def test_the_report_warns_where_edit_is_granted_by_policy_in_a_cluster_with_crds(
    shell, use_shell, write_config, west, capsys: pytest.CaptureFixture[str]
) -> None:
    import json  # noqa: PLC0415

    from chalicelib.entry.cli import main  # noqa: PLC0415

    path = write_config(identities=identities({"policy": "AmazonEKSEditPolicy", "namespaces": [A]}))
    assert main(["apply", "--config", str(path), "--cluster", "fn-west"]) == 0
    capsys.readouterr()

    def findings() -> list[dict[str, Any]]:
        main(["report", "--config", str(path), "--format", "json", "--output", "-"])
        document = json.loads(capsys.readouterr().out)
        return [f for f in document["findings"] if f["reason"] == "edit-policy-without-crds"]

    assert findings() == []  # no CRD in the cluster: nothing to miss
    shell.clusters["fn-west"].rbac.crds = ["widgets.example.com"]
    [finding] = findings()
    assert finding["cluster"] == "fn-west" and "1 CRDs (widgets.example.com)" in finding["message"]
