"""Roles the service assumes to reach other accounts: a cluster's ``roleArn`` (DescribeCluster, the
access-entry calls, the EKS token) and ``iam.roleArn`` (every IAM read).

One boto3 session per (role ARN, external id, source credentials) for the life of the execution
environment. Its credentials refresh themselves: botocore's ``AssumeRoleCredentialFetcher`` behind
``DeferredRefreshableCredentials`` calls AssumeRole on first use and again 15 minutes before the
credentials expire (longer than an EKS token's 14 minutes, so no token outlives the credentials that
signed it). Each session has its own ``TokenSource``: a token is an identity.

AssumeRole is asked for when the session is handed out, not at its first API call, so that a refusal
is translated here, once, into the service's taxonomy, naming the role and the trust policy to fix,
and fails only what asked for it (one cluster, or the IAM read).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.session
from botocore.client import BaseClient
from botocore.credentials import (
    AssumeRoleCredentialFetcher,
    CredentialProvider,
    CredentialResolver,
    Credentials,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from chalicelib.adapters.access_entries import translate
from chalicelib.adapters.bounds import bounded_client
from chalicelib.adapters.eks_token import TokenSource
from chalicelib.config import RoleToAssume
from chalicelib.errors import Forbidden, SyncError, TransientError
from chalicelib.model import arns

SESSION_NAME = "eks-iam-sync"  # the contract: what CloudTrail in the other account shows, and {{SessionName}}
# STS's regional endpoint when the source session names no region: the partition's usual one.
_PARTITION_REGIONS = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}

_sessions: dict[tuple[str, str, str], AssumedSession] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class AssumedSession:
    role: RoleToAssume
    session: boto3.Session
    tokens: TokenSource
    caller_arn: str  # what STS reports for the session, canonical (arn:P:iam::ACCOUNT:role/NAME)


def assumed_session(base: boto3.Session, role: RoleToAssume, purpose: str, region: str | None = None) -> AssumedSession:
    """The session of ``role`` assumed with ``base``'s credentials, with credentials in hand.
    ``purpose`` ("cluster X", "IAM") goes into error messages; ``region`` is STS's when ``base``
    names none. Raises Forbidden when STS refuses, TransientError when it cannot be reached."""
    source = base.get_credentials()
    if source is None:
        raise Forbidden(f"{purpose}: no AWS credentials found to assume {role.role_arn} with")
    key = (role.role_arn, role.external_id or "", source.access_key)
    with _lock:
        found = _sessions.get(key)
        if found is None:
            found = _sessions[key] = _build(base, source, role, base.region_name or region or _partition_region(role))
    _ensure_credentials(found, purpose)
    return found


def _build(base: boto3.Session, source: Credentials, role: RoleToAssume, region: str) -> AssumedSession:
    extra: dict[str, Any] = {"RoleSessionName": SESSION_NAME}
    if role.external_id:
        extra["ExternalId"] = role.external_id

    def sts_client(service_name: str, **credentials: Any) -> BaseClient:
        # Called by the fetcher with the source credentials, at every (re)assumption: within the
        # budget of the cluster (or the IAM read) that needs the credentials then.
        return bounded_client(base, service_name, region, **credentials)  # type: ignore[no-any-return]

    fetcher = AssumeRoleCredentialFetcher(sts_client, source, role.role_arn, extra_args=extra)
    credentials = DeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials, method="assume-role", time_fetcher=_now
    )
    core = botocore.session.Session()
    core.register_component("credential_provider", CredentialResolver([_Provider(credentials)]))
    session = boto3.Session(botocore_session=core, region_name=region)
    return AssumedSession(role, session, TokenSource(session), arns.unpathed(role.role_arn))


class _Provider(CredentialProvider):
    METHOD = "assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def _ensure_credentials(found: AssumedSession, purpose: str) -> None:
    """Assumes the role now (or refreshes it when it is due), translating a refusal."""
    try:
        credentials = found.session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        credentials.get_frozen_credentials()
    except ClientError as err:
        raise assume_role_error(found.role, purpose, err) from err
    except NoCredentialsError as err:
        raise Forbidden(f"{purpose}: no AWS credentials found to assume {found.role.role_arn} with") from err
    except BotoCoreError as err:
        raise TransientError(f"sts:AssumeRole {found.role.role_arn} for {purpose}: {err}") from err


def assume_role_error(role: RoleToAssume, purpose: str, err: ClientError) -> SyncError:
    """STS's answer in the service's taxonomy; a refusal names the role and what to fix. STS answers
    AccessDenied alike for an untrusted caller, a wrong external id and a role that does not exist."""
    with_id = ", with the configured externalId" if role.external_id else ""
    error = translate(f"sts:AssumeRole {role.role_arn} (session {SESSION_NAME}{with_id}) for {purpose}", err)
    if not isinstance(error, Forbidden):
        return error
    condition = (
        ' under the condition {"StringEquals": {"sts:ExternalId": <the configured externalId>}}'
        if role.external_id
        else ""
    )
    return Forbidden(
        f"{error}. Check that the role exists, that its trust policy allows sts:AssumeRole to the function's "
        f"role{condition}, and that the function's own policy allows sts:AssumeRole on {role.role_arn}"
    )


def _now() -> datetime:
    """The credentials' clock (botocore's default, made a seam for tests)."""
    return datetime.now(UTC)


def _partition_region(role: RoleToAssume) -> str:
    parsed = arns.parse(role.role_arn)
    return _PARTITION_REGIONS.get(parsed.partition if parsed else "aws", "us-east-1")
