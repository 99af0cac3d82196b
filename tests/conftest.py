"""Session-scoped real test environment, shared by every test that needs it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.harness.authenticator import TokenAuthenticator, WebhookServer
from tests.harness.aws import moto_server, secret_for
from tests.harness.kube import ControlPlane, start_control_plane
from tests.harness.service import Service, install_service

CLUSTER_NAME = "bttrm-eks-dev-0"
CLUSTER_REGION = "us-east-2"


@dataclass
class Environment:
    aws_endpoint: str
    plane: ControlPlane
    authenticator: TokenAuthenticator
    cluster_name: str = CLUSTER_NAME
    region: str = CLUSTER_REGION

    def admin(self) -> client.ApiClient:
        return self.plane.admin()


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def env(aws_endpoint: str) -> Iterator[Environment]:
    with ExitStack() as stack:
        admin_holder: list[client.ApiClient] = []

        def read_aws_auth() -> dict[str, str]:
            try:
                cm = client.CoreV1Api(admin_holder[0]).read_namespaced_config_map("aws-auth", "kube-system")
            except ApiException as err:
                if err.status == 404:
                    return {}
                raise
            return dict(cm.data or {})

        authenticator = TokenAuthenticator(
            cluster_id=CLUSTER_NAME,
            sts_endpoint=aws_endpoint,
            read_aws_auth=read_aws_auth,
            secret_for=secret_for,
        )
        webhook = WebhookServer(authenticator).start()
        stack.callback(webhook.stop)
        plane = start_control_plane(stack, webhook.url)
        admin_holder.append(plane.admin())
        yield Environment(aws_endpoint=aws_endpoint, plane=plane, authenticator=authenticator)


@pytest.fixture(scope="session")
def service(env: Environment) -> Service:
    """The service's role and its shipped RBAC, installed once."""
    return install_service(env.plane)
