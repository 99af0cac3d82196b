"""How the service fails, on the real apiserver: a cluster that accepts connections and never answers
costs a bounded time and never starves the next cluster; a cluster that rejects the service's token
(its mapping lost) is a permanent, loud failure. Both raise after every cluster was tried."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.errors import PermanentError, TransientError
from tests.conftest import Environment
from tests.harness.function import cluster_config, deployed
from tests.harness.principals import iam_user, role_session
from tests.harness.service import SEED_GROUP, Service, prepare_seed_cluster

pytestmark = pytest.mark.cluster


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A TCP endpoint that accepts connections and never says a word (a stopped apiserver behind a
    load balancer, a black-holed route)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def two_clusters(env: Environment, hung_endpoint: str) -> str:
    config = yaml.safe_load(cluster_config(env.plane))
    hung = {**config["clusters"][0], "name": "bttrm-eks-hung-0", "endpoint": hung_endpoint, "backend": "configMap"}
    config["clusters"].insert(0, hung)
    return yaml.safe_dump(config)


def test_a_hung_cluster_costs_bounded_time_and_the_next_cluster_is_reconciled(
    env: Environment, service: Service, black_hole: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EKS_IAM_SYNC_CONNECT_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("EKS_IAM_SYNC_READ_TIMEOUT_SECONDS", "3")
    prepare_seed_cluster(env.plane, service)
    person = iam_user(f"u-{uuid.uuid4().hex[:6]}")
    boto3.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=person.arn.rsplit("/", 1)[-1])
    started = time.monotonic()
    with (
        deployed(service, two_clusters(env, black_hole), tmp_path) as fn,
        pytest.raises(TransientError, match="cluster bttrm-eks-hung-0: TransientError") as raised,
    ):
        fn.invoke("reconcile_all")
    elapsed = time.monotonic() - started
    assert elapsed < 45, elapsed
    assert env.cluster_name not in str(raised.value)  # only the hung cluster failed
    mapped = read_aws_auth(_aws_auth(env)).entries("mapUsers")
    assert person.arn in {e.arn for e in mapped}


def _aws_auth(env: Environment) -> dict[str, str]:
    from kubernetes import client  # noqa: PLC0415

    found = client.CoreV1Api(env.admin()).read_namespaced_config_map("aws-auth", "kube-system")
    return dict(found.data or {})


def test_a_cluster_that_rejects_the_service_is_a_permanent_failure_named_in_the_error(
    env: Environment, service: Service, tmp_path: Path
) -> None:
    prepare_seed_cluster(env.plane, service)
    # A function whose role the cluster does not map (its mapping lost, or never bootstrapped): 401.
    name = f"unmapped-{uuid.uuid4().hex[:6]}"
    session = role_session(iam_user(f"{name}-deployer"), name, "eks-iam-sync")
    with (
        deployed(Service(session, session.arn), cluster_config(env.plane), tmp_path) as fn,
        pytest.raises(PermanentError, match=f"cluster {env.cluster_name}: Forbidden: .*HTTP 401"),
    ):
        fn.invoke("reconcile_all")
