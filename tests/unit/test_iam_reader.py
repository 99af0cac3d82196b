"""The IAM reader: full and scoped snapshots, pagination, and "failed" never mistaken for "empty"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.adapters.iam import IamReader, iam_client
from chalicelib.errors import PermanentError, TransientError
from chalicelib.model.snapshot import IamRole, IamUser


@pytest.fixture
def iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


def count_calls(client: object) -> list[str]:
    calls: list[str] = []
    client.meta.events.register("before-call.iam", lambda model, **_: calls.append(model.name))  # type: ignore[attr-defined]
    return calls


def test_full_snapshot_has_users_with_paths_groups_and_tags_and_roles(iam) -> None:
    iam.create_group(GroupName="devs")
    iam.create_user(UserName="alice", Path="/eng/", Tags=[{"Key": "eks-access/ns3", "Value": "pods-ro"}])
    iam.add_user_to_group(GroupName="devs", UserName="alice")
    iam.create_role(RoleName="ci", Path="/svc/", AssumeRolePolicyDocument="{}", Tags=[{"Key": "k", "Value": "v"}])
    client = iam_client()
    calls = count_calls(client)
    snapshot = IamReader(client).full_snapshot()
    [user] = snapshot.users
    assert user.id == iam.get_user(UserName="alice")["User"]["UserId"]
    assert user == IamUser(
        "alice", "arn:aws:iam::123456789012:user/eng/alice", ("devs",), {"eks-access/ns3": "pods-ro"}, user.id
    )
    [role] = [r for r in snapshot.roles if r.name == "ci"]
    assert role.id == iam.get_role(RoleName="ci")["Role"]["RoleId"]
    assert role == IamRole("ci", "arn:aws:iam::123456789012:role/svc/ci", {"k": "v"}, role.id)
    assert role.unpathed_arn == "arn:aws:iam::123456789012:role/ci"
    assert calls == ["GetAccountAuthorizationDetails"]


def test_scoped_snapshot_reads_two_calls_per_user_and_leaves_out_who_does_not_exist(iam) -> None:
    iam.create_group(GroupName="devs")
    iam.create_user(UserName="bob")
    iam.add_user_to_group(GroupName="devs", UserName="bob")
    client = iam_client()
    calls = count_calls(client)
    snapshot = IamReader(client).scoped_snapshot(["bob", "ghost"], ["gone-role"])
    assert [u.name for u in snapshot.users] == ["bob"] and snapshot.users[0].groups == ("devs",)
    assert calls == ["GetUser", "ListGroupsForUser", "GetUser", "GetRole"]


def detail_page(users: list[str], marker: str | None) -> dict[str, object]:
    page: dict[str, object] = {
        "UserDetailList": [
            {
                "UserName": u,
                "Arn": f"arn:aws:iam::111122223333:user/{u}",
                "Path": "/",
                "UserId": "AIDA" + u.upper().ljust(16, "X"),
                "CreateDate": datetime(2026, 1, 1, tzinfo=UTC),
                "GroupList": ["devs"],
            }
            for u in users
        ],
        "GroupDetailList": [],
        "RoleDetailList": [],
        "Policies": [],
        "IsTruncated": marker is not None,
    }
    if marker:
        page["Marker"] = marker
    return page


def test_pagination_is_followed_to_the_end() -> None:
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stub:
        stub.add_response(
            "get_account_authorization_details",
            detail_page(["a", "b"], "m1"),
            {"Filter": ["User", "Role", "Group"], "MaxItems": 1000},
        )
        stub.add_response(
            "get_account_authorization_details",
            detail_page(["c"], None),
            {"Filter": ["User", "Role", "Group"], "MaxItems": 1000, "Marker": "m1"},
        )
        snapshot = IamReader(client).full_snapshot()
    assert [u.name for u in snapshot.users] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("Throttling", 400, TransientError),
        ("ServiceUnavailable", 503, TransientError),
        ("AccessDenied", 403, PermanentError),
    ],
)
def test_a_failed_page_fails_the_whole_snapshot(code: str, status: int, error: type[Exception]) -> None:
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stub:
        stub.add_response(
            "get_account_authorization_details",
            detail_page(["a"], "m1"),
            {"Filter": ["User", "Role", "Group"], "MaxItems": 1000},
        )
        stub.add_client_error("get_account_authorization_details", code, http_status_code=status)
        with pytest.raises(error):
            IamReader(client).full_snapshot()


def test_a_failed_group_listing_is_not_an_empty_one() -> None:
    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    with Stubber(client) as stub:
        stub.add_response(
            "get_user",
            {
                "User": {
                    "UserName": "bob",
                    "Arn": "arn:aws:iam::111122223333:user/bob",
                    "Path": "/",
                    "UserId": "AIDABOBXXXXXXXXXXXXX",
                    "CreateDate": datetime(2026, 1, 1, tzinfo=UTC),
                }
            },
        )
        stub.add_client_error("list_groups_for_user", "Throttling", http_status_code=400)
        with pytest.raises(TransientError):
            IamReader(client).scoped_snapshot(["bob"])
