"""IAM calls for a full snapshot of 2 000 users and 300 roles (moto, in process).

Prints the number of IAM API calls the reader makes: it grows with pages, not principals. moto
returns GetAccountAuthorizationDetails in one page, so the same reader is also run against IAM's
pagination (pages of at most 1 000 details, served by botocore's Stubber) and its calls counted.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import boto3
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.adapters.iam import IamReader, iam_client

USERS, ROLES, GROUPS = 2000, 300, 20
PAGE = 1000
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def paged_like_iam(users: int, roles: int) -> int:
    """The same reader against IAM's pagination (Stubber): pages of at most MaxItems details."""
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    details = [("User", f"user-{u}") for u in range(users)] + [("Role", f"role-{r}") for r in range(roles)]
    calls = 0
    with Stubber(client) as stub:
        for start in range(0, len(details), PAGE):
            chunk = details[start : start + PAGE]
            more = start + PAGE < len(details)
            page: dict[str, object] = {
                "UserDetailList": [_user(n) for kind, n in chunk if kind == "User"],
                "RoleDetailList": [_role(n) for kind, n in chunk if kind == "Role"],
                "GroupDetailList": [],
                "Policies": [],
                "IsTruncated": more,
                **({"Marker": f"m{start + PAGE}"} if more else {}),
            }
            expected = {
                "Filter": ["User", "Role", "Group"],
                "MaxItems": PAGE,
                **({"Marker": f"m{start}"} if start else {}),
            }
            stub.add_response("get_account_authorization_details", page, expected)
            calls += 1
        snapshot = IamReader(client).full_snapshot()
        stub.assert_no_pending_responses()
    assert len(snapshot.users) == users and len(snapshot.roles) == roles
    return calls


def _user(name: str) -> dict[str, object]:
    return {
        "UserName": name,
        "Arn": f"arn:aws:iam::111122223333:user/{name}",
        "Path": "/",
        "UserId": "AIDA" + "X" * 16,
        "CreateDate": CREATED,
        "GroupList": ["group-1"],
    }


def _role(name: str) -> dict[str, object]:
    return {
        "RoleName": name,
        "Arn": f"arn:aws:iam::111122223333:role/{name}",
        "Path": "/",
        "RoleId": "AROA" + "X" * 16,
        "CreateDate": CREATED,
    }


def main() -> None:
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    with mock_aws():
        iam = boto3.client("iam")
        for g in range(GROUPS):
            iam.create_group(GroupName=f"group-{g}")
        for u in range(USERS):
            iam.create_user(UserName=f"user-{u}", Path=f"/team-{u % 7}/", Tags=[{"Key": "eks-access/ns", "Value": "p"}])
            iam.add_user_to_group(GroupName=f"group-{u % GROUPS}", UserName=f"user-{u}")
        for r in range(ROLES):
            iam.create_role(RoleName=f"role-{r}", AssumeRolePolicyDocument="{}")
        client = iam_client()
        calls: list[str] = []
        client.meta.events.register("before-call.iam", lambda model, **_: calls.append(model.name))
        started = time.perf_counter()
        snapshot = IamReader(client).full_snapshot()
        elapsed = time.perf_counter() - started
    print("full IAM snapshot")
    print(f"  principals        {len(snapshot.users)} users, {len(snapshot.roles)} roles")
    print(f"  IAM calls         {len(calls)} ({', '.join(sorted(set(calls)))})")
    print(f"  calls/principal   {len(calls) / (len(snapshot.users) + len(snapshot.roles)):.4f}")
    print(f"  time (moto)       {elapsed:.2f} s")
    print(f"  IAM calls with IAM's pagination ({PAGE} per page, Stubber): {paged_like_iam(USERS, ROLES)}")


if __name__ == "__main__":
    main()
