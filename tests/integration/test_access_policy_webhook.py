"""The harness's EKS access-policy authorization on a real apiserver: a cluster in API mode whose
kube-apiserver runs ``--authorization-mode=Webhook,RBAC`` with tests/harness/authorizer.py's webhook
reading the EKS emulator's associations. A member's own token, and no RoleBinding anywhere, proves
what an association grants, in which namespaces, and that replacing its scope in one
AssociateAccessPolicy call never leaves a moment without access."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.harness.access_policies import RULES, Association, Request, granting, policy_arn
from tests.harness.authorizer import AccessPolicyAuthorizer
from tests.harness.eks_emulator import EksEmulator
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, can, eventually, iam_user, role_session
from tests.harness.probe import Probe
from tests.harness.probe import list_status as status
from tests.harness.service import ensure_namespace
from tests.harness.stack import start_cluster

if TYPE_CHECKING:
    from mypy_boto3_eks import EKSClient
    from mypy_boto3_eks.type_defs import AccessScopeTypeDef

pytestmark = pytest.mark.cluster

CLUSTER = "bttrm-eks-policies-0"
REGION = "us-east-2"
A, B, TEAM = "pol-a", "pol-b", "pol-team-"
VIEW, EDIT, ADMIN = (
    policy_arn("AmazonEKSViewPolicy"),
    policy_arn("AmazonEKSEditPolicy"),
    policy_arn("AmazonEKSAdminPolicy"),
)
ADMIN_VIEW, CLUSTER_ADMIN = policy_arn("AmazonEKSAdminViewPolicy"), policy_arn("AmazonEKSClusterAdminPolicy")


@dataclass
class PolicyCluster:
    plane: ControlPlane
    eks: EksEmulator
    aws: EKSClient  # boto3's EKS client, reaching the emulator

    def member(self) -> Principal:
        """A new IAM user with an access entry of its own: no Kubernetes groups, nothing bound."""
        user = iam_user(f"pol-{uuid.uuid4().hex[:8]}")
        self.aws.create_access_entry(clusterName=CLUSTER, principalArn=user.arn)
        return user

    def associate(self, who: Principal, policy: str, *namespaces: str) -> None:
        scope: AccessScopeTypeDef = (
            {"type": "namespace", "namespaces": list(namespaces)} if namespaces else {"type": "cluster"}
        )
        self.aws.associate_access_policy(clusterName=CLUSTER, principalArn=who.arn, policyArn=policy, accessScope=scope)

    def api(self, who: Principal) -> client.ApiClient:
        return self.plane.client_for(who.token(CLUSTER, REGION))


@pytest.fixture(scope="module")
def cluster(aws_endpoint: str, eks: EksEmulator) -> Iterator[PolicyCluster]:
    with ExitStack() as stack:
        plane, _ = start_cluster(stack, aws_endpoint, CLUSTER, eks=eks, mode="API", region=REGION, access_policies=True)
        for namespace in (A, B):
            ensure_namespace(plane, namespace)
        yield PolicyCluster(plane, eks, boto3.client("eks", region_name=REGION))


def can_rbac(api: client.ApiClient, verb: str, resource: str, namespace: str) -> bool:
    """`kubectl auth can-i verb resource.rbac.authorization.k8s.io -n namespace` (``can`` asks the core group)."""
    attributes = client.V1ResourceAttributes(
        verb=verb, group="rbac.authorization.k8s.io", resource=resource, namespace=namespace
    )
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
    return bool(client.AuthorizationV1Api(api).create_self_subject_access_review(review).status.allowed)


def test_a_view_association_alone_grants_listing_pods_in_its_namespaces(cluster: PolicyCluster) -> None:
    member = cluster.member()
    assert status(cluster.api(member), A) == 403  # an entry alone grants nothing
    for namespace in (A, B):
        assert client.RbacAuthorizationV1Api(cluster.plane.admin()).list_namespaced_role_binding(namespace).items == []
    calls = len(cluster.eks.calls_to("AssociateAccessPolicy", "DisassociateAccessPolicy", cluster=CLUSTER))

    cluster.associate(member, VIEW, A)
    api = cluster.api(member)
    assert (status(api, A), status(api, B)) == (200, 403)
    assert status(api, A, "secrets") == 403  # View does not read secrets
    assert not can(api, "create", "pods", A) and can(api, "watch", "pods", A)
    core = client.CoreV1Api(api)
    assert core.read_namespace(A).metadata.name == A  # the apiserver gives `get namespace a` the namespace a
    for refused in (lambda: core.read_namespace(B), core.list_namespace):
        with pytest.raises(ApiException) as info:
            refused()
        assert info.value.status == 403  # another namespace; a cluster-wide list is outside a namespace scope

    cluster.associate(member, VIEW, A, B)  # the new scope, in one call
    log = cluster.eks.calls_to("AssociateAccessPolicy", "DisassociateAccessPolicy", cluster=CLUSTER)[calls:]
    assert [c.operation for c in log] == ["AssociateAccessPolicy", "AssociateAccessPolicy"]
    assert cluster.eks.associations(CLUSTER, member.arn) == [Association(VIEW, "namespace", (A, B))]
    api = cluster.api(member)
    assert (status(api, A), status(api, B)) == (200, 200)

    cluster.aws.disassociate_access_policy(clusterName=CLUSTER, principalArn=member.arn, policyArn=VIEW)
    api = cluster.api(member)
    assert (status(api, A), status(api, B)) == (403, 403)
    assert cluster.plane.authorizer is not None
    allowed = [d for d in cluster.plane.authorizer.decisions if d.allowed and d.user == member.arn]
    assert allowed and all("AmazonEKSViewPolicy" in d.reason for d in allowed)


def test_a_probe_never_sees_a_denied_while_the_scope_changes(cluster: PolicyCluster) -> None:
    member = cluster.member()
    cluster.associate(member, VIEW, A)
    api = cluster.api(member)  # one token for the probe: tokens are minted at most once a second
    assert status(api, A) == 200
    with Probe(lambda: status(api, A)) as probe:
        time.sleep(1.0)
        changed_at = time.monotonic()
        cluster.associate(member, VIEW, A, B)
        assert eventually(lambda: status(api, B) == 200, timeout=5)
        time.sleep(1.0)
    before, after = probe.answers(until=changed_at), probe.answers(since=changed_at)
    assert len(before) >= 5 and len(after) >= 5 and not probe.errors, (len(before), len(after), probe.errors)
    assert set(before + after) == {200}, probe.seen


def test_the_probe_sees_the_gap_of_a_disassociate_then_associate(cluster: PolicyCluster) -> None:
    """What other tools do (remove, then add with the new scope) leaves a moment without access; the
    probe of the test above would see it, so its silence there means something."""
    member = cluster.member()
    cluster.associate(member, VIEW, A)
    api = cluster.api(member)
    with Probe(lambda: status(api, A)) as probe:
        time.sleep(0.5)
        cluster.aws.disassociate_access_policy(clusterName=CLUSTER, principalArn=member.arn, policyArn=VIEW)
        time.sleep(0.5)  # a slow second call; any gap is enough for a request to fall in
        cluster.associate(member, VIEW, A, B)
        time.sleep(0.5)
    statuses = probe.answers()
    assert 403 in statuses and statuses[0] == 200 and statuses[-1] == 200, statuses


def test_a_role_session_with_a_path_is_authorized_by_its_role_entry(cluster: PolicyCluster) -> None:
    """A role's entry keeps the role's path; its sessions (``AROA…:session``) are found by the role's
    unique id and canonical ARN, as the authenticator finds them."""
    assumer = iam_user(f"pol-assumer-{uuid.uuid4().hex[:6]}")
    session = role_session(assumer, f"pol-role-{uuid.uuid4().hex[:6]}", "dev@example.com", path="/teams/web/")
    cluster.aws.create_access_entry(clusterName=CLUSTER, principalArn=session.arn)
    cluster.associate(session, VIEW, A)
    api = cluster.api(session)
    assert (status(api, A), status(api, B)) == (200, 403)
    assert status(cluster.api(assumer), A) == 401  # the assumer has no entry of its own


def test_each_policy_grants_what_the_user_guide_lists(cluster: PolicyCluster) -> None:
    edit, admin, admin_view, cluster_admin = (cluster.member() for _ in range(4))
    cluster.associate(edit, EDIT, TEAM + "*")
    cluster.associate(admin, ADMIN, A)
    cluster.associate(admin_view, ADMIN_VIEW)
    cluster.associate(cluster_admin, CLUSTER_ADMIN)
    later = TEAM + uuid.uuid4().hex[:6]
    ensure_namespace(cluster.plane, later)  # created after the association: a wildcard scope covers it

    api = cluster.api(edit)
    assert can(api, "create", "pods", later) and can(api, "create", "secrets", later)
    assert can(api, "impersonate", "serviceaccounts", later) and can(api, "deletecollection", "configmaps", later)
    client.CoreV1Api(api).create_namespaced_config_map(
        later, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="by-policy"), data={"a": "b"})
    )
    assert not can_rbac(api, "list", "rolebindings", later) and not can(api, "list", "pods", A)

    api = cluster.api(admin)
    assert can_rbac(api, "list", "rolebindings", A) and can_rbac(api, "create", "roles", A)
    assert status(api, A, "secrets") == 200 and not can_rbac(api, "escalate", "roles", A)
    assert not can(api, "list", "pods", B) and not can(api, "list", "nodes")

    api = cluster.api(admin_view)
    assert status(api, B, "secrets") == 200 and can(api, "list", "nodes") and not can(api, "create", "pods", A)

    api = cluster.api(cluster_admin)
    assert (
        can(api, "delete", "nodes") and can(api, "create", "clusterrolebindings") and can(api, "escalate", "roles", A)
    )
    assert client.CoreV1Api(api).list_node().items == []


def test_what_the_policy_authorizer_does_not_see(cluster: PolicyCluster) -> None:
    """As the user guide says of EKS: `kubectl auth can-i --list` (a rules review) shows RBAC only, and
    an impersonated user has no access-policy permissions."""
    member = cluster.member()
    cluster.associate(member, VIEW, A)
    api = cluster.api(member)
    assert status(api, A) == 200 and can(api, "list", "pods", A)  # can-i for one verb asks the chain
    rules = client.AuthorizationV1Api(api).create_self_subject_rules_review(
        client.V1SelfSubjectRulesReview(spec=client.V1SelfSubjectRulesReviewSpec(namespace=A))
    )
    assert not any("pods" in (r.resources or []) for r in rules.status.resource_rules)
    impersonating = cluster.plane.admin()
    impersonating.set_default_header("Impersonate-User", member.arn)
    assert status(impersonating, A) == 403


def test_the_decision_without_an_apiserver() -> None:
    """The authorizer's rules on plain data: scope, wildcard, cluster-scoped requests, no identity."""
    user, principal = "arn:aws:iam::123456789012:user/u", "AIDAEXAMPLE"
    table = {(user, principal): [Association(VIEW, "namespace", ("a", "team-*"))]}
    authorizer = AccessPolicyAuthorizer(lambda arn, pid: table.get((arn, pid)))
    extra = {"canonicalArn": [user], "principalId": [principal]}

    def ask(verb: str, namespace: str, resource: str, subresource: str = "") -> dict[str, Any]:
        attributes = {"verb": verb, "namespace": namespace, "resource": resource, "subresource": subresource}
        return authorizer.review({"user": user, "extra": extra, "resourceAttributes": attributes})

    assert ask("list", "a", "pods")["allowed"] and ask("get", "team-x", "pods", subresource="log")["allowed"]
    for verb, namespace, resource in (("list", "b", "pods"), ("create", "a", "pods"), ("get", "a", "secrets")):
        answer = ask(verb, namespace, resource)
        assert answer["allowed"] is False and "denied" not in answer, (verb, namespace, resource)
    assert ask("list", "", "nodes")["allowed"] is False  # a namespace scope reaches no cluster-scoped resource
    no_identity = authorizer.review(
        {"user": user, "resourceAttributes": {"verb": "list", "namespace": "a", "resource": "pods"}}
    )
    assert no_identity["allowed"] is False and "impersonated" in no_identity["reason"]
    assert granting([Association(CLUSTER_ADMIN, "cluster", ())], Request("get", path="/metrics"))
    assert not granting([Association(CLUSTER_ADMIN, "namespace", ("a",))], Request("get", path="/metrics"))
    assert set(RULES) == {
        "AmazonEKSViewPolicy",
        "AmazonEKSEditPolicy",
        "AmazonEKSAdminPolicy",
        "AmazonEKSAdminViewPolicy",
        "AmazonEKSClusterAdminPolicy",
    }
