"""EKS bearer tokens minted from the caller's own AWS credentials.

A token is ``k8s-aws-v1.`` + unpadded base64url of a presigned STS GetCallerIdentity GET URL whose
signed headers include ``x-k8s-aws-id: <cluster name>`` (what ``aws eks get-token`` does). The
server accepts it for 15 minutes after ``X-Amz-Date``; clients treat it as valid for 14.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3

from chalicelib.adapters.bounds import boto_config

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
PRESIGN_EXPIRES_SECONDS = 60
SERVER_VALIDITY_SECONDS = 15 * 60
REFRESH_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class EksToken:
    value: str
    expires_at: float  # epoch seconds after which a client must not send it

    def fresh(self, now: float) -> bool:
        return now < self.expires_at


def mint_token(session: boto3.Session, cluster_name: str, region: str) -> EksToken:
    """Presigns GetCallerIdentity against the regional STS endpoint with the cluster name signed in."""
    sts = session.client("sts", region_name=region, config=boto_config(signature_version="v4"))  # signs, never sends
    sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", _take_cluster_id)
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", _sign_cluster_id)
    url: str = sts.generate_presigned_url(
        "get_caller_identity",
        Params={CLUSTER_ID_HEADER: cluster_name},
        ExpiresIn=PRESIGN_EXPIRES_SECONDS,
        HttpMethod="GET",
    )
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    signed_at = _signing_time(url)
    return EksToken(TOKEN_PREFIX + encoded, signed_at + SERVER_VALIDITY_SECONDS - REFRESH_MARGIN_SECONDS)


def _signing_time(url: str) -> float:
    (stamp,) = parse_qs(urlsplit(url).query)["X-Amz-Date"]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


def _take_cluster_id(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if CLUSTER_ID_HEADER in params:
        context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)


def _sign_cluster_id(request: Any, **_: Any) -> None:
    if CLUSTER_ID_HEADER in request.context:
        request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]


class TokenSource:
    """Hands out a cached token per cluster, minting a new one a minute before the old one lapses."""

    def __init__(
        self,
        session: boto3.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._clock = clock
        self._tokens: dict[tuple[str, str, str], EksToken] = {}
        self._lock = threading.Lock()

    def token(self, cluster_name: str, region: str) -> str:
        session = self._session or boto3.Session()
        credentials = session.get_credentials()
        # Keyed by access key too: a token is an identity, and credentials may change between invocations.
        key = (cluster_name, region, credentials.access_key if credentials else "")
        with self._lock:
            now = self._clock()
            cached = self._tokens.get(key)
            if cached is None or not cached.fresh(now):
                cached = mint_token(session, cluster_name, region)
                self._tokens[key] = cached
            return cached.value
