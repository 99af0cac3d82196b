"""Who can reach a namespace, whoever granted it (issue 23, item 1): system:masters, ClusterRoleBindings,
RoleBindings eks-iam-sync does not own, EKS access policies and their scopes; the cluster-wide band;
grants marked as made outside eks-iam-sync; counted in every namespace they reach; risk flags; and
the service's own identity rated for what it can do."""

from __future__ import annotations

from chalicelib.entry.accessreport import rbac
from chalicelib.entry.accessreport.data import ACTIVE, OUTSIDE, AccessReport
from chalicelib.entry.accessreport.jsonform import as_json
from chalicelib.model.ports import AssociatedPolicy, ObservedAccessEntry, ObservedConfigMap, RbacBinding, RbacRule
from tests.unit.test_accessreport_model import (
    ACCOUNT,
    GROUP,
    KUBERNETES_GROUP,
    POD_READER,
    PROJECTS,
    World,
    cells,
    reasons,
    row,
    user,
)

MALLORY = f"arn:aws:iam::{ACCOUNT}:user/mallory"
CREATOR = f"arn:aws:iam::{ACCOUNT}:role/cluster-creator"
POLICY = "arn:aws:eks::aws:cluster-access-policy/"


def counts(report: AccessReport) -> dict[str, int]:
    return {c.namespace: c.principals for c in report.columns}


def hand_made(world: World, entry: str, where: str = "mapUsers") -> None:
    assert world.aws_auth is not None
    data = {**world.aws_auth.data, where: world.aws_auth.data.get(where, "") + entry}
    world.aws_auth = ObservedConfigMap("kube-system", "aws-auth", data, world.aws_auth.annotations, "5")


def test_a_hand_made_system_masters_entry_is_a_cluster_wide_row_counted_in_every_namespace() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    before = counts(world.report())
    hand_made(world, f"- userarn: {MALLORY}\n  username: mallory\n  groups: [system:masters]\n")
    report = world.report()
    assert report.principals[0].name == "mallory"  # the band: cluster-wide access first
    mallory = row(report, "mallory")
    assert mallory.cluster_wide == ("bttrm-eks-dev-0",) and mallory.risk == "critical"
    assert cells(report, "mallory") == {ns: (("system:masters", ACTIVE),) for ns in world.namespaces}
    assert counts(report) == {ns: before.get(ns, 0) + 1 for ns in world.namespaces}
    [path] = [p for p in report.paths if p.kind == "system:masters"]
    assert path.namespace == "*" and path.foreign and path.principals == 1
    assert rbac.SYSTEM_MASTERS in path.flags or rbac.ALL in path.flags
    assert reasons(report, "risk") == [("critical", MALLORY)]
    assert OUTSIDE in report.findings_of("risk")[0].message


def test_system_masters_is_shown_even_when_rbac_could_not_be_read_and_the_gap_is_a_finding() -> None:
    world = World(users=[user("alice", GROUP)], rbac_read=False).converge()
    hand_made(world, f"- userarn: {MALLORY}\n  username: mallory\n  groups: [system:masters]\n")
    report = world.report()
    assert set(cells(report, "mallory")) == set(world.namespaces)
    [finding] = report.findings_of("incomplete")
    assert finding.reason == "rbac-unread" and finding.severity == "error" and "Forbidden" in finding.message


def test_a_foreign_cluster_role_binding_of_a_managed_group_reaches_every_namespace() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    world.foreign.append(RbacBinding("oops-admin", "ClusterRole", "cluster-admin", (("Group", KUBERNETES_GROUP),)))
    report = world.report()
    alice = row(report, "alice")
    assert alice.cluster_wide == ("bttrm-eks-dev-0",) and alice.risk == "critical"
    found = cells(report, "alice")
    assert set(found) == set(world.namespaces)
    assert found[PROJECTS[0]] == (("cluster-admin", ACTIVE), (POD_READER, ACTIVE))
    [path] = [p for p in report.paths if p.kind == "ClusterRoleBinding"]
    assert (path.binding, path.namespace, path.foreign, path.managed) == ("oops-admin", "*", True, True)
    assert ("ClusterRoleBinding", f"oops-admin ({OUTSIDE})") in path.chain
    assert all(c.principals == 1 for c in report.columns)
    cell = next(c for c in alice.cells if report.columns[c.column].namespace == "default")
    assert cell.foreign and rbac.ALL in cell.flags


