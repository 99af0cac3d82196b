"""The local stack: the EKS token webhook + etcd + kube-apiserver against the STS emulator, each
cluster optionally registered in the EKS emulator (DescribeCluster, access entries) in the
authentication mode a test chooses; and, for `make demo` and `make bench`, the whole thing in one
context manager with the service installed.

A test that needs a cluster in another authentication mode starts its own control plane (about 5 s,
so share it: module or session scope) under a name of its own, in the session's emulator::

    @pytest.fixture(scope="module")
    def api_cluster(aws_endpoint: str, eks: EksEmulator) -> Iterator[tuple[ControlPlane, TokenAuthenticator]]:
        with ExitStack() as stack:
            yield start_cluster(stack, aws_endpoint, "bttrm-eks-api-0", eks=eks, mode="API")

Tokens are minted for that name (``principal.token("bttrm-eks-api-0")``); boto3 reaches the
emulator through ``AWS_ENDPOINT_URL_EKS`` (region us-east-2 unless ``region`` says otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial

import boto3
from kubernetes import client
from kubernetes.client.rest import ApiException
from moto.core.models import DEFAULT_ACCOUNT_ID

from chalicelib.model.ownership import SERVICE_GROUP, SERVICE_USERNAME
from tests.harness.authenticator import TokenAuthenticator, WebhookServer
from tests.harness.authorizer import AccessPolicyAuthorizer, AuthorizationWebhook
from tests.harness.aws import moto_server, secret_for
from tests.harness.eks_emulator import EksEmulator, eks_emulator
from tests.harness.kube import ControlPlane, start_control_plane
from tests.harness.service import Service, bootstrap_aws_auth, ensure_cluster_role, ensure_namespace, install_service

CLUSTER = "bttrm-eks-dev-0"
REGION = "us-east-2"


def start_cluster(
    stack: ExitStack,
    aws_endpoint: str,
    cluster: str = CLUSTER,
    eks: EksEmulator | None = None,
    mode: str = "CONFIG_MAP",
    region: str = REGION,
    account: str = DEFAULT_ACCOUNT_ID,
    access_policies: bool = False,
) -> tuple[ControlPlane, TokenAuthenticator]:
    """A control plane whose token webhook maps callers from its own live aws-auth and, when the
    cluster is registered in ``eks`` (in ``account``: only that account's credentials see it), from
    its access entries as ``mode`` says. Without ``eks`` the cluster is CONFIG_MAP and unknown to
    DescribeCluster.

    ``access_policies=True`` (needs ``eks``) also authorizes by the entries' access-policy
    associations, as EKS does: the apiserver runs ``--authorization-mode=Webhook,RBAC`` with
    tests/harness/authorizer.py's webhook (its ``AccessPolicyAuthorizer`` is ``plane.authorizer``).
    Off by default: RBAC alone decides, and no request pays for the extra webhook round trip."""
    if access_policies and eks is None:
        raise ValueError("access_policies needs the EKS emulator (eks=...)")
    admin: list[client.ApiClient] = []

    def read_aws_auth() -> dict[str, str]:
        try:
            found = client.CoreV1Api(admin[0]).read_namespaced_config_map("aws-auth", "kube-system")
        except ApiException as err:
            if err.status == 404:
                return {}
            raise
        return dict(found.data or {})

    authenticator = TokenAuthenticator(cluster, aws_endpoint, read_aws_auth, secret_for)
    webhook = WebhookServer(authenticator).start()
    stack.callback(webhook.stop)
    authorization: AuthorizationWebhook | None = None
    if access_policies and eks is not None:
        authorization = AuthorizationWebhook(AccessPolicyAuthorizer(partial(eks.authorizing_associations, cluster)))
        stack.callback(authorization.start().stop)
    plane = start_control_plane(stack, webhook.url, authorization.url if authorization else None)
    plane.authorizer = authorization.authorizer if authorization else None
    admin.append(plane.admin())
    if eks is not None:
        eks.add_cluster(
            cluster, region=region, endpoint=plane.endpoint, ca_data=plane.ca_data, mode=mode, account=account
        )
        stack.callback(eks.remove_cluster, cluster)
        authenticator.access_entries = eks.source(cluster)
    return plane, authenticator


@dataclass
class Stack:
    aws_endpoint: str
    plane: ControlPlane
    service: Service
    authenticator: TokenAuthenticator
    eks: EksEmulator | None = None


@contextmanager
def local_stack(namespaces: tuple[str, ...], cluster_role: str, mode: str = "CONFIG_MAP") -> Iterator[Stack]:
    with ExitStack() as stack:
        endpoint = stack.enter_context(moto_server())
        eks = stack.enter_context(eks_emulator())
        plane, authenticator = start_cluster(stack, endpoint, eks=eks, mode=mode)
        service = install_service(plane)
        ensure_cluster_role(plane, cluster_role)
        for namespace in namespaces:
            ensure_namespace(plane, namespace)
        bootstrap_aws_auth(plane, service)
        if mode != "CONFIG_MAP":
            _bootstrap_access_entry(service)
        yield Stack(endpoint, plane, service, authenticator, eks)


def _bootstrap_access_entry(service: Service, cluster: str = CLUSTER, region: str = REGION) -> None:
    """The operator's step in API modes, where aws-auth alone does not let the service in (in API mode
    it is ignored): an access entry mapping the service's role as aws-auth does."""
    eks = boto3.client("eks", region_name=region)
    eks.create_access_entry(
        clusterName=cluster, principalArn=service.role_arn, username=SERVICE_USERNAME, kubernetesGroups=[SERVICE_GROUP]
    )
