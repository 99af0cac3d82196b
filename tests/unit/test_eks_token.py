"""EKS bearer tokens: the exact format the authenticator expects, and the cache's refresh point."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from chalicelib.adapters import eks_token
from chalicelib.adapters.eks_token import TokenSource, mint_token


@pytest.fixture(autouse=True)
def real_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def session(token: str | None = None) -> boto3.Session:
    return boto3.Session(aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="secret", aws_session_token=token)


def decode(token: str) -> tuple[str, dict[str, list[str]]]:
    assert token.startswith("k8s-aws-v1.")
    body = token.removeprefix("k8s-aws-v1.")
    assert "=" not in body and "+" not in body and "/" not in body  # unpadded base64url
    url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    return url, parse_qs(urlsplit(url).query)


def test_token_is_a_presigned_regional_get_caller_identity_with_the_cluster_signed() -> None:
    token = mint_token(session(), "bttrm-eks-dev-0", "us-east-2")
    url, query = decode(token.value)
    assert url.startswith("https://sts.us-east-2.amazonaws.com/?")
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    assert query["X-Amz-Credential"][0].startswith("AKIAEXAMPLE/")
    assert "/us-east-2/sts/aws4_request" in query["X-Amz-Credential"][0]
    assert "X-Amz-Security-Token" not in query
    assert len(token.value) <= 4096


def test_session_credentials_carry_their_token() -> None:
    _, query = decode(mint_token(session("SESSIONTOKEN"), "c", "eu-west-1").value)
    assert query["X-Amz-Security-Token"] == ["SESSIONTOKEN"]


def test_expiry_is_fourteen_minutes_after_signing() -> None:
    token = mint_token(session(), "c", "us-east-2")
    _, query = decode(token.value)
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    assert token.expires_at == signed + 14 * 60


def test_source_caches_until_a_minute_before_the_server_would_refuse(monkeypatch: pytest.MonkeyPatch) -> None:
    minted: list[tuple[str, str]] = []
    real = eks_token.mint_token

    def counting(s: boto3.Session, cluster: str, region: str) -> eks_token.EksToken:
        minted.append((cluster, region))
        return real(s, cluster, region)

    monkeypatch.setattr(eks_token, "mint_token", counting)
    now = [0.0]
    source = TokenSource(session(), clock=lambda: now[0])
    first = source.token("a", "us-east-2")
    now[0] = eks_token._signing_time(decode(first)[0]) + 14 * 60 - 1
    assert source.token("a", "us-east-2") == first
    assert len(minted) == 1
    source.token("b", "us-east-2")
    assert minted == [("a", "us-east-2"), ("b", "us-east-2")]
    now[0] += 1
    source.token("a", "us-east-2")
    assert minted[-1] == ("a", "us-east-2") and len(minted) == 3