def test_a_cluster_role_binding_of_cluster_scoped_rules_reaches_no_namespace() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    world.foreign.append(RbacBinding("basic", "ClusterRole", "system:basic-user", (("Group", "system:authenticated"),)))
    assert set(cells(world.report(), "alice")) == set(PROJECTS)


def test_everyone_is_in_system_authenticated() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    world.foreign.append(RbacBinding("leak", "ClusterRole", "secret-reader", (("Group", "system:authenticated"),)))
    report = world.report()
    for name in ("alice", "eks-node-group"):
        assert set(cells(report, name)) == set(world.namespaces)
        assert rbac.SECRETS_READ in row(report, name).flags and row(report, name).risk == "high"


def test_a_role_binding_eks_iam_sync_does_not_own_is_read_and_marked() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    binding = RbacBinding("by-hand", "ClusterRole", "secret-reader", (("Group", KUBERNETES_GROUP),), "default")
    world.foreign.append(binding)
    report = world.report()
    assert cells(report, "alice")["default"] == (("secret-reader", ACTIVE),)
    [path] = [p for p in report.paths if p.binding == "default/by-hand"]
    assert path.foreign and path.flags == (rbac.SECRETS_READ,) and path.risk == "high"
    assert counts(report)["default"] == 1


def test_access_policies_of_any_entry_with_their_scopes() -> None:
    world = World(users=[user("alice", GROUP)], mode="API").converge()
    world.entries[CREATOR.lower()] = ObservedAccessEntry(CREATOR, CREATOR, (), "STANDARD", {}, "arn:entry:creator")
    world.policies[CREATOR.lower()] = (AssociatedPolicy(POLICY + "AmazonEKSClusterAdminPolicy", "cluster"),)
    viewer = f"arn:aws:iam::{ACCOUNT}:role/viewer"
    world.entries[viewer.lower()] = ObservedAccessEntry(viewer, "viewer", (), "STANDARD", {}, "arn:entry:viewer")
    scope = ("bttrm-web-proj-1*", "default")
    world.policies[viewer.lower()] = (AssociatedPolicy(POLICY + "AmazonEKSViewPolicy", "namespace", scope),)
    report = world.report()
    creator = row(report, "cluster-creator")
    assert creator.mechanisms == ("not managed",) and creator.cluster_wide == ("bttrm-eks-dev-0",)
    assert cells(report, "cluster-creator") == {
        ns: (("AmazonEKSClusterAdminPolicy", ACTIVE),) for ns in world.namespaces
    }
    assert creator.risk == "critical"
    assert cells(report, "viewer") == {ns: (("AmazonEKSViewPolicy", ACTIVE),) for ns in ("default", PROJECTS[0])}
    assert row(report, "viewer").risk == "low"
    [admin] = [p for p in report.paths if p.cluster_role == "AmazonEKSClusterAdminPolicy"]
    assert admin.kind == "access policy" and admin.foreign and "cluster scope" in admin.binding
    assert "*: *" in admin.rules  # as the cluster's cluster-admin
    assert counts(report)[PROJECTS[0]] == 3 and counts(report)["kube-system"] == 1


def test_a_removed_entry_takes_its_policies_with_it() -> None:
    """An owned entry the plan deletes: its policies' access is shown as removing."""
    world = World(users=[user("alice", GROUP)], mode="API").converge()
    alice = f"arn:aws:iam::{ACCOUNT}:user/alice"
    world.policies[alice.lower()] = (AssociatedPolicy(POLICY + "AmazonEKSEditPolicy", "namespace", ("default",)),)
    world.users.clear()
    found = cells(world.report(), "alice")
    assert found["default"] == (("AmazonEKSEditPolicy", "removing"),)


def test_the_service_identity_is_rated_for_what_it_can_do() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    service = f"arn:aws:iam::{ACCOUNT}:role/eks-iam-sync-dev"
    hand_made(world, f"- rolearn: {service}\n  username: eks-iam-sync\n  groups: [eks-iam-sync]\n", "mapRoles")
    world.foreign.append(RbacBinding("eks-iam-sync", "ClusterRole", "binder", (("Group", "eks-iam-sync"),)))
    report = world.report()
    assert reasons(report, "risk") == [("service-identity", service)]
    [finding] = report.findings_of("risk")
    assert finding.severity == "error" and rbac.AWS_AUTH_WRITE in finding.message
    assert row(report, "eks-iam-sync-dev").risk == "critical"
    assert "reader" not in {f.reason for f in report.findings_of("foreign")}


