"""The IdentityStorePort with boto3: IAM Identity Center's Identity Store, read only, in the
instance's region, as ``identityCenter.roleArn`` when given (the management or a delegated account).

GetGroupId (by DisplayName), ListGroupMemberships, DescribeUser (its UserName, never its display
name) and IsMemberInGroups. Not found is None; throttling, 5xx and transport failures are
TransientError, AccessDenied Forbidden, anything else PermanentError: never an empty answer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from chalicelib.adapters.bounds import bounded_client
from chalicelib.errors import Forbidden, PermanentError, SyncError, TransientError

_TRANSIENT = {"ThrottlingException", "InternalServerException", "ServiceUnavailable", "RequestTimeout"}
# IsMemberInGroups takes at most 100 group ids.
_GROUPS_PER_CALL = 100
T = TypeVar("T")


def identity_store_client(session: boto3.Session, region: str) -> Any:
    return bounded_client(session, "identitystore", region)


class IdentityStore:
    def __init__(self, client: Any, identity_store_id: str) -> None:
        self._client, self._store = client, identity_store_id

    def group_id(self, display_name: str) -> str | None:
        identifier = {"UniqueAttribute": {"AttributePath": "DisplayName", "AttributeValue": display_name}}
        answer = self._call(
            "GetGroupId",
            lambda: self._client.get_group_id(IdentityStoreId=self._store, AlternateIdentifier=identifier),
        )
        return None if answer is None else str(answer["GroupId"])

    def member_ids(self, group_id: str) -> list[str]:
        def every_page() -> list[str]:
            pages = self._client.get_paginator("list_group_memberships").paginate(
                IdentityStoreId=self._store, GroupId=group_id
            )
            return [
                m["MemberId"]["UserId"]
                for page in pages
                for m in page["GroupMemberships"]
                if "UserId" in m.get("MemberId", {})
            ]

        found = self._call("ListGroupMemberships", every_page)
        return [] if found is None else list(found)

    def user_name(self, user_id: str) -> str | None:
        answer = self._call(
            "DescribeUser", lambda: self._client.describe_user(IdentityStoreId=self._store, UserId=user_id)
        )
        return None if answer is None else str(answer["UserName"])

    def member_of(self, user_id: str, group_ids: Collection[str]) -> set[str]:
        ids = sorted(group_ids)
        found: set[str] = set()
        for start in range(0, len(ids), _GROUPS_PER_CALL):
            chunk = ids[start : start + _GROUPS_PER_CALL]
            answer = self._call(
                "IsMemberInGroups",
                lambda chunk=chunk: self._client.is_member_in_groups(  # type: ignore[misc]
                    IdentityStoreId=self._store, MemberId={"UserId": user_id}, GroupIds=chunk
                ),
            )
            results = [] if answer is None else answer["Results"]
            found |= {r["GroupId"] for r in results if r.get("MembershipExists")}
        return found

    def _call(self, action: str, call: Callable[[], T]) -> T | None:
        try:
            return call()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise translate(action, err) from err
        except BotoCoreError as err:
            raise translate(action, err) from err


def translate(action: str, err: Exception) -> SyncError:
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _TRANSIENT or status >= 500 or status == 429:
            return TransientError(f"Identity Store {action}: {code}")
        if code in ("AccessDeniedException", "AccessDenied") or status == 403:
            return Forbidden(f"Identity Store {action}: {code}: {err}")
        return PermanentError(f"Identity Store {action}: {code}: {err}")
    if isinstance(err, NoCredentialsError):
        return Forbidden(f"Identity Store {action}: no AWS credentials found")
    return TransientError(f"Identity Store {action}: {err}")
