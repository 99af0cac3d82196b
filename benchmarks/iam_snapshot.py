"""IAM calls for a full snapshot of 2 000 users and 300 roles (moto, in process).

Prints the number of IAM API calls the reader makes: it grows with pages, not principals. moto
returns GetAccountAuthorizationDetails in one page; against IAM (at most 1 000 items a page) the
same account takes about three.
"""

from __future__ import annotations

import os
import time

import boto3
from moto import mock_aws

from chalicelib.adapters.iam import IamReader, iam_client

USERS, ROLES, GROUPS = 2000, 300, 20


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


if __name__ == "__main__":
    main()
