"""The seed scenario, step by step: IAM changes in the emulator, their CloudTrail events through the
real handlers, and what each developer can then do, asked with their own EKS token — the seed's
`kubectl auth can-i` checks as a table. Act two (demo/access_entries.py) adds a cluster whose
authentication mode has EKS access entries. Everything runs locally and is torn down at the end."""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

from demo import access_entries, queued
from demo.show import say, step, table
from tests.harness.cloudtrail import iam_event
from tests.harness.function import cluster_config, deployed
from tests.harness.principals import iam_user
from tests.harness.stack import CLUSTER, local_stack

if TYPE_CHECKING:
    from mypy_boto3_iam.type_defs import TagTypeDef

GROUP, ROLE = "iam-bttrm-web-ro-group", "iam-bttrm-web-ro-role"
P1, P2, P3 = "bttrm-web-proj-1-ns", "bttrm-web-proj-2-ns", "bttrm-web-proj-3-ns"
LOG = Path(tempfile.gettempdir()) / "eks-iam-sync-demo.log"


def main() -> None:
    started = time.monotonic()
    say("eks-iam-sync demo: the seed scenario on a local stack (moto + etcd + kube-apiserver 1.20)")
    log = io.StringIO()
    with local_stack((P1, P2, P3), "rbac-bttrm-pods-ro-cluster-role") as stack, tempfile.TemporaryDirectory() as tmp:
        say(
            f"  stack up in {time.monotonic() - started:.1f} s: apiserver {stack.plane.endpoint}, "
            f"IAM/STS emulator {stack.aws_endpoint}"
        )
        iam = boto3.client("iam")
        iam.create_group(GroupName=GROUP)
        iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument="{}")
        alice, bob = iam_user("alice"), iam_user("bob")
        people = {"alice": alice, "bob": bob}
        say("  IAM: group iam-bttrm-web-ro-group, role iam-bttrm-web-ro-role, users alice and bob")
        say("  cluster: ClusterRole rbac-bttrm-pods-ro-cluster-role (pods get/list/watch), three project namespaces;")
        say("           the function's role mapped to the group eks-iam-sync, bound to infra/kubernetes/rbac.yaml only")
        say()
        one = (CLUSTER,)
        (Path(tmp) / "act-1").mkdir()
        with deployed(stack.service, cluster_config(stack.plane), Path(tmp) / "act-1") as fn:
            add = {"groupName": GROUP, "userName": "alice"}
            step(
                0,
                "AddUserToGroup alice, before any full run: her mapping and her group's RoleBindings",
                lambda: iam.add_user_to_group(**{"GroupName": GROUP, "UserName": "alice"}),
                iam_event("AddUserToGroup", add),
                fn,
                log,
                one,
            )
            table(stack.plane, CLUSTER, people)
            step(
                1,
                "reconcile_all (the schedule): the shared role is mapped; alice's access was already whole",
                lambda: None,
                {},
                fn,
                log,
                one,
            )
            table(stack.plane, CLUSTER, people)
            step(
                2,
                "AddUserToGroup bob",
                lambda: iam.add_user_to_group(GroupName=GROUP, UserName="bob"),
                iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "bob"}),
                fn,
                log,
                one,
            )
            table(stack.plane, CLUSTER, people)
            step(
                3,
                "RemoveUserFromGroup bob",
                lambda: iam.remove_user_from_group(GroupName=GROUP, UserName="bob"),
                iam_event("RemoveUserFromGroup", {"groupName": GROUP, "userName": "bob"}),
                fn,
                log,
                one,
            )
            table(stack.plane, CLUSTER, people)
            tag: TagTypeDef = {"Key": f"eks-access/{P3}", "Value": "pods-ro"}
            step(
                4,
                f"TagUser alice eks-access/{P3}=pods-ro",
                lambda: iam.tag_user(UserName="alice", Tags=[tag]),
                iam_event("TagUser", {"userName": "alice", "tags": [{"key": tag["Key"], "value": tag["Value"]}]}),
                fn,
                log,
                one,
            )
            table(stack.plane, CLUSTER, people)
            bad: TagTypeDef = {"Key": "eks-access/kube-system", "Value": "pods-ro"}
            step(
                5,
                "TagUser alice eks-access/kube-system=pods-ro (a denied namespace)",
                lambda: iam.tag_user(UserName="alice", Tags=[bad]),
                iam_event("TagUser", {"userName": "alice", "tags": [{"key": bad["Key"], "value": bad["Value"]}]}),
                fn,
                log,
                one,
            )
            say()
            keys = [tag["Key"], bad["Key"]]
            step(
                6,
                "UntagUser alice (both tags)",
                lambda: iam.untag_user(UserName="alice", TagKeys=keys),
                iam_event("UntagUser", {"userName": "alice", "tagKeys": keys}),
                fn,
                log,
                one,
            )
            table(stack.plane, CLUSTER, people)
            step(
                7,
                "AddUserToGroup for a group the configuration does not name",
                lambda: None,
                iam_event("AddUserToGroup", {"groupName": "billing-admins", "userName": "bob"}),
                fn,
                log,
                one,
            )
            say()
        queued.act(stack, Path(tmp) / "act-queued", log)
        access_entries.act_two(stack, people, Path(tmp) / "act-2", log)
    LOG.write_text(log.getvalue())
    say(f"done in {time.monotonic() - started:.1f} s; the function's JSON logs and EMF metrics are in {LOG}")


if __name__ == "__main__":
    main()
