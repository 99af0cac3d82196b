"""The local stack: the EKS token webhook + etcd + kube-apiserver against the STS emulator, and, for
`make demo` and `make bench`, the whole thing in one context manager with the service installed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.harness.authenticator import TokenAuthenticator, WebhookServer
from tests.harness.aws import moto_server, secret_for
from tests.harness.kube import ControlPlane, start_control_plane
from tests.harness.service import Service, bootstrap_aws_auth, ensure_cluster_role, ensure_namespace, install_service

CLUSTER = "bttrm-eks-dev-0"


def start_cluster(
    stack: ExitStack, aws_endpoint: str, cluster: str = CLUSTER
) -> tuple[ControlPlane, TokenAuthenticator]:
    """A control plane whose token webhook maps callers from its own live aws-auth."""
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
    plane = start_control_plane(stack, webhook.url)
    admin.append(plane.admin())
    return plane, authenticator


@dataclass
class Stack:
    aws_endpoint: str
    plane: ControlPlane
    service: Service
    authenticator: TokenAuthenticator


@contextmanager
def local_stack(namespaces: tuple[str, ...], cluster_role: str) -> Iterator[Stack]:
    with ExitStack() as stack:
        endpoint = stack.enter_context(moto_server())
        plane, authenticator = start_cluster(stack, endpoint)
        service = install_service(plane)
        ensure_cluster_role(plane, cluster_role)
        for namespace in namespaces:
            ensure_namespace(plane, namespace)
        bootstrap_aws_auth(plane, service)
        yield Stack(endpoint, plane, service, authenticator)
