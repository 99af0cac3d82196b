"""Roles assumed for other accounts (adapters/assumed.py, through AwsShell): the contract's session
name and external id, one session per role and external id, credentials that refresh themselves
before they expire, a token per assumed identity, IAM read in the other account; and STS's refusals
translated (moto does not refuse an AssumeRole, whatever the trust policy: botocore's Stubber does)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.credentials
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.sts.models import sts_backends

from chalicelib.adapters import assumed
from chalicelib.adapters.assumed import SESSION_NAME, assumed_session
from chalicelib.adapters.shell import AwsShell
from chalicelib.config import Cluster, RoleToAssume
from chalicelib.errors import Forbidden, TransientError

OTHER = "222222222222"
ROLE = f"arn:aws:iam::{OTHER}:role/platform/eks-iam-sync-access"
ROLE_WITH_ID = RoleToAssume(ROLE, "bttrm-prod")


@pytest.fixture(autouse=True)
def fresh_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assumed, "_sessions", {})
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EKS", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """moto in process; the function's own session in the default account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


def assumptions(account: str = OTHER) -> list[Any]:
    return list(sts_backends[account]["aws"].assumed_roles)


def stubbed(base: boto3.Session) -> Stubber:
    """Every STS client the fetcher makes from ``base`` is this one, stubbed."""
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="AKIDFUNCTION", aws_secret_access_key="secret")
    base.client = lambda *args, **kwargs: sts  # type: ignore[method-assign,assignment]
    return Stubber(sts)


def source() -> boto3.Session:
    return boto3.Session(aws_access_key_id="AKIDFUNCTION", aws_secret_access_key="secret", region_name="us-east-1")


def assume_params(role: RoleToAssume) -> dict[str, str]:
    params = {"RoleArn": role.role_arn, "RoleSessionName": SESSION_NAME}
    return params | ({"ExternalId": role.external_id} if role.external_id else {})


def test_the_role_is_assumed_as_eks_iam_sync_with_the_external_id_and_reads_iam_there(aws: boto3.Session) -> None:
    admin = aws.client("sts").assume_role(RoleArn=f"arn:aws:iam::{OTHER}:role/admin", RoleSessionName="admin")
    keys = admin["Credentials"]
    boto3.client(
        "iam",
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    ).create_user(UserName="carol")

    users = AwsShell(aws).iam(ROLE_WITH_ID).full_snapshot().users

    assert [u.arn for u in users] == [f"arn:aws:iam::{OTHER}:user/carol"]  # the other account's IAM
    [session] = [r for r in assumptions() if r.role_arn == ROLE]
    assert (session.session_name, session.external_id) == (SESSION_NAME, "bttrm-prod")
    assert AwsShell(aws).iam(None).full_snapshot().users == ()  # the function's own account: nobody


def test_one_session_per_role_and_external_id(aws: boto3.Session) -> None:
    first = assumed_session(aws, ROLE_WITH_ID, "cluster a")
    assert assumed_session(aws, RoleToAssume(ROLE, "bttrm-prod"), "cluster b") is first
    other = assumed_session(aws, RoleToAssume(ROLE, "another-id"), "cluster c")
    assert other is not first and other.tokens is not first.tokens
    assert len([r for r in assumptions() if r.role_arn == ROLE]) == 2
    assert first.caller_arn == f"arn:aws:iam::{OTHER}:role/eks-iam-sync-access"  # what the cluster sees


