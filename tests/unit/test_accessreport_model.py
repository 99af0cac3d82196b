"""The access report's model (chalicelib/entry/accessreport/model.py): a pure function of the configuration,
the IAM snapshot and what each cluster holds, checked on small worlds built with the pure engines
(desired state, the aws-auth and access-entry planners, the RoleBinding planner, the display applier).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from chalicelib.config import DEFAULT_CONFIG_PATH, Config, parse_config
from chalicelib.engine.accessentries.plan import AccessEntriesStep, plan_access_entries, tags_for
from chalicelib.engine.awsauth.plan import AwsAuthStep, SyncIntent, plan_aws_auth
from chalicelib.engine.desired import desired_state
from chalicelib.engine.guardrails import Policy
from chalicelib.engine.plan import Plan, plan_bindings
from chalicelib.entry.accessreport.data import (
    ACTIVE,
    PENDING,
    REMOVING,
    AccessReport,
    ClusterFailed,
    ClusterRead,
    Meta,
    Principal,
    principal_key,
    principal_kind,
)
from chalicelib.entry.accessreport.jsonform import as_json
from chalicelib.entry.accessreport.model import build_report
from chalicelib.model.identities import OwnedEntry
from chalicelib.model.ownership import LEDGER_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE
from chalicelib.model.ports import (
    AssociatedPolicy,
    ObservedAccessEntry,
    ObservedBinding,
    ObservedConfigMap,
    RbacBinding,
    RbacRole,
    RbacRule,
    RbacSnapshot,
)
from chalicelib.model.snapshot import IamRole, IamSnapshot, IamUser
from chalicelib.run.apply import DisplayOnlyApplier
from chalicelib.run.reconcile import ClusterReport, choose_backend

ACCOUNT = "123456789012"
GROUP, KUBERNETES_GROUP = "iam-bttrm-web-ro-group", "rbac-bttrm-web-ro-group"
POD_READER = "rbac-bttrm-pods-ro-cluster-role"
PROJECTS = ("bttrm-web-proj-1-ns", "bttrm-web-proj-2-ns")
NS3 = "bttrm-web-proj-3-ns"
RULES = ("pods: get, list, watch", "pods/log: get")
NODE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/eks-node-group"
NODE_ENTRY = (
    f"- rolearn: {NODE_ROLE}\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n"
    "  groups: [system:bootstrappers, system:nodes]\n"
)
CLUSTER_ROLES = (
    RbacRole(
        POD_READER, (RbacRule(("get", "list", "watch"), ("",), ("pods",)), RbacRule(("get",), ("",), ("pods/log",)))
    ),
    RbacRole("cluster-admin", (RbacRule(("*",), ("*",), ("*",)), RbacRule(("*",), non_resource_urls=("*",)))),
    RbacRole("system:basic-user", (RbacRule(("create",), ("authorization.k8s.io",), ("selfsubjectaccessreviews",)),)),
    RbacRole("secret-reader", (RbacRule(("get",), ("",), ("secrets",)),)),
)
META = Meta("2026-11-30T12:00:00Z", "config.yaml", "ab" * 32, "test", f"arn:aws:iam::{ACCOUNT}:role/auditor")


def user(name: str, *groups: str, tags: dict[str, str] | None = None, uid: str = "") -> IamUser:
    return IamUser(name, f"arn:aws:iam::{ACCOUNT}:user/{name}", groups, tags or {}, uid or f"AIDA{name.upper()}")


def config(mode_backend: str = "auto") -> Config:
    text = DEFAULT_CONFIG_PATH.read_text().replace(
        "    region: us-east-2\n", f"    region: us-east-2\n    backend: {mode_backend}\n", 1
    )
    return parse_config(text)


@dataclass
class World:
    """One cluster and IAM, as plain data; ``converge`` makes the cluster hold what is desired."""

    users: list[IamUser] = field(default_factory=list)
    roles: list[IamRole] = field(default_factory=list)
    mode: str | None = None
    backend: str = "auto"
    namespaces: tuple[str, ...] = ("default", "kube-system", *PROJECTS, NS3)
    aws_auth: ObservedConfigMap | None = None
    entries: dict[str, ObservedAccessEntry] = field(default_factory=dict)
    bindings: dict[tuple[str, str], ObservedBinding] = field(default_factory=dict)
    name: str = "bttrm-eks-dev-0"
    rbac_read: bool = True  # the RBAC objects listed (else only the owned RoleBindings are known)
    foreign: list[RbacBinding] = field(default_factory=list)  # RoleBindings and ClusterRoleBindings of others
    policies: dict[str, tuple[AssociatedPolicy, ...]] = field(default_factory=dict)  # lower-case ARN -> them

    def rbac(self) -> RbacSnapshot:
        owned = tuple(
            RbacBinding(
                b.name, "ClusterRole", b.cluster_role, b.subjects, b.namespace, {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
            )
            for b in self.bindings.values()
        )
        role_bindings = owned + tuple(b for b in self.foreign if b.namespace)
        cluster_wide = tuple(b for b in self.foreign if not b.namespace)
        return RbacSnapshot(role_bindings, cluster_wide, (), CLUSTER_ROLES, {"rolebindings": "41"})

    def __post_init__(self) -> None:
        if self.aws_auth is None:
            self.aws_auth = ObservedConfigMap("kube-system", "aws-auth", {"mapRoles": NODE_ENTRY}, {}, "1")

    @property
    def config(self) -> Config:
        return config(self.backend)

    @property
    def snapshot(self) -> IamSnapshot:
        return IamSnapshot(tuple(self.users), tuple(self.roles))

    def read(self) -> ClusterRead:
        desired = desired_state(self.config, self.snapshot, {n: {} for n in self.namespaces})
        backend = choose_backend(self.config.cluster(self.name), self.mode)
        step: AwsAuthStep | AccessEntriesStep
        if backend == "configMap":
            step = plan_aws_auth(self.aws_auth, SyncIntent(desired.identities), Policy())
        else:
            current = tuple(self.entries.values())
            step = plan_access_entries(current, desired.identities, None, Policy(), len(current))
        plan = Plan(step, plan_bindings(desired.bindings, self.bindings.values()))
        run = ClusterReport(self.name, desired, plan, DisplayOnlyApplier().apply(plan, "report"), backend)
        api = self.mode in ("API", "API_AND_CONFIG_MAP")
        return ClusterRead(
            self.name,
            "us-east-2",
            self.mode,
            run,
            self.aws_auth if self.mode != "API" else None,
            tuple(self.entries.values()) if api else None,
            tuple(self.bindings.values()),
            {POD_READER: RULES},
            {},
            len(self.namespaces),
            self.namespaces,
            self.rbac() if self.rbac_read else None,
            "" if self.rbac_read else "Forbidden: list clusterrolebindings",
            self.policies,
        )

    def converge(self) -> World:
        read = self.read()
        desired = read.run.desired
        if read.run.backend == "configMap":
            step = plan_aws_auth(self.aws_auth, SyncIntent(desired.identities), Policy())
            if step.data is not None:
                annotations = {LEDGER_ANNOTATION: step.ledger}
                self.aws_auth = ObservedConfigMap("kube-system", "aws-auth", step.data, annotations, "2")
        else:
            for owned in desired.identities:
                self.entries[owned.iam_arn.lower()] = entry(owned)
        self.bindings = {
            b.key: ObservedBinding(
                b.namespace,
                b.name,
                b.cluster_role,
                ((b.subject_kind, b.subject_name),),
                b.source,
                b.principal,
                principal_label=b.principal_label,
                group_label=b.group_label,
            )
            for b in desired.bindings
        }
        return self

    def report(self) -> AccessReport:
        return build_report(self.config, self.snapshot, [self.read()], META)


def entry(owned: OwnedEntry) -> ObservedAccessEntry:
    groups = tuple(sorted(set(owned.entry.groups)))
    return ObservedAccessEntry(owned.iam_arn, owned.entry.username, groups, "STANDARD", tags_for(owned), "arn:entry")


def row(report: AccessReport, name: str) -> Principal:
    return next(p for p in report.principals if p.name == name)


def cells(report: AccessReport, name: str) -> dict[str, tuple[tuple[str, str], ...]]:
    return {report.columns[c.column].namespace: c.roles for c in row(report, name).cells}


def reasons(report: AccessReport, kind: str) -> list[tuple[str, str]]:
    return [(f.reason, f.principal) for f in report.findings_of(kind)]


def test_a_group_member_in_place_reaches_the_rule_namespaces_through_the_full_chain() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    report = world.report()
    assert [c.namespace for c in report.columns] == sorted(PROJECTS)
    assert cells(report, "alice") == {ns: ((POD_READER, ACTIVE),) for ns in PROJECTS}
    alice = row(report, "alice")
    assert alice.kind == "user" and alice.in_iam and alice.iam_groups == (GROUP,)
    assert alice.kubernetes_groups == (KUBERNETES_GROUP,) and alice.mechanisms == ("aws-auth",)
    [path] = [p for p in report.paths if p.id in alice.cells[0].paths]
    assert dict(path.chain) == {
        "granted by": f"IAM group {GROUP}",
        "mapped through": "aws-auth mapUsers entry",
        "as": f"Kubernetes group {KUBERNETES_GROUP}",
        "RoleBinding": f"{PROJECTS[0]}/eks-iam-sync:group:{KUBERNETES_GROUP}:{POD_READER} (namespaceGrants[0])",
        "ClusterRole": POD_READER,
        "can": "; ".join(RULES),
    }
    assert path.principals == 1 and path.status == ACTIVE
    assert report.findings_of("drift") == () and report.findings_of("cannot-authenticate") == ()
    assert [c.principals for c in report.columns] == [1, 1]


def test_a_new_member_is_pending_cannot_authenticate_yet_and_is_drift() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    world.users.append(user("bob", GROUP))
    report = world.report()
    assert cells(report, "bob") == {ns: ((POD_READER, PENDING),) for ns in PROJECTS}
    assert cells(report, "alice") == {ns: ((POD_READER, ACTIVE),) for ns in PROJECTS}
    bob = f"arn:aws:iam::{ACCOUNT}:user/bob"
    assert reasons(report, "cannot-authenticate") == [("missing", bob)]
    assert reasons(report, "drift") == [("identity-add", bob)]
    # the paths of alice (in place) and bob (pending) are distinct: one principal each
    assert sorted((p.status, p.principals) for p in report.paths) == [(ACTIVE, 1)] * 2 + [(PENDING, 1)] * 2


def test_a_principal_gone_from_iam_is_removing() -> None:
    world = World(users=[user("alice", GROUP), user("bob", GROUP)]).converge()
    world.users = [u for u in world.users if u.name != "alice"]
    report = world.report()
    alice = row(report, "alice")
    assert not alice.in_iam and alice.mechanisms == ("aws-auth",)
    assert cells(report, "alice") == {ns: ((POD_READER, REMOVING),) for ns in PROJECTS}
    assert ("identity-remove", f"arn:aws:iam::{ACCOUNT}:user/alice") in reasons(report, "drift")


def test_a_tag_grant_is_its_own_path_and_a_denied_namespace_is_a_refusal() -> None:
    tags = {f"eks-access/{NS3}": "pods-ro", "eks-access/kube-system": "pods-ro"}
    world = World(users=[user("carol", tags=tags)]).converge()
    report = world.report()
    assert cells(report, "carol") == {NS3: ((POD_READER, ACTIVE),)}
    [path] = report.paths
    assert (
        path.origin == f"IAM tag eks-access/{NS3}=pods-ro" and path.subject == "Kubernetes user eks-iam-sync:user:carol"
    )
    [refusal] = report.findings_of("refusal")
    assert refusal.reason == "denied-namespace" and refusal.principal.endswith(":user/carol")
    assert "kube-system" in refusal.message


def test_a_foreign_mapping_into_the_group_is_a_row_not_managed_and_a_finding() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    assert world.aws_auth is not None
    mallory = (
        f"- userarn: arn:aws:iam::{ACCOUNT}:user/mallory\n  username: mallory\n"
        f"  groups: [{KUBERNETES_GROUP}, system:masters]\n"
    )
    auditor = f"- rolearn: {META.read_by}\n  username: auditor\n  groups: [auditors]\n"
    data = {
        **world.aws_auth.data,
        "mapUsers": world.aws_auth.data["mapUsers"] + mallory,
        "mapRoles": world.aws_auth.data["mapRoles"] + auditor,
    }
    world.aws_auth = ObservedConfigMap("kube-system", "aws-auth", data, world.aws_auth.annotations, "3")
    report = world.report()
    row_ = row(report, "mallory")
    assert row_.mechanisms == ("not managed",) and not row_.in_iam
    # system:masters reaches every namespace (the API server asks no RBAC), the group its RoleBindings
    masters = (("system:masters", ACTIVE),)
    assert cells(report, "mallory") == {
        **{ns: masters for ns in world.namespaces},
        **{ns: ((POD_READER, ACTIVE), *masters) for ns in PROJECTS},
    }
    path = next(p for p in report.paths if p.id in row_.cells[0].paths and p.kind == "RoleBinding")
    assert not path.managed and path.origin == f"aws-auth mapUsers entry for arn:aws:iam::{ACCOUNT}:user/mallory"
    assert path.foreign
    foreign = {(f.reason, f.severity) for f in report.findings_of("foreign")}
    assert foreign == {("cluster-admin", "warning"), ("node", "info"), ("reader", "info")}
    assert reasons(report, "risk") == [("critical", f"arn:aws:iam::{ACCOUNT}:user/mallory")]
    assert report.findings_of("drift") == ()  # foreign entries are never changed


def test_a_foreign_entry_for_a_wanted_principal_is_a_conflict_and_what_eks_uses() -> None:
    foreign = (
        f"- userarn: arn:aws:iam::{ACCOUNT}:user/alice\n  username: alice-by-hand\n  groups: [{KUBERNETES_GROUP}]\n"
    )
    world = World(users=[user("alice", GROUP)])
    world.aws_auth = ObservedConfigMap(
        "kube-system", "aws-auth", {"mapRoles": NODE_ENTRY, "mapUsers": foreign}, {}, "1"
    )
    world.converge()
    report = world.report()
    assert reasons(report, "conflict") == [("not-owned", f"arn:aws:iam::{ACCOUNT}:user/alice")]
    assert row(report, "alice").mechanisms == ("not managed",)
    assert row(report, "alice").usernames == ("alice-by-hand",)
    assert report.findings_of("cannot-authenticate") == ()  # the foreign entry authenticates alice


def test_access_entries_a_stale_entry_authenticates_nobody_and_is_recreated() -> None:
    world = World(users=[user("alice", GROUP), user("bob", GROUP)], mode="API").converge()
    # alice was deleted and recreated under the same ARN: a new unique id
    world.users[0] = user("alice", GROUP, uid="AIDANEWALICE")
    world.entries[NODE_ROLE.lower()] = ObservedAccessEntry(
        NODE_ROLE, "system:node:{{EC2PrivateDNSName}}", (), "EC2_LINUX"
    )
    report = world.report()
    alice = f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert reasons(report, "cannot-authenticate") == [("stale-entry", alice)]
    assert cells(report, "alice") == {ns: ((POD_READER, PENDING),) for ns in PROJECTS}
    assert cells(report, "bob") == {ns: ((POD_READER, ACTIVE),) for ns in PROJECTS}
    assert row(report, "bob").mechanisms == ("access entry",)
    assert ("identity-recreate", alice) in reasons(report, "drift")
    assert reasons(report, "foreign") == [("node", NODE_ROLE)]
    [summary] = report.clusters
    assert summary.backend == "accessEntries" and [m.what for m in summary.measures] == ["access entries"]
    assert report.findings_of("size")[0].message == "access entries: 3 entries of 3000 entries (0.1%)"


def test_api_and_config_map_an_access_entry_shadows_a_different_aws_auth_mapping() -> None:
    world = World(users=[user("alice", GROUP)], mode="API_AND_CONFIG_MAP").converge()
    stray = f"- userarn: arn:aws:iam::{ACCOUNT}:user/alice\n  username: old-alice\n  groups: [old-group]\n"
    world.aws_auth = ObservedConfigMap("kube-system", "aws-auth", {"mapRoles": NODE_ENTRY, "mapUsers": stray}, {}, "5")
    report = world.report()
    [shadowed] = [f for f in report.findings_of("warning") if f.reason == "aws-auth-shadowed"]
    assert "old-alice" in shadowed.message and "EKS uses the access entry" in shadowed.message
    assert cells(report, "alice") == {ns: ((POD_READER, ACTIVE),) for ns in PROJECTS}


def test_a_missing_access_entry_when_aws_auth_still_maps_the_principal_is_not_an_outage() -> None:
    world = World(users=[user("alice", GROUP)], mode="API_AND_CONFIG_MAP", backend="configMap").converge()
    world.backend = "auto"  # moving to access entries: none exists yet, aws-auth still maps alice
    report = world.report()
    assert report.findings_of("cannot-authenticate") == ()
    alice = row(report, "alice")
    assert alice.mechanisms == ("aws-auth", "access entry")
    # now through aws-auth; after a reconcile through the access entry
    statuses = {p.mechanism: p.status for p in report.paths if p.id in alice.cells[0].paths}
    assert statuses == {"aws-auth": REMOVING, "access entry": PENDING}
    assert cells(report, "alice") == {ns: ((POD_READER, ACTIVE),) for ns in PROJECTS}  # access all along


def test_aws_auth_size_against_its_limits() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    assert world.aws_auth is not None
    big = {**world.aws_auth.data, "padding": "x" * 900_000}
    world.aws_auth = ObservedConfigMap("kube-system", "aws-auth", big, world.aws_auth.annotations, "9")
    sizes = {f.reason: (f.severity, f.message) for f in world.report().findings_of("size")}
    assert sizes["aws-auth-data"] == ("warning", "aws-auth data: 879.2 KiB of 1.00 MiB (85.9%)")
    assert sizes["aws-auth-annotations"][0] == "info"


def test_an_unreadable_aws_auth_is_a_refusal_and_its_problems_are_findings() -> None:
    world = World(users=[user("alice", GROUP)])
    world.aws_auth = ObservedConfigMap("kube-system", "aws-auth", {"mapUsers": "- userarn: [unclosed\n"}, {}, "1")
    report = world.report()
    assert ("current-not-understood", "") in reasons(report, "refusal")
    assert any(f.severity == "error" for f in report.findings_of("aws-auth"))
    [(reason, _)] = reasons(report, "cannot-authenticate")
    message = report.findings_of("cannot-authenticate")[0].message
    assert reason == "missing" and "once this is lifted" in message


def test_a_cluster_not_read_is_a_finding_and_the_others_are_reported() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    failed = ClusterFailed("bttrm-eks-dev-1", "eu-west-1", "TransientError: read timed out", "transient")
    report = build_report(world.config, world.snapshot, [world.read(), failed], META)
    assert [(c.name, c.status) for c in report.clusters] == [("bttrm-eks-dev-0", "read"), ("bttrm-eks-dev-1", "failed")]
    [finding] = report.findings_of("cluster-failed")
    assert finding.severity == "error" and "read timed out" in finding.message
    assert report.failed == (report.clusters[1],)


def test_json_is_the_same_model() -> None:
    world = World(users=[user("alice", GROUP)]).converge()
    world.users.append(user("bob", GROUP))
    report = world.report()
    document = json.loads(json.dumps(as_json(report)))
    assert document["schema"] == "eks-iam-sync/access-report/v2"
    assert document["configuration"] == {"source": "config.yaml", "sha256": "ab" * 32}
    alice = next(p for p in document["principals"] if p["name"] == "alice")
    assert [(a["namespace"], a["status"], a["clusterRoles"]) for a in alice["access"]] == [
        (ns, "active", [{"name": POD_READER, "status": "active"}]) for ns in PROJECTS
    ]
    path = next(p for p in document["paths"] if p["id"] == alice["access"][0]["paths"][0])
    assert path["chain"][0] == {"step": "granted by", "what": f"IAM group {GROUP}"}
    assert {f["kind"] for f in document["findings"]} >= {"drift", "cannot-authenticate", "foreign", "size"}
    assert document["clusters"][0]["limits"][0]["what"] == "aws-auth data"


@pytest.mark.parametrize(
    ("arn", "key", "kind"),
    [
        (f"arn:aws:iam::{ACCOUNT}:user/eng/Alice", f"arn:aws:iam::{ACCOUNT}:user/eng/alice", "user"),
        (f"arn:aws:iam::{ACCOUNT}:role/ops/Deploy", f"arn:aws:iam::{ACCOUNT}:role/deploy", "role"),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/s1", f"arn:aws:iam::{ACCOUNT}:role/deploy", "role"),
        (
            f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_ReadOnly_0123456789abcdef",
            f"arn:aws:iam::{ACCOUNT}:role/awsreservedsso_readonly_0123456789abcdef",
            "permission set",
        ),
        ("not an arn", "not an arn", "other"),
    ],
)
def test_principal_keys_match_iam_aws_auth_and_access_entries(arn: str, key: str, kind: str) -> None:
    assert principal_key(arn) == key and principal_kind(arn) == kind
