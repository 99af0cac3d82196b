"""The IAM port (stage 2) with boto3, standard retry mode. The only module that calls IAM.

A full snapshot is a handful of paginated GetAccountAuthorizationDetails calls for any number of
principals; a scoped read is GetUser + ListGroupsForUser for a user, GetRole for a role. Any error
raises: a failed or partial read must abort the reconcile before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from chalicelib.adapters.bounds import bounded_client
from chalicelib.errors import Forbidden, PermanentError, SyncError, TransientError
from chalicelib.model.snapshot import IamRole, IamSnapshot, IamUser

_TRANSIENT_CODES = {"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure", "RequestExpired"}


def iam_client(session: boto3.Session | None = None) -> Any:
    return bounded_client(session or boto3.Session(), "iam")


class IamReader:
    def __init__(self, client: Any | None = None) -> None:
        self._iam = client or iam_client()

    def full_snapshot(self) -> IamSnapshot:
        users: list[IamUser] = []
        roles: list[IamRole] = []
        groups: set[str] = set()
        # IAM's default page is 100 items; 1 000 (the maximum) makes ~3 calls for 2 300 principals.
        pages = self._iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["User", "Role", "Group"], PaginationConfig={"PageSize": 1000}
        )
        try:
            for page in pages:
                users += (_user(u, u.get("GroupList", [])) for u in page.get("UserDetailList", []))
                roles += (_role(r) for r in page.get("RoleDetailList", []))
                groups |= {g["GroupName"].lower() for g in page.get("GroupDetailList", [])}
        except (ClientError, BotoCoreError) as err:
            raise _translate("GetAccountAuthorizationDetails", err) from err
        return IamSnapshot(tuple(users), tuple(roles), frozenset(groups))

    def scoped_snapshot(self, user_names: Iterable[str] = (), role_names: Iterable[str] = ()) -> IamSnapshot:
        """Only the named principals that exist; one that does not is left out (and so revoked)."""
        users = [user for name in sorted(set(user_names)) if (user := self._user(name)) is not None]
        roles = [_role(role) for name in sorted(set(role_names)) if (role := self._role(name)) is not None]
        return IamSnapshot(tuple(users), tuple(roles))

    def missing(self, groups: Iterable[str], roles: Iterable[str]) -> list[str]:
        absent = [f"IAM group {g!r} does not exist" for g in groups if self._group(g) is None]
        return absent + [f"IAM role {r!r} does not exist" for r in roles if self._role(r) is None]

    def members(self, group: str) -> list[str]:
        def every_page() -> list[str]:
            pages = self._iam.get_paginator("get_group").paginate(GroupName=group)
            return [u["UserName"] for page in pages for u in page["Users"]]

        found = self._get("GetGroup", every_page)
        return [] if found is None else list(found)

    def _group(self, name: str) -> Any:
        return self._get("GetGroup", lambda: self._iam.get_group(GroupName=name, MaxItems=1)["Group"])

    def _role(self, name: str) -> Any:
        return self._get("GetRole", lambda: self._iam.get_role(RoleName=name)["Role"])

    def _user(self, name: str) -> IamUser | None:
        user = self._get("GetUser", lambda: self._iam.get_user(UserName=name)["User"])
        if user is None:
            return None

        def groups() -> list[str]:
            pages = self._iam.get_paginator("list_groups_for_user").paginate(UserName=name)
            return [g["GroupName"] for page in pages for g in page["Groups"]]

        names = self._get("ListGroupsForUser", groups)
        return None if names is None else _user(user, names)

    @staticmethod
    def _get(action: str, call: Any) -> Any:
        try:
            return call()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return None
            raise _translate(action, err) from err
        except BotoCoreError as err:
            raise _translate(action, err) from err


def _user(detail: dict[str, Any], groups: Iterable[str]) -> IamUser:
    return IamUser(detail["UserName"], detail["Arn"], tuple(sorted(groups)), _tags(detail), detail.get("UserId", ""))


def _role(detail: dict[str, Any]) -> IamRole:
    return IamRole(detail["RoleName"], detail["Arn"], _tags(detail), detail.get("RoleId", ""))


def _tags(detail: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in detail.get("Tags") or []}


def _translate(action: str, err: Exception) -> SyncError:
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientError(f"IAM {action}: {code}")
        if code in ("AccessDenied", "AccessDeniedException") or status == 403:
            return Forbidden(f"IAM {action}: {code}: {err}")
        return PermanentError(f"IAM {action}: {code}: {err}")
    if isinstance(err, NoCredentialsError):
        return Forbidden(f"IAM {action}: no AWS credentials found (set AWS_PROFILE or run `aws configure`)")
    return TransientError(f"IAM {action}: {err}")