def test_json_names_grants_made_outside_and_their_risk() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    world.foreign.append(RbacBinding("oops-admin", "ClusterRole", "cluster-admin", (("Group", KUBERNETES_GROUP),)))
    document = as_json(world.report())
    alice = next(p for p in document["principals"] if p["name"] == "alice")
    assert alice["clusterWide"] == ["bttrm-eks-dev-0"] and alice["risk"] == "critical"
    outside = [p for p in document["paths"] if p["grantedOutside"]]
    assert [(p["grant"], p["namespace"], p["risk"]) for p in outside] == [("ClusterRoleBinding", "*", "critical")]


def test_risk_flags_of_rules() -> None:
    rule = RbacRule
    assert rbac.flags([rule(("get",), ("",), ("secrets",))], "x") == (rbac.SECRETS_READ,)
    assert rbac.flags([rule(("create",), ("",), ("pods/exec",))], "x") == (rbac.EXEC,)
    assert rbac.flags([rule(("create",), ("apps",), ("deployments",))], "x") == (rbac.CREATE_PODS,)
    assert rbac.flags([rule(("bind",), ("rbac.authorization.k8s.io",), ("clusterroles",))], "x") == (rbac.BIND,)
    assert rbac.flags([rule(("impersonate",), ("",), ("users",))], "x") == (rbac.IMPERSONATE,)
    assert rbac.flags([rule(("escalate",), ("rbac.authorization.k8s.io",), ("roles",))], "x") == (rbac.ESCALATE,)
    aws_auth = rule(("update",), ("",), ("configmaps",), ("aws-auth",))
    assert rbac.flags([aws_auth], "kube-system") == (rbac.AWS_AUTH_WRITE,)
    assert rbac.flags([aws_auth], "default") == ()
    assert rbac.flags([rule(("get",), ("apps",), ("secrets",))], "x") == ()  # not the core group's secrets
    assert rbac.risk([rbac.SECRETS_READ]) == "high" and rbac.risk([rbac.BIND]) == "critical"
    assert rbac.risk([]) == "low"
    assert rbac.describe(rule(("get", "list"), ("apps",), ("deployments",))) == "deployments.apps: get, list"
    assert rbac.scope_covers(("team-*",), "team-a") and not rbac.scope_covers(("team-a",), "team-ab")


def test_effective_verbs_merge_per_resource_and_leave_out_what_no_namespace_holds() -> None:
    rules = [
        RbacRule(("get", "list"), ("", "apps"), ("pods", "deployments")),
        RbacRule(("watch",), ("",), ("pods",)),
        RbacRule(("get",), ("",), ("nodes", "namespaces")),  # cluster-scoped: not in a namespace
        RbacRule(("get",), non_resource_urls=("/healthz",)),
        RbacRule(("update",), ("",), ("configmaps",), ("aws-auth",)),
        RbacRule(("*",), ("batch",), ("jobs",)),
    ]
    assert rbac.effective(rules) == (
        ("", "configmaps", ("update",), ("aws-auth",)),
        ("", "deployments", ("get", "list"), ()),
        ("", "pods", ("get", "list", "watch"), ()),
        ("apps", "deployments", ("get", "list"), ()),
        ("apps", "pods", ("get", "list"), ()),
        ("batch", "jobs", ("*",), ()),
    )


def test_an_aws_auth_entry_that_never_matches_is_ineffective_not_active() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    before = counts(world.report())
    pathed = f"arn:aws:iam::{ACCOUNT}:role/teams/web-deployer"
    hand_made(
        world,
        f"- rolearn: {pathed}\n  username: deployer\n  groups: [{KUBERNETES_GROUP}, system:masters]\n",
        "mapRoles",
    )
    report = world.report()
    deployer = row(report, "web-deployer")
    assert {c.status for c in deployer.cells} == {"ineffective"}
    assert cells(report, "web-deployer")[PROJECTS[0]] == (
        (POD_READER, "ineffective"),
        ("system:masters", "ineffective"),
    )
    assert deployer.risk == "low" and deployer.cluster_wide == () and deployer.flags == ()
    assert counts(report) == {**before, **{ns: 0 for ns in counts(report) if ns not in before}}  # reaches nobody
    assert reasons(report, "risk") == []
    assert any("role ARN with a path never matches" in f.message for f in report.findings_of("aws-auth"))
    access = next(p for p in as_json(report)["principals"] if p["name"] == "web-deployer")["access"]
    assert {a["status"] for a in access} == {"ineffective"}
