"""The service as it runs in a cluster: its own IAM role (assumed, in the emulator), mapped in
aws-auth to the Kubernetes group eks-iam-sync, holding only infra/kubernetes/rbac.yaml."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import boto3
from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from chalicelib.model.ownership import MANAGED_BY_SELECTOR, SERVICE_GROUP, SERVICE_USERNAME
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, iam_user, role_session, write_aws_auth

MANIFEST = Path(__file__).parents[2] / "infra" / "kubernetes" / "rbac.yaml"
NODE_ROLE: dict[str, object] = {
    "rolearn": "arn:aws:iam::123456789012:role/eks-node-group",
    "username": "system:node:{{EC2PrivateDNSName}}",
    "groups": ["system:bootstrappers", "system:nodes"],
}


@dataclass
class Service:
    principal: Principal  # the function role's session
    role_arn: str  # canonical: arn:aws:iam::ACCOUNT:role/NAME

    def api(self, plane: ControlPlane, cluster: str) -> client.ApiClient:
        return plane.client_for(self.principal.token(cluster))


def install_service(plane: ControlPlane, role_name: str = "eks-iam-sync-function") -> Service:
    utils.create_from_yaml(plane.admin(), str(MANIFEST))
    deployer = iam_user(f"{role_name}-deployer")
    session = role_session(deployer, role_name, "eks-iam-sync")
    return Service(session, session.arn)


def reset_aws_auth(plane: ControlPlane) -> None:
    """No aws-auth, no backups: the state of a cluster before anyone mapped anything."""
    core = client.CoreV1Api(plane.admin())
    for cm in core.list_namespaced_config_map("kube-system").items:
        if cm.metadata.name == "aws-auth" or cm.metadata.name.startswith("eks-iam-sync-"):
            core.delete_namespaced_config_map(cm.metadata.name, "kube-system")


def bootstrap_aws_auth(plane: ControlPlane, service: Service) -> None:
    """The one-time step an operator does: map the node role and the service's role (and nothing else)."""
    reset_aws_auth(plane)
    mapping: dict[str, object] = {"rolearn": service.role_arn, "username": SERVICE_USERNAME, "groups": [SERVICE_GROUP]}
    write_aws_auth(plane, map_roles=[NODE_ROLE, mapping])


def delete_owned_bindings(plane: ControlPlane) -> None:
    rbac = client.RbacAuthorizationV1Api(plane.admin())
    for binding in rbac.list_role_binding_for_all_namespaces(label_selector=MANAGED_BY_SELECTOR).items:
        rbac.delete_namespaced_role_binding(binding.metadata.name, binding.metadata.namespace)


def ensure_namespace(plane: ControlPlane, name: str, labels: dict[str, str] | None = None) -> None:
    try:
        client.CoreV1Api(plane.admin()).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        )
    except ApiException as err:
        if err.status != 409:
            raise


def ensure_cluster_role(plane: ControlPlane, name: str, verbs: tuple[str, ...] = ("get", "list", "watch")) -> None:
    try:
        client.RbacAuthorizationV1Api(plane.admin()).create_cluster_role(
            client.V1ClusterRole(
                metadata=client.V1ObjectMeta(name=name),
                rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=list(verbs))],
            )
        )
    except ApiException as err:
        if err.status != 409:
            raise


def reset_iam_grants(group: str, tag_prefix: str = "eks-access/") -> None:
    """The emulator is shared by the whole session: no one in the seed group, no tag grants left over."""
    iam = boto3.client("iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_group(GroupName=group)
    for member in iam.get_group(GroupName=group)["Users"]:
        iam.remove_user_from_group(GroupName=group, UserName=member["UserName"])
    for page in iam.get_paginator("list_users").paginate():
        for user in page["Users"]:
            keys = [
                t["Key"]
                for t in iam.list_user_tags(UserName=user["UserName"])["Tags"]
                if t["Key"].startswith(tag_prefix)
            ]
            if keys:
                iam.untag_user(UserName=user["UserName"], TagKeys=keys)


SEED_GROUP = "iam-bttrm-web-ro-group"
SEED_CLUSTER_ROLE = "rbac-bttrm-pods-ro-cluster-role"
SEED_NAMESPACES = ("bttrm-web-proj-1-ns", "bttrm-web-proj-2-ns", "bttrm-web-proj-3-ns")


def prepare_seed_cluster(plane: ControlPlane, service: Service, extra_namespaces: tuple[str, ...] = ()) -> None:
    """The seed's cluster side before the service's first run: its ClusterRole and namespaces, aws-auth
    with only the node role and the service's mapping, no owned RoleBindings, nobody granted in IAM."""
    reset_iam_grants(SEED_GROUP)
    ensure_cluster_role(plane, SEED_CLUSTER_ROLE)
    for namespace in (*SEED_NAMESPACES, *extra_namespaces):
        ensure_namespace(plane, namespace)
    bootstrap_aws_auth(plane, service)
    delete_owned_bindings(plane)


def bootstrap_access_entry_cluster(
    plane: ControlPlane,
    cluster: str,
    service_role_arn: str,
    region: str = "us-east-2",
    extra_namespaces: tuple[str, ...] = (),
) -> None:
    """What an operator does once for a cluster in API or API_AND_CONFIG_MAP mode (the deployment
    guide): the service's RBAC applied, an access entry for its role in the group that RBAC binds,
    and the seed's ClusterRole and namespaces."""
    utils.create_from_yaml(plane.admin(), str(MANIFEST))
    boto3.client("eks", region_name=region).create_access_entry(
        clusterName=cluster, principalArn=service_role_arn, username=SERVICE_USERNAME, kubernetesGroups=[SERVICE_GROUP]
    )
    ensure_cluster_role(plane, SEED_CLUSTER_ROLE)
    for namespace in (*SEED_NAMESPACES, *extra_namespaces):
        ensure_namespace(plane, namespace)
