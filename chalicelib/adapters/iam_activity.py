"""The IamActivityReader port with boto3's IAM client: when a user or role last used AWS, for the
access report's evidence of use (``report --last-used``). A role: GetRole's RoleLastUsed (IAM tracks
it over a trailing 400 days); a user: the console password (GetUser) and each access key
(ListAccessKeys, GetAccessKeyLastUsed). Reads only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.iam import _translate
from chalicelib.errors import NotFound
from chalicelib.model import arns
from chalicelib.model.ports import LastUsed


class IamActivity:
    def __init__(self, client: Any) -> None:
        self._iam = client

    def last_used(self, arn: str) -> LastUsed:
        parsed = arns.parse(arn)
        if parsed is None or parsed.kind not in ("user", "role"):
            return LastUsed(None, "")
        if parsed.kind == "role":
            role = self._call("GetRole", lambda: self._iam.get_role(RoleName=parsed.name)["Role"])
            return _latest([(role.get("RoleLastUsed", {}).get("LastUsedDate"), "role")])
        user = self._call("GetUser", lambda: self._iam.get_user(UserName=parsed.name)["User"])
        seen: list[tuple[datetime | None, str]] = [(user.get("PasswordLastUsed"), "console")]
        keys = self._call("ListAccessKeys", lambda: self._every_key(parsed.name))
        for key in keys:
            used = self._call(
                "GetAccessKeyLastUsed", lambda key=key: self._iam.get_access_key_last_used(AccessKeyId=key)
            )
            seen.append((used.get("AccessKeyLastUsed", {}).get("LastUsedDate"), f"access key {key}"))
        return _latest(seen)

    def _every_key(self, user: str) -> list[str]:
        pages = self._iam.get_paginator("list_access_keys").paginate(UserName=user)
        return [key["AccessKeyId"] for page in pages for key in page.get("AccessKeyMetadata", [])]

    @staticmethod
    def _call(action: str, request: Any) -> Any:
        try:
            return request()
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "NoSuchEntity":
                raise NotFound(f"IAM {action}: NoSuchEntity") from err
            raise _translate(action, err) from err
        except BotoCoreError as err:
            raise _translate(action, err) from err


def _latest(seen: list[tuple[datetime | None, str]]) -> LastUsed:
    dated = [(when, how) for when, how in seen if when is not None]
    if not dated:
        return LastUsed(None, "")
    when, how = max(dated, key=lambda item: item[0])
    return LastUsed(when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"), how)
