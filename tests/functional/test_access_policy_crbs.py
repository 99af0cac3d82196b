"""An access policy at cluster scope on an aws-auth cluster, on fakes: the RBAC equivalent bound to the
principal's username by a ClusterRoleBinding the service owns exactly as its RoleBindings (labels,
annotations, diffed alike: a changed role is delete + create; a foreign one of the same name is never
touched), through the handlers (a full run and a membership event), the deletion breaker, ``plan``,
``explain``, the report and ``uninstall``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import Config, load_config
from chalicelib.entry.cli import main
from chalicelib.errors import Forbidden, SyncError
from chalicelib.model.ownership import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PRINCIPAL_ANNOTATION,
    PRINCIPAL_LABEL,
    SOURCE_ANNOTATION,
    principal_label,
)
from chalicelib.model.ports import RbacRule
from chalicelib.run.results import as_text
from tests.functional.conftest import Reconciler
from tests.functional.fakes import GROUP, KUBERNETES_GROUP, FakeBindings, FakeShell, StoredBinding, user_arn
from tests.functional.test_access_policies import identities

VIEW_RULE = {"policy": "AmazonEKSViewPolicy"}  # no namespaces: cluster scope
SOURCE = f"accessPolicy AmazonEKSViewPolicy (identities.groups[{GROUP}])"


def crb_name(user: str, role: str = "view") -> str:
    return f"eks-iam-sync:policy:eks-iam-sync:user:{user}:{role}"


def crbs(bindings: FakeBindings) -> dict[str, StoredBinding]:
    """Every ClusterRoleBinding of the fake cluster, owned or not, by name."""
    return {name: b for (namespace, name), b in bindings.objects.items() if not namespace}


@pytest.fixture
def east(shell: FakeShell) -> FakeBindings:
    return shell.clusters["fn-east"].bindings  # a CONFIG_MAP cluster: aws-auth


@pytest.fixture
def configure(write_config: Callable[..., Path]) -> Callable[..., Config]:
    def configure(*rules: dict[str, Any], groups: tuple[str, ...] = (KUBERNETES_GROUP,), **overrides: Any) -> Config:
        return load_config(write_config(identities=identities(*rules, groups=groups), **overrides))

    return configure


def test_cluster_scope_is_a_clusterrolebinding_owned_as_the_rolebindings(
    reconciler: Reconciler, shell: FakeShell, configure, east: FakeBindings
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    config = configure(VIEW_RULE)
    planned = reconciler("fn-east", config=config, dry_run=True)
    text = "\n".join(as_text("fn-east", planned))
    assert (
        f"+ clusterrolebinding {crb_name('alice')}: User eks-iam-sync:user:alice -> ClusterRole view  ({SOURCE})"
        in text
    )
    assert crbs(east) == {} and not planned.desired.refusals

    reconciler("fn-east", config=config)
    [crb] = crbs(east).values()
    assert (crb.name, crb.cluster_role, crb.subjects) == (
        crb_name("alice"),
        "view",
        (("User", "eks-iam-sync:user:alice"),),
    )
    assert crb.labels == {MANAGED_BY_LABEL: MANAGED_BY_VALUE, PRINCIPAL_LABEL: principal_label("user", "alice")}
    assert crb.annotations[SOURCE_ANNOTATION] == SOURCE and crb.annotations[PRINCIPAL_ANNOTATION] == user_arn("alice")
    assert f"create /{crb_name('alice')}" in east.writes
    east.writes.clear()
    assert not reconciler("fn-east", config=config).changed and east.writes == []


def test_a_new_role_is_delete_then_create_and_a_rule_gone_deletes_it(
    reconciler: Reconciler, shell: FakeShell, configure, east: FakeBindings
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    reconciler("fn-east", config=configure(VIEW_RULE))
    east.writes.clear()
    # AdminView at cluster scope instead: another name (the role is in it), the old one deleted
    reconciler("fn-east", config=configure({"policy": "AmazonEKSAdminViewPolicy"}))
    assert set(crbs(east)) == {crb_name("alice", "eks-iam-sync-admin-view")}
    assert sorted(east.writes) == [
        f"create /{crb_name('alice', 'eks-iam-sync-admin-view')}",
        f"delete /{crb_name('alice')}",
    ]
    # the same name bound to another role (a hand edit of an owned one): roleRef is immutable, delete + create
    admin_view = crb_name("bob", "eks-iam-sync-admin-view")
    east.put_binding("", admin_view, "edit", (("User", "eks-iam-sync:user:bob"),), owned=True)
    shell.iam_port.add_user("bob", groups=[GROUP])
    east.writes.clear()
    report = reconciler("fn-east", config=configure({"policy": "AmazonEKSAdminViewPolicy"}))
    [replaced] = [a for a in report.plan.bindings if a.verb == "replace"]
    assert replaced.describe().startswith(f"~ clusterrolebinding {admin_view}: ") and replaced.describe().endswith(
        "(was edit)"
    )
    assert east.writes == [f"delete /{admin_view}", f"create /{admin_view}"]
    assert crbs(east)[admin_view].cluster_role == "eks-iam-sync-admin-view"
    # namespaces instead of cluster scope: RoleBindings, and the ClusterRoleBindings go
    reconciler("fn-east", config=configure({"policy": "AmazonEKSAdminViewPolicy", "namespaces": ["a"]}))
    assert {n for n, b in crbs(east).items() if b.owned} == set()


def test_a_foreign_clusterrolebinding_of_the_same_name_is_never_changed(
    reconciler: Reconciler, shell: FakeShell, configure, east: FakeBindings
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    foreign = east.put_binding("", crb_name("alice"), "cluster-admin", (("User", "someone-else"),))
    before = (foreign.cluster_role, foreign.subjects, dict(foreign.labels), foreign.resource_version)
    report = reconciler("fn-east", config=configure(VIEW_RULE))
    assert [p for p in report.applied.bindings.conflicts if crb_name("alice") in p], report.applied.bindings
    assert reconciler.observer.counted("BindingConflicts") == 1
    reconciler("fn-east", config=configure())  # the rule gone: nothing owned to delete
    stored = crbs(east)[crb_name("alice")]
    assert (stored.cluster_role, stored.subjects, stored.labels, stored.resource_version) == before
    assert not [w for w in east.writes if "delete" in w]


def test_a_membership_event_binds_and_unbinds_listing_only_its_principal_s_clusterrolebindings(
    shell: FakeShell, lambdas, write_config, east: FakeBindings
) -> None:
    write_config(identities=identities(VIEW_RULE))
    east.put_binding("", crb_name("carol"), "view", (("User", "eks-iam-sync:user:carol"),), owned=True)
    shell.iam_port.add_user("bob", groups=[GROUP])
    lambdas.event("AddUserToGroup", groupName=GROUP, userName="bob")
    assert {n for n, b in crbs(east).items()} == {crb_name("bob"), crb_name("carol")}
    assert east.calls["list_owned_cluster"] == 1
    shell.iam_port.remove_from_group("bob", GROUP)
    lambdas.event("RemoveUserFromGroup", groupName=GROUP, userName="bob")
    assert set(crbs(east)) == {crb_name("carol")}  # an event never deletes another principal's
    # without a cluster-scope rule an event lists no ClusterRoleBinding at all
    write_config(identities=identities({"policy": "AmazonEKSViewPolicy", "namespaces": ["a"]}))
    east.calls.clear()
    lambdas.event("AddUserToGroup", groupName=GROUP, userName="bob")
    assert east.calls["list_owned_cluster"] == 0


def test_without_clusterrolebinding_rights_a_run_that_binds_none_goes_on_and_one_that_does_fails(
    reconciler: Reconciler, shell: FakeShell, configure, east: FakeBindings
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    east.fail("list_owned_cluster", Forbidden("403 clusterrolebindings is forbidden"), always=True)
    report = reconciler("fn-east", config=configure({"policy": "AmazonEKSViewPolicy", "namespaces": ["a"]}))
    assert report.changed and "owned clusterrolebindings not listed" in " ".join(reconciler.observer.messages("info"))
    with pytest.raises(Forbidden):
        reconciler("fn-east", config=configure(VIEW_RULE))


def test_the_deletion_breaker_holds_clusterrolebindings_as_it_holds_rolebindings(
    reconciler: Reconciler, shell: FakeShell, configure, east: FakeBindings
) -> None:
    for name in ("alice", "bob", "carol"):
        shell.iam_port.add_user(name, groups=[GROUP])
    config = configure(VIEW_RULE)
    reconciler("fn-east", config=config)
    assert len(crbs(east)) == 3
    for name in ("alice", "bob", "carol"):
        shell.iam_port.remove_from_group(name, GROUP)
    report = reconciler("fn-east", config=config)
    assert any(r.reason == "deletion-breaker" for r in report.applied.identities.refusals)
    assert len(crbs(east)) == 3
    assert len([p for p in report.applied.bindings.refused if "held back by the deletion breaker" in p]) == 3
    reconciler("fn-east", config=config, force_deletions=True)
    assert crbs(east) == {}


def test_plan_explain_report_and_uninstall_show_them_as_the_service_s_own(
    shell: FakeShell, use_shell, write_config, east: FakeBindings, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    path = write_config(identities=identities(VIEW_RULE))
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", str(path))
    assert main(["plan", "--cluster", "fn-east", "--output", "json"]) == 2
    planned = json.loads(capsys.readouterr().out)["fn-east"]["roleBindings"]
    [crb] = [b for b in planned if b["kind"] == "ClusterRoleBinding"]
    assert (crb["action"], crb["namespace"], crb["name"], crb["clusterRole"]) == (
        "create",
        "",
        crb_name("alice"),
        "view",
    )
    assert main(["apply"]) == 0
    capsys.readouterr()

    assert main(["explain", "alice", "--cluster", "fn-east"]) == 0
    line = (
        f"+ every namespace: identities.groups[{GROUP}] -> access policy AmazonEKSViewPolicy -> "
        f"ClusterRoleBinding {crb_name('alice')} -> ClusterRole view"
    )
    assert line in capsys.readouterr().out

    rbac = shell.clusters["fn-east"].rbac
    assert rbac is not None
    rbac.cluster_roles["view"] = (RbacRule(("get", "list", "watch"), ("",), ("pods",)),)  # the RBAC objects read
    main(["report", "--format", "json", "--output", "-", "--cluster", "fn-east"])
    document = json.loads(capsys.readouterr().out)
    [path_] = [p for p in document["paths"] if p["grant"] == "ClusterRoleBinding"]
    assert path_["namespace"] == "*" and path_["clusterRole"] == "view" and not path_["grantedOutside"]
    assert path_["origin"] == f"identities.groups[{GROUP}] -> access policy AmazonEKSViewPolicy"

    writes = shell.writes()
    assert main(["uninstall", "--dry-run", "--cluster", "fn-east", "--output", "json"]) == 2
    assert shell.writes() == writes
    planned = json.loads(capsys.readouterr().out)["fn-east"]["roleBindings"]
    assert {"action": "delete", "kind": "ClusterRoleBinding", "name": crb_name("alice")}.items() <= next(
        b for b in planned if b["kind"] == "ClusterRoleBinding"
    ).items()
    assert main(["uninstall", "--cluster", "fn-east"]) == 0
    assert crbs(east) == {}


def test_a_failed_clusterrolebinding_list_in_a_full_run_fails_only_that_cluster(
    shell: FakeShell, lambdas, write_config, east: FakeBindings
) -> None:
    write_config(identities=identities(VIEW_RULE))
    shell.iam_port.add_user("alice", groups=[GROUP])
    east.fail("list_owned_cluster", "timeout", always=True)
    with pytest.raises(SyncError, match="fn-east"):
        lambdas.reconcile_all()
    assert crb_name("alice") in crbs(shell.clusters["fn-west"].bindings)
