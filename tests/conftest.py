"""Session-scoped real test environment, shared by every test that needs it: moto (``aws_endpoint``),
the EKS emulator (``eks``; boto3 reaches it through AWS_ENDPOINT_URL_EKS for the session), and one
control plane (``env``) registered there in CONFIG_MAP mode. A cluster in another authentication
mode: ``start_cluster(..., eks=eks, mode="API")`` (tests/harness/stack.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from kubernetes import client

from tests.harness.authenticator import TokenAuthenticator
from tests.harness.aws import moto_server
from tests.harness.eks_emulator import EksEmulator, eks_emulator
from tests.harness.kube import ControlPlane
from tests.harness.service import Service, install_service
from tests.harness.stack import start_cluster

# Property tests are judged on what they find, not on how fast a shared, busy machine runs an example:
# Hypothesis' per-example deadline (200 ms) failed test_merge under load. CI loads this profile too.
settings.register_profile("eks-iam-sync", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("eks-iam-sync")

CLUSTER_NAME = "bttrm-eks-dev-0"
CLUSTER_REGION = "us-east-2"


@dataclass
class Environment:
    aws_endpoint: str
    plane: ControlPlane
    authenticator: TokenAuthenticator
    cluster_name: str = CLUSTER_NAME
    region: str = CLUSTER_REGION
    eks: EksEmulator | None = None

    def admin(self) -> client.ApiClient:
        return self.plane.admin()


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def eks(aws_endpoint: str) -> Iterator[EksEmulator]:
    """One EKS emulator for the session; principals are looked up in the session's moto."""
    with eks_emulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def env(aws_endpoint: str, eks: EksEmulator) -> Iterator[Environment]:
    with ExitStack() as stack:
        plane, authenticator = start_cluster(
            stack, aws_endpoint, CLUSTER_NAME, eks=eks, mode="CONFIG_MAP", region=CLUSTER_REGION
        )
        yield Environment(aws_endpoint=aws_endpoint, plane=plane, authenticator=authenticator, eks=eks)


@pytest.fixture(scope="session")
def service(env: Environment) -> Service:
    """The service's role and its shipped RBAC, installed once."""
    return install_service(env.plane)
