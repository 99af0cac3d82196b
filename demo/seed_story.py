"""The seed scenario, step by step: IAM changes in the emulator, their CloudTrail events through the
real handlers, and what each developer can then do, asked with their own EKS token — the seed's
`kubectl auth can-i` checks as a table. Everything runs locally and is torn down at the end."""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from kubernetes.client import ApiClient
from kubernetes.client.rest import ApiException

from tests.harness.cloudtrail import iam_event
from tests.harness.function import Function, cluster_config, deployed
from tests.harness.principals import Principal, can, iam_user
from tests.harness.stack import CLUSTER, Stack, local_stack

if TYPE_CHECKING:
    from mypy_boto3_iam.type_defs import TagTypeDef

GROUP, ROLE = "iam-bttrm-web-ro-group", "iam-bttrm-web-ro-role"
P1, P2, P3 = "bttrm-web-proj-1-ns", "bttrm-web-proj-2-ns", "bttrm-web-proj-3-ns"
CHECKS = [
    ("get pods", "get", "pods", P1),
    ("list pods", "list", "pods", P1),
    ("watch pods", "watch", "pods", P2),
    ("list pods", "list", "pods", P3),
    ("list pods", "list", "pods", "default"),
    ("create pods", "create", "pods", P1),
    ("list nodes", "list", "nodes", None),
]
LOG = Path(tempfile.gettempdir()) / "eks-iam-sync-demo.log"


def say(text: str = "") -> None:
    print(text, flush=True)


def answer(api: ApiClient, verb: str, resource: str, namespace: str | None) -> str:
    try:
        return "yes" if can(api, verb, resource, namespace) else "no"
    except ApiException as err:
        return "no (401: not mapped)" if err.status == 401 else f"error {err.status}"


def table(stack: Stack, people: dict[str, Principal]) -> None:
    time.sleep(0.5)  # the apiserver's RBAC cache follows writes within moments
    clients = [stack.plane.client_for(who.token(CLUSTER)) for who in people.values()]  # a new token, as kubectl would
    width = 34
    say(f"    {'kubectl auth can-i':{width}}" + "".join(f"{name:>22}" for name in people))
    for label, verb, resource, namespace in CHECKS:
        where = f" -n {namespace}" if namespace else ""
        row = f"    {label + where:{width}}"
        row += "".join(f"{answer(api, verb, resource, namespace):>22}" for api in clients)
        say(row)
    say()


def step(
    number: int, title: str, change: Callable[[], object], event: dict[str, Any], fn: Function, log: io.StringIO
) -> None:
    say(f"{number}. {title}")
    change()
    with contextlib.redirect_stdout(log):
        result = fn.invoke("on_iam_event", event) if event else fn.invoke("reconcile_all")
    report(result)


def report(result: dict[str, Any]) -> None:
    summary = result.get("clusters", {}).get(CLUSTER, {})
    identities = summary.get("identities", {})
    for item in identities.get("changes", []) + summary.get("roleBindings", []):
        say(f"    applied: {item['text']}")
    for refusal in summary.get("grantRefusals", []):
        say(f"    refused ({refusal['reason']}): {refusal['principal']}: {refusal['subject']}: {refusal['message']}")
    for refusal in identities.get("refusals", []):
        say(f"    refused ({refusal['reason']}): {refusal['message']}")
    if result.get("status") == "ignored":
        say(f"    ignored: {result['reason']} ({result['detail']})")


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
        with deployed(stack.service, cluster_config(stack.plane), Path(tmp)) as fn:
            step(
                0,
                "reconcile_all (the schedule): the shared role is mapped, the group's RoleBindings made",
                lambda: None,
                {},
                fn,
                log,
            )
            table(stack, people)
            add = {"groupName": GROUP, "userName": "alice"}
            step(
                1,
                "AddUserToGroup alice",
                lambda: iam.add_user_to_group(**{"GroupName": GROUP, "UserName": "alice"}),
                iam_event("AddUserToGroup", add),
                fn,
                log,
            )
            table(stack, people)
            step(
                2,
                "AddUserToGroup bob",
                lambda: iam.add_user_to_group(GroupName=GROUP, UserName="bob"),
                iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "bob"}),
                fn,
                log,
            )
            table(stack, people)
            step(
                3,
                "RemoveUserFromGroup bob",
                lambda: iam.remove_user_from_group(GroupName=GROUP, UserName="bob"),
                iam_event("RemoveUserFromGroup", {"groupName": GROUP, "userName": "bob"}),
                fn,
                log,
            )
            table(stack, people)
            tag: TagTypeDef = {"Key": f"eks-access/{P3}", "Value": "pods-ro"}
            step(
                4,
                f"TagUser alice eks-access/{P3}=pods-ro",
                lambda: iam.tag_user(UserName="alice", Tags=[tag]),
                iam_event("TagUser", {"userName": "alice", "tags": [{"key": tag["Key"], "value": tag["Value"]}]}),
                fn,
                log,
            )
            table(stack, people)
            bad: TagTypeDef = {"Key": "eks-access/kube-system", "Value": "pods-ro"}
            step(
                5,
                "TagUser alice eks-access/kube-system=pods-ro (a denied namespace)",
                lambda: iam.tag_user(UserName="alice", Tags=[bad]),
                iam_event("TagUser", {"userName": "alice", "tags": [{"key": bad["Key"], "value": bad["Value"]}]}),
                fn,
                log,
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
            )
            table(stack, people)
            step(
                7,
                "AddUserToGroup for a group the configuration does not name",
                lambda: None,
                iam_event("AddUserToGroup", {"groupName": "billing-admins", "userName": "bob"}),
                fn,
                log,
            )
            say()
    LOG.write_text(log.getvalue())
    say(f"done in {time.monotonic() - started:.1f} s; the function's JSON logs and EMF metrics are in {LOG}")


if __name__ == "__main__":
    main()
