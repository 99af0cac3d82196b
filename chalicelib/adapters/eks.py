"""Reaching a cluster as the function itself (or as the role it assumes for the cluster): endpoint
and CA from eks:DescribeCluster (cached for 5 minutes) unless the configuration gives them, and a
kubernetes client configured in memory whose bearer token is re-minted before it lapses."""

from __future__ import annotations

import base64
import hashlib
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import urllib3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from kubernetes import client

from chalicelib.adapters.access_entries import eks_client, translate
from chalicelib.adapters.bounds import bound_pool_manager
from chalicelib.adapters.eks_token import TokenSource
from chalicelib.config import Cluster
from chalicelib.config.settings import Timeouts, timeouts
from chalicelib.errors import Forbidden, NotFound, TransientError
from chalicelib.model import deadlines

DESCRIBE_TTL_SECONDS = 300
_described: dict[tuple[str, str, str], tuple[float, ClusterAccess]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class ClusterAccess:
    name: str
    region: str
    endpoint: str
    ca_data: str | None  # base64 PEM
    insecure: bool = False
    authentication_mode: str | None = None  # CONFIG_MAP | API_AND_CONFIG_MAP | API (None: not described)


def cluster_access(cluster: Cluster, session: boto3.Session | None = None) -> ClusterAccess:
    """A configured endpoint is used as given; DescribeCluster is still asked (once) for the
    authentication mode unless the backend is fixed to configMap."""
    mode = None
    if not cluster.endpoint or cluster.backend != "configMap":
        described = described_cluster(cluster, session)
        if not cluster.endpoint:
            return described
        mode = described.authentication_mode
    return ClusterAccess(
        cluster.name,
        cluster.region,
        cluster.endpoint or "",
        cluster.certificate_authority_data,
        cluster.insecure_skip_tls_verify,
        mode,
    )


def described_cluster(cluster: Cluster, session: boto3.Session | None = None) -> ClusterAccess:
    """Cached for DESCRIBE_TTL_SECONDS: the endpoint and CA never change, but the authentication mode
    does (one way) when an operator switches it, and a warm function must follow within minutes."""
    key = (cluster.name, cluster.region, cluster.role_arn or "")  # a name is unique per account and region
    with _lock:
        cached = _described.get(key)
        if cached is None or time.monotonic() - cached[0] > DESCRIBE_TTL_SECONDS:
            cached = (time.monotonic(), _describe(cluster, session or boto3.Session()))
            _described[key] = cached
        return cached[1]


def _describe(cluster: Cluster, session: boto3.Session) -> ClusterAccess:
    eks = eks_client(session, cluster.region)
    try:
        found = eks.describe_cluster(name=cluster.name)["cluster"]
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        where = f"eks:DescribeCluster {cluster.name} in {cluster.region}"
        account = (
            f", and that roleArn {cluster.role_arn} is a role of the cluster's account" if cluster.role_arn else ""
        )
        policy = f"the policy of {cluster.role_arn}" if cluster.role_arn else "the function's policy"
        if code == "ResourceNotFoundException":
            raise NotFound(
                f"{where}: no such cluster (check the name and region in the configuration{account})"
            ) from err
        if code in ("AccessDeniedException", "UnrecognizedClientException"):
            raise Forbidden(f"{where}: {code} (check {policy} names this cluster's ARN)") from err
        raise TransientError(f"{where}: {code}") from err
    except NoCredentialsError as err:
        raise Forbidden(f"eks:DescribeCluster {cluster.name}: no AWS credentials found") from err
    except BotoCoreError as err:
        raise TransientError(f"eks:DescribeCluster {cluster.name}: {err}") from err
    mode = (found.get("accessConfig") or {}).get("authenticationMode")
    return ClusterAccess(
        cluster.name, cluster.region, found["endpoint"], found["certificateAuthority"]["data"], False, mode
    )


class BoundedApiClient(client.ApiClient):  # type: ignore[misc]
    """Every request carries (connect, read) timeouts (the kubernetes client sets none by default),
    is bounded in total time (adapters/bounds.py), and is not sent when the cluster's scope forbids
    it: after a transport failure, or too close to the invocation's deadline."""

    def __init__(self, configuration: client.Configuration, bounds: Timeouts) -> None:
        super().__init__(configuration)
        self.bounds = (bounds.connect, bounds.read)
        bound_pool_manager(self.rest_client.pool_manager)

    def request(self, method: str, url: str, *args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        budget = deadlines.current()
        if budget is not None:
            budget.check()
        return super().request(method, url, *args, _request_timeout=_request_timeout or self.bounds, **kwargs)


def api_client(access: ClusterAccess, tokens: TokenSource) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = access.endpoint
    configuration.api_key = {"authorization": _token(access, tokens)}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    configuration.refresh_api_key_hook = _refresher(access, tokens)
    # Retry refused connections, never a read that timed out: that would multiply the time a hung cluster costs.
    configuration.retries = urllib3.Retry(total=2, connect=2, read=0, status=0, other=0)
    if access.insecure:
        configuration.verify_ssl = False
    elif access.ca_data:
        configuration.ssl_ca_cert = str(_ca_file(access.ca_data))
    return BoundedApiClient(configuration, timeouts())


def _refresher(access: ClusterAccess, tokens: TokenSource) -> Any:
    def refresh(configuration: client.Configuration) -> None:
        configuration.api_key["authorization"] = _token(access, tokens)

    return refresh


def _token(access: ClusterAccess, tokens: TokenSource) -> str:
    try:
        return tokens.token(access.name, access.region)
    except NoCredentialsError as err:
        raise Forbidden(f"cannot mint an EKS token for {access.name}: no AWS credentials found") from err
    except ClientError as err:  # an assumed role's credentials, refreshed as the token is minted
        raise translate(f"cannot mint an EKS token for {access.name}", err) from err
    except BotoCoreError as err:
        raise TransientError(f"cannot mint an EKS token for {access.name}: {err}") from err


def _ca_file(ca_data: str) -> Path:
    """kubernetes 35 takes the CA only as a file; it is written once, by content, under the temp dir."""
    pem = base64.b64decode(ca_data)
    folder = Path(tempfile.gettempdir()) / "eks-iam-sync-ca"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"{hashlib.sha256(pem).hexdigest()[:16]}.pem"
    if not path.exists():
        path.write_bytes(pem)
    return path
