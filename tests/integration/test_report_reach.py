"""``eks-iam-sync report`` on a real apiserver registered in the EKS emulator (API_AND_CONFIG_MAP), read
through an admin kubeconfig: every path to a namespace, not only the service's (issue 23, item 1).

Someone maps mallory into system:masters by hand, binds the seed's Kubernetes group to cluster-admin
with a ClusterRoleBinding, and gives the cluster creator's role an access entry holding
AmazonEKSClusterAdminPolicy; a user of the seed group is mapped by eks-iam-sync (``apply``). Each of
these is a row of the report, counted in every namespace the apiserver lists; the service's own
identity (its access entry, its shipped RBAC) is rated critical. And the report writes nothing: the
apiserver's objects and the emulator's entries are the same afterwards."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client

from chalicelib.config import DEFAULT_CONFIG_PATH
from chalicelib.entry.cli import main
from tests.harness.eks_emulator import EksEmulator
from tests.harness.kube import ControlPlane
from tests.harness.principals import write_aws_auth
from tests.harness.service import (
    NODE_ROLE,
    SEED_GROUP,
    Service,
    bootstrap_access_entry_cluster,
    reset_iam_grants,
)
from tests.harness.stack import start_cluster

pytestmark = pytest.mark.cluster

NAME, REGION = "bttrm-eks-report-0", "us-east-2"
KUBERNETES_GROUP = "rbac-bttrm-web-ro-group"
MALLORY = "arn:aws:iam::123456789012:user/mallory"
POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


@dataclass
class World:
    plane: ControlPlane
    config: Path
    kubeconfig: Path
    member: str  # the seed group's user, mapped by eks-iam-sync
    creator: str  # the cluster creator's role ARN


@pytest.fixture(scope="module")
def plane(aws_endpoint: str, eks: EksEmulator, service: Service) -> Iterator[ControlPlane]:
    with ExitStack() as stack:
        found, _ = start_cluster(stack, aws_endpoint, NAME, eks=eks, mode="API_AND_CONFIG_MAP")
        bootstrap_access_entry_cluster(found, NAME, service.role_arn, REGION)
        yield found


@pytest.fixture
def world(plane: ControlPlane, tmp_path: Path) -> Iterator[World]:
    iam, eks = boto3.client("iam"), boto3.client("eks", region_name=REGION)
    reset_iam_grants(SEED_GROUP)
    member = f"rita-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=member)
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=member)
    role = f"cluster-creator-{uuid.uuid4().hex[:6]}"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "*"}]}
    creator = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    seed = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    seed["clusters"] = [
        {"name": NAME, "region": REGION, "endpoint": plane.endpoint, "certificateAuthorityData": plane.ca_data}
    ]
    config = tmp_path / "eks-iam-sync.yaml"
    config.write_text(yaml.safe_dump(seed))
    kubeconfig = plane.admin_kubeconfig(tmp_path / "kubeconfig")
    assert main(["apply", "--config", str(config), "--kubeconfig", str(kubeconfig)]) == 0

    # Outside eks-iam-sync:
    masters: dict[str, object] = {"userarn": MALLORY, "username": "mallory", "groups": ["system:masters"]}
    write_aws_auth(plane, map_roles=[NODE_ROLE], map_users=[masters])
    rbac = client.RbacAuthorizationV1Api(plane.admin())
    rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name="platform-admins"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"),
            subjects=[client.RbacV1Subject(api_group="rbac.authorization.k8s.io", kind="Group", name=KUBERNETES_GROUP)],
        )
    )
    eks.create_access_entry(clusterName=NAME, principalArn=creator, type="STANDARD")
    eks.associate_access_policy(
        clusterName=NAME, principalArn=creator, policyArn=POLICY, accessScope={"type": "cluster"}
    )
    yield World(plane, config, kubeconfig, member, creator)
    rbac.delete_cluster_role_binding("platform-admins")
    eks.delete_access_entry(clusterName=NAME, principalArn=creator)
    iam.remove_user_from_group(GroupName=SEED_GROUP, UserName=member)


def state(world: World) -> tuple[Any, ...]:
    """What a write would change: aws-auth, every binding's resourceVersion, every access entry."""
    core, rbac = client.CoreV1Api(world.plane.admin()), client.RbacAuthorizationV1Api(world.plane.admin())
    aws_auth = core.read_namespaced_config_map("aws-auth", "kube-system").metadata.resource_version
    bindings = sorted(
        (b.metadata.namespace, b.metadata.name, b.metadata.resource_version)
        for b in rbac.list_role_binding_for_all_namespaces().items
    )
    cluster_bindings = sorted(
        (b.metadata.name, b.metadata.resource_version) for b in rbac.list_cluster_role_binding().items
    )
    eks = boto3.client("eks", region_name=REGION)
    entries = sorted(eks.list_access_entries(clusterName=NAME)["accessEntries"])
    return aws_auth, bindings, cluster_bindings, entries


def test_every_path_is_a_row_counted_in_every_namespace(world: World, tmp_path: Path) -> None:
    before = state(world)
    output = tmp_path / "access.json"
    args = ["report", "--config", str(world.config), "--kubeconfig", str(world.kubeconfig), "--format", "json"]
    assert main([*args, "--output", str(output)]) == 0
    assert state(world) == before, "the report wrote something"
    document = json.loads(output.read_text())
    namespaces = {ns.metadata.name for ns in client.CoreV1Api(world.plane.admin()).list_namespace().items}
    principals = {p["name"]: p for p in document["principals"]}

    def reach(name: str) -> dict[str, list[str]]:
        return {a["namespace"]: [r["name"] for r in a["clusterRoles"]] for a in principals[name]["access"]}

    assert [f for f in document["findings"] if f["kind"] in ("incomplete", "cluster-failed")] == []
    # the hand-made system:masters entry (aws-auth is read too in API_AND_CONFIG_MAP)
    # (the apiserver's own ClusterRoleBinding cluster-admin binds system:masters too: both are paths)
    assert reach("mallory") == {ns: ["cluster-admin", "system:masters"] for ns in namespaces}
    # the foreign ClusterRoleBinding of the group eks-iam-sync maps the member into
    member = reach(world.member)
    assert set(member) == namespaces and all("cluster-admin" in roles for roles in member.values())
    assert principals[world.member]["mechanisms"] == ["access entry"]
    # one path per chain to it (the apiserver is shared with other tests: other members of the group
    # may reach it through other mechanisms), each marked outside eks-iam-sync and cluster-wide
    crbs = [
        p for p in document["paths"] if p["grant"] == "ClusterRoleBinding" and p["roleBinding"] == "platform-admins"
    ]
    assert crbs and all(crb["grantedOutside"] and crb["namespace"] == "*" for crb in crbs)
    # the access entry holding AmazonEKSClusterAdminPolicy, as ListAssociatedAccessPolicies says
    creator = world.creator.rsplit("/", 1)[-1]
    assert reach(creator) == {ns: ["AmazonEKSClusterAdminPolicy"] for ns in namespaces}
    assert principals[creator]["risk"] == "critical" and principals[creator]["clusterWide"] == [NAME]
    # each counted in every namespace
    counts = {n["namespace"]: n["principals"] for n in document["namespaces"]}
    for namespace in namespaces:
        assert counts[namespace] >= 3, namespace
    # the service's own identity, rated from its shipped RBAC (bind, RoleBinding writes everywhere)
    service = [f for f in document["findings"] if f["kind"] == "risk" and f["reason"] == "service-identity"]
    assert len(service) == 1 and "creates access entries" in service[0]["message"]
    assert "bind" in service[0]["message"]
