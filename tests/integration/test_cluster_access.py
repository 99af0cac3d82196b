"""Cluster access: DescribeCluster (moto server) once per execution environment, overrides, the client."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import boto3
import pytest

from chalicelib.adapters import eks
from chalicelib.adapters.eks import api_client, cluster_access
from chalicelib.adapters.eks_token import TokenSource
from chalicelib.config import Cluster
from chalicelib.errors import NotFound

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def aws(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in server mode, reached through AWS_ENDPOINT_URL like every other AWS call here."""
    monkeypatch.setattr(eks, "_described", {})
    yield


def test_describe_cluster_is_called_once_and_cached(aws: None) -> None:
    client = boto3.client("eks", region_name="us-east-2")
    client.create_cluster(name="c1", roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={})
    assert client.meta.endpoint_url.startswith("http://127.0.0.1:")
    calls: list[str] = []
    session = boto3.Session(region_name="us-east-2")
    session.events.register("before-call.eks", lambda model, **_: calls.append(model.name))
    first = cluster_access(Cluster(name="c1", region="us-east-2"), session)
    second = cluster_access(Cluster(name="c1", region="us-east-2"), session)
    assert first is second and calls == ["DescribeCluster"]
    assert first.endpoint.startswith("https://") and first.ca_data


def test_a_missing_cluster_is_a_permanent_error(aws: None) -> None:
    with pytest.raises(NotFound, match="no such cluster"):
        cluster_access(Cluster(name="nope", region="us-east-2"), boto3.Session(region_name="us-east-2"))


def configured(name: str, backend: str) -> Cluster:
    ca = base64.b64encode(PEM).decode()
    return Cluster.model_validate(
        {
            "name": name,
            "region": "us-east-2",
            "endpoint": "https://127.0.0.1:6443",
            "certificateAuthorityData": ca,
            "backend": backend,
        }
    )


def test_a_configured_endpoint_with_backend_auto_still_asks_for_the_authentication_mode(aws: None) -> None:
    boto3.client("eks", region_name="us-east-2").create_cluster(
        name="c2", roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={}
    )
    access = cluster_access(configured("c2", "auto"), boto3.Session(region_name="us-east-2"))
    assert access.endpoint == "https://127.0.0.1:6443" and access.authentication_mode is not None


def test_configured_endpoint_and_configmap_backend_skip_describe_cluster_and_the_client_is_in_memory(aws: None) -> None:
    calls: list[str] = []
    session = boto3.Session(region_name="us-east-2")
    session.events.register("before-call.eks", lambda model, **_: calls.append(model.name))
    access = cluster_access(configured("c1", "configMap"), session)
    assert access.endpoint == "https://127.0.0.1:6443" and access.authentication_mode is None and calls == []
    api = api_client(access, TokenSource(boto3.Session(region_name="us-east-2")))
    configuration = api.configuration
    assert configuration.host == "https://127.0.0.1:6443"
    header = configuration.get_api_key_with_prefix("authorization")
    assert header.startswith("Bearer k8s-aws-v1.")
    with open(configuration.ssl_ca_cert, "rb") as handle:
        assert handle.read() == PEM