def test_credentials_refresh_themselves_before_they_expire(aws: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [datetime.now(UTC)]
    monkeypatch.setattr(assumed, "_now", lambda: clock[0])
    found = assumed_session(aws, ROLE_WITH_ID, "cluster a")
    credentials = found.session.get_credentials()
    assert isinstance(credentials, botocore.credentials.RefreshableCredentials)
    first_key = credentials.access_key
    assert assumed_session(aws, ROLE_WITH_ID, "cluster a").session.get_credentials() is credentials
    assert len([r for r in assumptions() if r.role_arn == ROLE]) == 1  # fresh credentials: no new AssumeRole

    clock[0] += timedelta(minutes=46)  # 14 minutes before moto's one hour runs out
    monkeypatch.setattr(botocore.credentials, "_local_now", lambda: clock[0])  # the fetcher's own cache
    again = assumed_session(aws, ROLE_WITH_ID, "cluster a")

    # Assumed again: moto dates the new credentials by its own clock, so the test's clock sees them due
    # too; what matters is that new ones came without anyone asking.
    assert again is found and credentials.access_key != first_key
    assert len([r for r in assumptions() if r.role_arn == ROLE]) >= 2


def test_the_eks_token_is_minted_as_the_assumed_role(aws: boto3.Session) -> None:
    found = assumed_session(aws, ROLE_WITH_ID, "cluster a")
    token = found.tokens.token("bttrm-eks-prod-0", "eu-west-1")
    body = token.removeprefix("k8s-aws-v1.")
    query = parse_qs(urlsplit(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()).query)
    credentials = found.session.get_credentials()
    assert credentials is not None
    assert query["X-Amz-Credential"][0].startswith(credentials.access_key + "/")
    assert query["X-Amz-Security-Token"] == [credentials.token]


@pytest.mark.parametrize("role", [ROLE_WITH_ID, RoleToAssume(ROLE)])
def test_a_refused_assume_role_fails_the_cluster_naming_the_role_and_its_trust_policy(role: RoleToAssume) -> None:
    base = source()
    with stubbed(base) as stub:
        message = f"User: arn:aws:sts::123456789012:assumed-role/fn/x is not authorized to perform: sts:AssumeRole on resource: {ROLE}"
        stub.add_client_error("assume_role", "AccessDenied", message, 403, expected_params=assume_params(role))
        cluster = Cluster.model_validate(
            {
                "name": "bttrm-eks-prod-0",
                "region": "eu-west-1",
                "roleArn": role.role_arn,
                "externalId": role.external_id,
            }
        )
        with pytest.raises(Forbidden) as raised:
            AwsShell(base).cluster(cluster)
        stub.assert_no_pending_responses()
    text = str(raised.value)
    assert text.startswith(f"sts:AssumeRole {ROLE} (session eks-iam-sync")
    assert "for cluster bttrm-eks-prod-0: AccessDenied: User:" in text
    assert "its trust policy allows sts:AssumeRole to the function's role" in text
    assert ("sts:ExternalId" in text) == (role.external_id is not None)
    assert f"the function's own policy allows sts:AssumeRole on {ROLE}" in text


def test_a_refused_iam_role_is_forbidden_and_throttling_is_transient() -> None:
    base = source()
    with stubbed(base) as stub:
        stub.add_client_error("assume_role", "AccessDenied", "denied", 403, expected_params=assume_params(ROLE_WITH_ID))
        with pytest.raises(Forbidden, match=r"for reading IAM \(iam.roleArn\): AccessDenied"):
            AwsShell(base).iam(ROLE_WITH_ID)
        stub.add_client_error("assume_role", "Throttling", "Rate exceeded", 400)  # after botocore's own retries
        with pytest.raises(TransientError, match="Throttling"):
            AwsShell(base).iam(ROLE_WITH_ID)
        stub.add_response(
            "assume_role",
            {
                "Credentials": {
                    "AccessKeyId": "ASIAASSUMED000000000",
                    "SecretAccessKey": "secret",
                    "SessionToken": "token",
                    "Expiration": datetime.now(UTC) + timedelta(hours=1),
                },
                "AssumedRoleUser": {
                    "AssumedRoleId": "AROAX:eks-iam-sync",
                    "Arn": f"arn:aws:sts::{OTHER}:assumed-role/eks-iam-sync-access/eks-iam-sync",
                },
            },
            assume_params(ROLE_WITH_ID),
        )
        assert assumed_session(base, ROLE_WITH_ID, "IAM").session.get_credentials().access_key == "ASIAASSUMED000000000"  # type: ignore[union-attr]


def test_without_credentials_nothing_is_assumed() -> None:
    base = boto3.Session(region_name="us-east-1")
    base.get_credentials = lambda: None  # type: ignore[method-assign]
    with pytest.raises(Forbidden, match=f"cluster x: no AWS credentials found to assume {ROLE}"):
        assumed_session(base, ROLE_WITH_ID, "cluster x")
