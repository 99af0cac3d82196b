"""The seed story end to end: CloudTrail events through the Chalice handlers, the function on its
own role's credentials and EKS token, every step checked as the IAM user sees it with their own token."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from chalicelib.config import DEFAULT_CONFIG_PATH
from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.errors import PermanentError, TransientError
from chalicelib.model.bindings import binding_name
from chalicelib.model.ownership import LEDGER_ANNOTATION, MANAGED_BY_SELECTOR
from tests.conftest import Environment
from tests.harness.cloudtrail import iam_event
from tests.harness.function import Function, cluster_config, deployed
from tests.harness.principals import Principal, assert_seed_access, eventually, iam_user
from tests.harness.service import (
    Service,
    prepare_seed_cluster,
)

pytestmark = pytest.mark.cluster

GROUP = "iam-bttrm-web-ro-group"
PROJECTS = ("bttrm-web-proj-1-ns", "bttrm-web-proj-2-ns")
NS3 = "bttrm-web-proj-3-ns"
POD_READER = "rbac-bttrm-pods-ro-cluster-role"


@pytest.fixture
def function(env: Environment, service: Service, tmp_path: Path) -> Iterator[Function]:
    prepare_seed_cluster(env.plane, service)
    with deployed(service, cluster_config(env.plane), tmp_path) as fn:
        # No full run first: the first console click must give working access on its own.
        yield fn


def send(fn: Function, name: str, **params: object) -> dict[str, Any]:
    result: dict[str, Any] = fn.invoke("on_iam_event", iam_event(name, dict(params)))
    return result


def person() -> tuple[Principal, str]:
    name = f"dev-{uuid.uuid4().hex[:8]}"
    return iam_user(name), name


def status(env: Environment, who: Principal, namespace: str) -> int:
    try:
        client.CoreV1Api(env.plane.client_for(who.token(env.cluster_name))).list_namespaced_pod(namespace)
    except ApiException as err:
        return int(err.status)
    return 200


def aws_auth(env: Environment) -> client.V1ConfigMap:
    return client.CoreV1Api(env.admin()).read_namespaced_config_map("aws-auth", "kube-system")


def seed_access(env: Environment, who: Principal) -> None:
    assert_seed_access(env.plane.client_for(who.token(env.cluster_name)), PROJECTS)


def test_the_seed_story(env: Environment, function: Function, capfd: pytest.CaptureFixture[str]) -> None:
    iam = boto3.client("iam")
    (first, first_name), (second, second_name) = person(), person()

    iam.add_user_to_group(GroupName=GROUP, UserName=first_name)
    result = send(function, "AddUserToGroup", groupName=GROUP, userName=first_name)
    assert result["status"] == "reconciled"
    seed_access(env, first)

    iam.add_user_to_group(GroupName=GROUP, UserName=second_name)
    send(function, "AddUserToGroup", groupName=GROUP, userName=second_name)
    seed_access(env, first)
    seed_access(env, second)

    iam.remove_user_from_group(GroupName=GROUP, UserName=second_name)
    send(function, "RemoveUserFromGroup", groupName=GROUP, userName=second_name)
    assert status(env, second, PROJECTS[0]) == 401
    assert status(env, first, PROJECTS[0]) == 200

    iam.tag_user(UserName=first_name, Tags=[{"Key": f"eks-access/{NS3}", "Value": "pods-ro"}])
    send(function, "TagUser", userName=first_name, tags=[{"key": f"eks-access/{NS3}", "value": "pods-ro"}])
    assert eventually(lambda: status(env, first, NS3) == 200)

    iam.untag_user(UserName=first_name, TagKeys=[f"eks-access/{NS3}"])
    send(function, "UntagUser", userName=first_name, tagKeys=[f"eks-access/{NS3}"])
    assert eventually(lambda: status(env, first, NS3) == 403)

    for key, value in (("eks-access/kube-system", "pods-ro"), (f"eks-access/{NS3}", "cluster-admin")):
        iam.tag_user(UserName=first_name, Tags=[{"Key": key, "Value": value}])
        result = send(function, "TagUser", userName=first_name, tags=[{"key": key, "value": value}])
        refusals = result["clusters"][env.cluster_name]["grantRefusals"]
        assert any(key in r["subject"] for r in refusals), refusals
        iam.untag_user(UserName=first_name, TagKeys=[key])
    owned = client.RbacAuthorizationV1Api(env.admin()).list_role_binding_for_all_namespaces(
        label_selector=MANAGED_BY_SELECTOR
    )
    assert {b.metadata.namespace for b in owned.items} == set(PROJECTS)
    assert status(env, first, "kube-system") == 403

    iam.remove_user_from_group(GroupName=GROUP, UserName=first_name)
    iam.delete_user(UserName=first_name)
    send(function, "DeleteUser", userName=first_name)
    cm = aws_auth(env)
    assert first.arn not in {e.arn for e in read_aws_auth(cm.data).entries("mapUsers")}
    assert not Ledger.parse(cm.metadata.annotations[LEDGER_ANNOTATION]).owns(first.arn)

    logs = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    changed = [line for line in logs if line.get("message") == "aws-auth entry changed"]
    assert changed and all(line["correlation_id"] and line["actor"].endswith("console-admin") for line in changed)
    assert {line["action"] for line in changed} == {"add", "remove"}


def test_duplicate_and_out_of_order_delivery_end_in_the_same_state(env: Environment, function: Function) -> None:
    iam = boto3.client("iam")
    who, name = person()
    iam.add_user_to_group(GroupName=GROUP, UserName=name)
    iam.remove_user_from_group(GroupName=GROUP, UserName=name)
    add = iam_event("AddUserToGroup", {"groupName": GROUP, "userName": name})
    remove = iam_event("RemoveUserFromGroup", {"groupName": GROUP, "userName": name})
    for event in (remove, add, add):  # out of order, then a duplicate: IAM says "not a member"
        function.invoke("on_iam_event", event)
    assert who.arn not in {e.arn for e in read_aws_auth(aws_auth(env).data).entries("mapUsers")}

    iam.add_user_to_group(GroupName=GROUP, UserName=name)
    before = None
    for event in (add, add, remove):
        function.invoke("on_iam_event", event)
        version = aws_auth(env).metadata.resource_version
        assert before is None or version == before  # duplicates and stale hints write nothing
        before = version
    users = [e for e in read_aws_auth(aws_auth(env).data).entries("mapUsers") if e.arn == who.arn]
    assert len(users) == 1


def test_a_malformed_aws_auth_is_not_touched(
    env: Environment, function: Function, capsys: pytest.CaptureFixture[str]
) -> None:
    iam = boto3.client("iam")
    _, name = person()
    iam.add_user_to_group(GroupName=GROUP, UserName=name)
    function.invoke("reconcile_all")
    core = client.CoreV1Api(env.admin())
    cm = aws_auth(env)
    # The slip is in mapUsers: the authenticator drops every entry of a key that does not load, and
    # the service's own mapping is in mapRoles, so the service still gets in (a slip in mapRoles would
    # lock it out: a 401, not the refusal this test is about, once the apiserver's 10 s token cache
    # lapses on a busy machine).
    assert "  username:" in cm.data["mapUsers"]
    cm.data["mapUsers"] = cm.data["mapUsers"].replace("  username:", "\tusername:", 1)
    cm = core.replace_namespaced_config_map("aws-auth", "kube-system", cm)
    capsys.readouterr()
    # A refusal is a failure the operator must see: the invocation raises (Errors metric, retries, DLQ).
    with pytest.raises(PermanentError, match=f"cluster {env.cluster_name}: refused \\(current-not-understood\\)"):
        send(function, "AddUserToGroup", groupName=GROUP, userName=name)
    after = aws_auth(env)
    assert after.data == cm.data and after.metadata.resource_version == cm.metadata.resource_version
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("GuardrailRefusals") and m.get("reason") == "current-not-understood" for m in metrics)


def test_reconcile_all_repairs_drift_and_leaves_foreign_entries(env: Environment, function: Function) -> None:
    iam = boto3.client("iam")
    who, name = person()
    iam.add_user_to_group(GroupName=GROUP, UserName=name)
    assert function.invoke("reconcile_all")["status"] == "reconciled"
    seed_access(env, who)

    core, rbac = client.CoreV1Api(env.admin()), client.RbacAuthorizationV1Api(env.admin())
    cm = aws_auth(env)
    foreign = "- userarn: arn:aws:iam::123456789012:user/by-hand\n  username: by-hand\n  groups: [ops]\n"
    cm.data["mapUsers"] = (
        cm.data["mapUsers"].replace(f'username: "eks-iam-sync:user:{name}"', 'username: "hijacked"') + foreign
    )
    core.replace_namespaced_config_map("aws-auth", "kube-system", cm)
    rbac.delete_namespaced_role_binding(binding_name("group", "rbac-bttrm-web-ro-group", POD_READER), PROJECTS[1])

    function.invoke("reconcile_all")
    entries = {e.arn: e for e in read_aws_auth(aws_auth(env).data).entries("mapUsers")}
    assert entries[who.arn].username == f"eks-iam-sync:user:{name}"
    assert entries["arn:aws:iam::123456789012:user/by-hand"].groups == ("ops",)
    seed_access(env, who)


def test_ignored_events_are_counted_and_do_not_raise(env: Environment, function: Function) -> None:
    failed = iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "x"}, error_code="AccessDenied")
    assert function.invoke("on_iam_event", failed)["reason"] == "error-code"
    other = iam_event("AddUserToGroup", {"groupName": "some-other-group", "userName": "x"})
    assert function.invoke("on_iam_event", other)["reason"] == "not-configured"
    malformed = iam_event("AddUserToGroup", {"groupName": GROUP})
    result = function.invoke("on_iam_event", malformed)
    assert result["reason"] == "malformed" and result["eventId"] == malformed["detail"]["eventID"]
    hostile = iam_event("AddUserToGroup", {"groupName": GROUP, "userName": ["not", "a", "name"]})
    assert function.invoke("on_iam_event", hostile)["reason"] == "malformed"
    nameless = iam_event("AddUserToGroup", {"groupName": GROUP, "userName": "x"})
    del nameless["detail"]["eventName"]
    result = function.invoke("on_iam_event", nameless)
    assert result["reason"] == "malformed" and result["eventId"] == nameless["detail"]["eventID"]


def test_an_unreachable_cluster_raises_for_a_retry(env: Environment, service: Service, tmp_path: Path) -> None:
    text = cluster_config(env.plane).replace(env.plane.endpoint, "https://127.0.0.1:9")
    boto3.client("iam").add_user_to_group(
        GroupName=GROUP, UserName=iam_user(f"u-{uuid.uuid4().hex[:6]}").arn.rsplit("/", 1)[-1]
    )
    with deployed(service, text, tmp_path) as fn, pytest.raises(TransientError, match="unreachable"):
        fn.invoke("reconcile_all")


def test_the_default_stage_config_points_at_the_shipped_example() -> None:
    config = json.loads((Path(__file__).parents[2] / ".chalice" / "config.json").read_text())
    assert config["environment_variables"]["EKS_IAM_SYNC_CONFIG"] == "chalicelib/default-config.yaml"
    assert (Path(__file__).parents[2] / config["environment_variables"]["EKS_IAM_SYNC_CONFIG"]) == DEFAULT_CONFIG_PATH


def test_a_deleted_group_s_former_members_are_found_in_the_ledger(env: Environment, function: Function) -> None:
    iam = boto3.client("iam")
    who, name = person()
    iam.add_user_to_group(GroupName=GROUP, UserName=name)
    send(function, "AddUserToGroup", groupName=GROUP, userName=name)
    assert who.arn in {e.arn for e in read_aws_auth(aws_auth(env).data).entries("mapUsers")}
    iam.remove_user_from_group(GroupName=GROUP, UserName=name)
    iam.delete_group(GroupName=GROUP)  # IAM can no longer say who was in it
    result = send(function, "DeleteGroup", groupName=GROUP)
    assert any(who.arn == change["arn"] for change in result["clusters"][env.cluster_name]["identities"]["changes"])
    assert who.arn not in {e.arn for e in read_aws_auth(aws_auth(env).data).entries("mapUsers")}


def test_a_renamed_user_is_remapped_under_the_new_arn(env: Environment, function: Function) -> None:
    iam = boto3.client("iam")
    who, name = person()
    iam.add_user_to_group(GroupName=GROUP, UserName=name)
    send(function, "AddUserToGroup", groupName=GROUP, userName=name)
    renamed = f"{name}-renamed"
    iam.update_user(UserName=name, NewUserName=renamed, NewPath="/moved/")
    send(function, "UpdateUser", userName=name, newUserName=renamed, newPath="/moved/")
    users = {e.arn: e.username for e in read_aws_auth(aws_auth(env).data).entries("mapUsers")}
    assert who.arn not in users
    assert users[f"arn:aws:iam::123456789012:user/moved/{renamed}"] == f"eks-iam-sync:user:{renamed}"
