"""Session-scoped real test environment, shared by every test that needs it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from kubernetes import client

from tests.harness.authenticator import TokenAuthenticator
from tests.harness.aws import moto_server
from tests.harness.kube import ControlPlane
from tests.harness.service import Service, install_service
from tests.harness.stack import start_cluster

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
        plane, authenticator = start_cluster(stack, aws_endpoint, CLUSTER_NAME)
        yield Environment(aws_endpoint=aws_endpoint, plane=plane, authenticator=authenticator)


@pytest.fixture(scope="session")
def service(env: Environment) -> Service:
    """The service's role and its shipped RBAC, installed once."""
    return install_service(env.plane)
