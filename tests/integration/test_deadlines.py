"""Every invocation ends before its deadline, with the failure of the cluster in flight counted.

Real misbehaving TCP endpoints (tests/harness/endpoints.py) in front of the function as deployed:
an apiserver answering a byte at a time (each read well within the read timeout), one whose writes
hang, an EKS API that trickles or never answers DescribeCluster. Short timeouts (0.5 s connect, 1 s
read: a request's bound 1.5 s, a cluster's budget 2.5 s) and a short Lambda timeout keep them fast;
without the bounds each of them runs far past its deadline."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import boto3
import pytest
import yaml

from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.errors import TransientError
from tests.conftest import Environment
from tests.harness import endpoints, function
from tests.harness.function import cluster_config, deployed
from tests.harness.principals import iam_user
from tests.harness.service import SEED_GROUP, Service, delete_owned_bindings, prepare_seed_cluster

pytestmark = pytest.mark.cluster

LAMBDA_SECONDS = 10


@pytest.fixture
def short(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Short timeouts and a short Lambda timeout; metrics on (EMF on stdout, as in Lambda)."""
    monkeypatch.setenv("EKS_IAM_SYNC_CONNECT_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("EKS_IAM_SYNC_READ_TIMEOUT_SECONDS", "1")
    monkeypatch.setattr(function, "LAMBDA_TIMEOUT_MS", LAMBDA_SECONDS * 1000)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    yield


def failures_counted(out: str) -> dict[str, str]:
    """ReconcileFailures as emitted (EMF): cluster -> kind."""
    counted = {}
    for line in out.splitlines():
        if line.startswith("{") and '"ReconcileFailures"' in line:
            metric = json.loads(line)
            counted[metric["cluster"]] = metric["kind"]
    return counted


def seed_config(env: Environment, first: Mapping[str, object] | None = None, endpoint: str | None = None) -> str:
    """The seed configuration on the test cluster (backend configMap: no DescribeCluster for it),
    reached at ``endpoint`` when given, after a ``first`` cluster when given."""
    config = yaml.safe_load(cluster_config(env.plane))
    config["clusters"][0]["backend"] = "configMap"
    if endpoint:
        config["clusters"][0]["endpoint"] = endpoint
    if first:
        config["clusters"].insert(0, {**config["clusters"][0], **first})
    return yaml.safe_dump(config)


def someone_to_map() -> str:
    person = iam_user(f"u-{uuid.uuid4().hex[:6]}")
    boto3.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=person.arn.rsplit("/", 1)[-1])
    return person.arn


def mapped(env: Environment) -> set[str]:
    from kubernetes import client  # noqa: PLC0415

    found = client.CoreV1Api(env.admin()).read_namespaced_config_map("aws-auth", "kube-system")
    return {e.arn for e in read_aws_auth(dict(found.data or {})).entries("mapUsers")}


def test_an_apiserver_trickling_its_answer_costs_one_request_s_bound_and_the_next_cluster_is_reconciled(
    env: Environment, service: Service, short: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare_seed_cluster(env.plane, service)
    person = someone_to_map()
    tls = endpoints.tls_context(env.plane.ca_file, env.plane.ca_file.with_suffix(".key"))
    with endpoints.trickling(tls=tls) as trickle:
        first = {"name": "bttrm-eks-trickle-0", "endpoint": trickle.url}
        started = time.monotonic()
        with (
            deployed(service, seed_config(env, first), tmp_path) as fn,
            pytest.raises(
                TransientError, match=r"cluster bttrm-eks-trickle-0: TransientError: .*cut at its 1\.5 s bound"
            ),
        ):
            fn.invoke("reconcile_all")
        elapsed = time.monotonic() - started
    assert elapsed < LAMBDA_SECONDS, elapsed
    assert len(trickle.requests) == 1  # its first request was cut, and the cluster stopped there
    assert person in mapped(env)  # the next cluster was reconciled in full
    assert failures_counted(capsys.readouterr().out) == {"bttrm-eks-trickle-0": "transient"}


def test_hanging_writes_stop_the_cluster_at_the_first_instead_of_one_timeout_per_write(
    env: Environment, service: Service, short: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare_seed_cluster(env.plane, service)
    with deployed(service, seed_config(env), tmp_path) as fn:
        fn.invoke("reconcile_all")  # aws-auth as it should be: the next run only writes RoleBindings
    delete_owned_bindings(env.plane)  # three to create again, one per seed namespace
    tls = endpoints.tls_context(env.plane.ca_file, env.plane.ca_file.with_suffix(".key"))
    with endpoints.writes_unanswered(env.plane.endpoint, env.plane.ca_file, tls) as proxy:
        started = time.monotonic()
        with (
            deployed(service, seed_config(env, endpoint=proxy.url), tmp_path) as fn,
            pytest.raises(TransientError, match=f"cluster {env.cluster_name}: TransientError"),
        ):
            fn.invoke("reconcile_all")
        elapsed = time.monotonic() - started
    writes = [r for r in proxy.requests if not r.startswith("GET ")]
    assert len(writes) == 1, writes  # the first write timed out; the others were not sent
    assert elapsed < LAMBDA_SECONDS, elapsed
    assert failures_counted(capsys.readouterr().out) == {env.cluster_name: "transient"}


@pytest.mark.parametrize("behaviour", ["trickling", "silent"])
def test_describe_cluster_runs_inside_each_cluster_s_budget(
    env: Environment,
    service: Service,
    short: None,
    behaviour: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Three clusters whose DescribeCluster never completes, then the test cluster (its endpoint and
    backend configured: no DescribeCluster). Each costs at most its budget; the last is reached."""
    monkeypatch.setattr(function, "LAMBDA_TIMEOUT_MS", 15_000)  # three budgets of 2.5 s and a reconcile
    prepare_seed_cluster(env.plane, service)
    person = someone_to_map()
    endpoint = endpoints.trickling() if behaviour == "trickling" else endpoints.silent()
    with endpoint as eks:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EKS", eks.url)
        config = yaml.safe_load(seed_config(env))
        unreachable = [f"bttrm-eks-{behaviour}-{i}-{uuid.uuid4().hex[:4]}" for i in range(3)]
        template = {k: v for k, v in config["clusters"][0].items() if k not in ("endpoint", "certificateAuthorityData")}
        config["clusters"][:0] = [{**template, "name": name, "backend": "auto"} for name in unreachable]
        started = time.monotonic()
        with deployed(service, yaml.safe_dump(config), tmp_path) as fn, pytest.raises(TransientError) as raised:
            fn.invoke("reconcile_all")
        elapsed = time.monotonic() - started
    assert elapsed < 15, elapsed
    assert all(f"cluster {name}: TransientError: " in str(raised.value) for name in unreachable)
    assert env.cluster_name not in str(raised.value) and person in mapped(env)
    assert failures_counted(capsys.readouterr().out) == dict.fromkeys(unreachable, "transient")
