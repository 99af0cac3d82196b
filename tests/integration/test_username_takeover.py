"""Issue 24, item 1, on the real apiserver: a ClusterRoleBinding someone else made binds User
<name> to cluster-admin; an IAM role (through a tag grant) or user (through a configured group) of
that very name is mapped by the service, reconciled AS THE SERVICE, and its sessions ask the
apiserver what they may do with their own EKS tokens. They get the tag's or group's grants and
nothing of the foreign binding: the username the service writes is under its own prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import boto3
import pytest
import yaml
from kubernetes import client

from chalicelib.adapters.iam import IamReader
from chalicelib.adapters.observability import LogObserver
from chalicelib.adapters.shell import ports_for
from chalicelib.config import DEFAULT_CONFIG_PATH, load_config
from chalicelib.run.reconcile import ClusterReport, Options, reconcile_cluster
from tests.conftest import Environment
from tests.harness.eks_emulator import EksEmulator
from tests.harness.function import deployed
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, can, eventually, forbidden_as, iam_user, role_session
from tests.harness.service import (
    SEED_GROUP,
    Service,
    bootstrap_access_entry_cluster,
    prepare_seed_cluster,
    reset_iam_grants,
)
from tests.harness.stack import start_cluster

pytestmark = pytest.mark.cluster

SEED = load_config(DEFAULT_CONFIG_PATH)
PROJECTS = tuple(SEED.namespace_grants[0].namespaces or ())
TAGGED_NS = "team-takeover"


@pytest.fixture
def foreign_admin(env: Environment, service: Service) -> Iterator[str]:
    """The subject of a ClusterRoleBinding the service did not make: User <name> is cluster-admin."""
    prepare_seed_cluster(env.plane, service, extra_namespaces=(TAGGED_NS,))
    name = f"ops-admin-{uuid.uuid4().hex[:6]}"
    rbac = client.RbacAuthorizationV1Api(env.admin())
    rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=f"break-glass-{name}"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"),
            subjects=[client.RbacV1Subject(kind="User", name=name, api_group="rbac.authorization.k8s.io")],
        )
    )
    yield name
    rbac.delete_cluster_role_binding(f"break-glass-{name}")


def reconcile(env: Environment, service: Service) -> ClusterReport:
    ports = ports_for(env.cluster_name, service.api(env.plane, env.cluster_name), None)
    settings = Options(own_arns=frozenset({service.role_arn}))
    return reconcile_cluster(SEED, ports, IamReader().full_snapshot(), LogObserver(env.cluster_name), None, settings)


def allowed(env: Environment, username: str, verb: str, resource: str, namespace: str | None = None) -> bool:
    """`kubectl auth can-i --as <username>`: a SubjectAccessReview asked by the administrator."""
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=username,
            resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace),
        )
    )
    return bool(client.AuthorizationV1Api(env.admin()).create_subject_access_review(review).status.allowed)


def test_a_tag_granted_role_named_like_a_foreign_admin_gets_only_its_tag(
    env: Environment, service: Service, foreign_admin: str
) -> None:
    assert allowed(env, foreign_admin, "list", "secrets", "kube-system")  # the foreign binding works for its subject
    assumer = iam_user(f"assumer-{uuid.uuid4().hex[:6]}")
    session = role_session(assumer, foreign_admin, "attacker")
    iam = boto3.client("iam")
    iam.tag_role(RoleName=foreign_admin, Tags=[{"Key": f"eks-access/{TAGGED_NS}", "Value": "pods-ro"}])
    try:
        report = reconcile(env, service)
        mapped = f"eks-iam-sync:role:{foreign_admin}"
        assert [o.entry.username for o in report.desired.identities if o.iam_arn == session.arn] == [mapped]
        assert report.applied.bindings.refused == [] and report.applied.bindings.failed == []
        assert_only_the_grant(env, session, mapped, TAGGED_NS)
    finally:  # the IAM emulator is shared by the session: no tag grant left for later tests
        iam.untag_role(RoleName=foreign_admin, TagKeys=[f"eks-access/{TAGGED_NS}"])


def test_a_group_member_named_like_a_foreign_admin_gets_only_the_group_s_grants(
    env: Environment, service: Service, foreign_admin: str
) -> None:
    person = iam_user(foreign_admin)
    boto3.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=foreign_admin)

    reconcile(env, service)
    assert_only_the_grant(env, person, f"eks-iam-sync:user:{foreign_admin}", PROJECTS[0])


def assert_only_the_grant(env: Environment, who: Principal, mapped: str, namespace: str) -> None:
    api = env.plane.client_for(who.token(env.cluster_name))
    assert f'User "{mapped}"' in forbidden_as(api)  # the apiserver knows the session by the service's name
    assert eventually(lambda: can(api, "list", "pods", namespace))
    for verb, resource, where in (
        ("list", "secrets", "kube-system"),
        ("create", "pods", namespace),
        ("get", "nodes", None),
    ):
        assert not can(api, verb, resource, where)
        assert not allowed(env, mapped, verb, resource, where)


API_CLUSTER = "bttrm-eks-takeover-api-0"


@pytest.fixture(scope="module")
def api_cluster(aws_endpoint: str, eks: EksEmulator, service: Service) -> Iterator[ControlPlane]:
    """A cluster in API mode: identities are access entries, the service bootstrapped as EKS needs."""
    with ExitStack() as stack:
        plane, _ = start_cluster(stack, aws_endpoint, API_CLUSTER, eks=eks, mode="API")
        bootstrap_access_entry_cluster(plane, API_CLUSTER, service.role_arn, extra_namespaces=(TAGGED_NS,))
        yield plane


def test_on_access_entries_a_tag_granted_role_named_like_a_foreign_admin_gets_only_its_tag(
    api_cluster: ControlPlane, eks: EksEmulator, service: Service, tmp_path: Path
) -> None:
    reset_iam_grants(SEED_GROUP)
    name = f"ops-admin-{uuid.uuid4().hex[:6]}"
    rbac = client.RbacAuthorizationV1Api(api_cluster.admin())
    rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=f"break-glass-{name}"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"),
            subjects=[client.RbacV1Subject(kind="User", name=name, api_group="rbac.authorization.k8s.io")],
        )
    )
    session = role_session(iam_user(f"assumer-{uuid.uuid4().hex[:6]}"), name, "attacker")
    iam = boto3.client("iam")
    iam.tag_role(RoleName=name, Tags=[{"Key": f"eks-access/{TAGGED_NS}", "Value": "pods-ro"}])
    config = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    config["clusters"] = [
        {
            "name": API_CLUSTER,
            "region": "us-east-2",
            "endpoint": api_cluster.endpoint,
            "certificateAuthorityData": api_cluster.ca_data,
        }
    ]
    try:
        with deployed(service, yaml.safe_dump(config), tmp_path) as fn:
            result = fn.invoke("reconcile_all")
        assert result["clusters"][API_CLUSTER]["backend"] == "accessEntries"
        entry = eks.entry_for(API_CLUSTER, session.arn)
        mapped = f"eks-iam-sync:role:{name}"
        assert entry is not None and entry.username == mapped
        api = api_cluster.client_for(session.token(API_CLUSTER))
        assert f'User "{mapped}"' in forbidden_as(api)
        assert eventually(lambda: can(api, "list", "pods", TAGGED_NS))
        assert not can(api, "list", "secrets", "kube-system") and not can(api, "create", "pods", TAGGED_NS)
    finally:
        iam.untag_role(RoleName=name, TagKeys=[f"eks-access/{TAGGED_NS}"])
        rbac.delete_cluster_role_binding(f"break-glass-{name}")
