"""adapters/iam_activity.py against botocore's Stubber (no network): a role's RoleLastUsed, a user's
latest of console and access keys, no record, and a principal that is gone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.adapters.iam_activity import IamActivity
from chalicelib.errors import Forbidden, NotFound
from chalicelib.model.ports import LastUsed

ACCOUNT = "123456789012"


def stubbed() -> tuple[IamActivity, Stubber]:
    client: Any = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return IamActivity(client), Stubber(client)


def user(name: str, **extra: Any) -> dict[str, Any]:
    created = datetime(2020, 1, 1, tzinfo=UTC)
    return {
        "User": {
            "Path": "/",
            "UserName": name,
            "UserId": "AIDA" + "X" * 16,
            "Arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "CreateDate": created,
            **extra,
        }
    }


def test_a_role_last_used() -> None:
    activity, stub = stubbed()
    role: dict[str, Any] = {
        "Path": "/ops/",
        "RoleName": "deploy",
        "RoleId": "AROA" + "X" * 16,
        "Arn": f"arn:aws:iam::{ACCOUNT}:role/ops/deploy",
    }
    role |= {"CreateDate": datetime(2020, 1, 1, tzinfo=UTC), "AssumeRolePolicyDocument": "{}"}
    used = {"LastUsedDate": datetime(2026, 11, 1, 8, 30, tzinfo=UTC), "Region": "eu-west-1"}
    stub.add_response("get_role", {"Role": {**role, "RoleLastUsed": used}}, {"RoleName": "deploy"})
    with stub:
        assert activity.last_used(f"arn:aws:iam::{ACCOUNT}:role/ops/deploy") == LastUsed("2026-11-01T08:30:00Z", "role")


def test_a_user_the_latest_of_console_and_keys() -> None:
    activity, stub = stubbed()
    stub.add_response(
        "get_user", user("alice", PasswordLastUsed=datetime(2026, 10, 1, tzinfo=UTC)), {"UserName": "alice"}
    )
    keys = [{"UserName": "alice", "AccessKeyId": f"AKIA{n:016d}", "Status": "Active"} for n in (1, 2)]
    stub.add_response("list_access_keys", {"AccessKeyMetadata": keys, "IsTruncated": False}, {"UserName": "alice"})
    for n, when in ((1, datetime(2026, 11, 20, tzinfo=UTC)), (2, None)):
        record = {"ServiceName": "s3", "Region": "us-east-1"} | ({"LastUsedDate": when} if when else {})
        stub.add_response(
            "get_access_key_last_used",
            {"UserName": "alice", "AccessKeyLastUsed": record},
            {"AccessKeyId": f"AKIA{n:016d}"},
        )
    with stub:
        found = activity.last_used(f"arn:aws:iam::{ACCOUNT}:user/alice")
    assert found == LastUsed("2026-11-20T00:00:00Z", f"access key AKIA{1:016d}")


def test_no_record_and_no_principal() -> None:
    activity, stub = stubbed()
    stub.add_response("get_user", user("bob"), {"UserName": "bob"})
    stub.add_response("list_access_keys", {"AccessKeyMetadata": [], "IsTruncated": False}, {"UserName": "bob"})
    stub.add_client_error("get_user", "NoSuchEntity", http_status_code=404, expected_params={"UserName": "gone"})
    stub.add_client_error("get_user", "AccessDenied", http_status_code=403, expected_params={"UserName": "hidden"})
    with stub:
        assert activity.last_used(f"arn:aws:iam::{ACCOUNT}:user/bob") == LastUsed(None, "")
        with pytest.raises(NotFound):
            activity.last_used(f"arn:aws:iam::{ACCOUNT}:user/gone")
        with pytest.raises(Forbidden):
            activity.last_used(f"arn:aws:iam::{ACCOUNT}:user/hidden")
    assert activity.last_used("system:anonymous") == LastUsed(None, "")  # not an IAM principal: nothing asked
