"""Clusters in other accounts and IAM in an identity account, end to end: the deployed function (its
own role in the session's account) reconciles the session's cluster and a second real apiserver that
belongs to account 222222222222 (the EKS emulator shows it only to that account's credentials), which
it reaches as a role of that account (moto: an assumed role's session acts in the role's account).
That cluster maps the ASSUMED role through an access entry; people are checked with their own tokens.

moto does not evaluate trust policies or external ids (any AssumeRole succeeds, even of a role that
does not exist), so a refused AssumeRole is tested with botocore's Stubber (tests/unit/
test_assumed_roles.py); here, what is real: a role the other cluster does not map fails that cluster,
and only that one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import utils
from moto.sts.models import sts_backends

from chalicelib.config import DEFAULT_CONFIG_PATH
from chalicelib.errors import PermanentError
from chalicelib.model.ownership import MANAGED_BY_LABEL, SERVICE_GROUP, SERVICE_USERNAME
from tests.conftest import CLUSTER_NAME, CLUSTER_REGION, Environment
from tests.harness.authenticator import TokenAuthenticator
from tests.harness.cloudtrail import iam_event
from tests.harness.eks_emulator import EksEmulator
from tests.harness.function import deployed
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, assert_seed_access, eventually, iam_user
from tests.harness.service import (
    MANIFEST,
    SEED_CLUSTER_ROLE,
    SEED_GROUP,
    SEED_NAMESPACES,
    Service,
    delete_owned_bindings,
    ensure_cluster_role,
    ensure_namespace,
    prepare_seed_cluster,
)
from tests.harness.stack import start_cluster

pytestmark = pytest.mark.cluster

OTHER = "222222222222"
PROD, PROD_REGION = "bttrm-eks-prod-0", "us-west-2"
ACCESS_ROLE = f"arn:aws:iam::{OTHER}:role/platform/eks-iam-sync-access"  # with a path, as access entries want it
ASSUMED = f"arn:aws:iam::{OTHER}:role/eks-iam-sync-access"  # what the cluster sees (STS drops the path)
EXTERNAL_ID = "bttrm-eks-prod-0-7f3a"
UNMAPPED_ROLE = f"arn:aws:iam::{OTHER}:role/eks-iam-sync-unmapped"
READER_ROLE = f"arn:aws:iam::{OTHER}:role/eks-iam-sync-iam-reader"
PROJECTS = SEED_NAMESPACES[:2]


def administrator(account: str) -> boto3.Session:
    """Someone acting in ``account`` (moto: any session of one of its roles)."""
    keys = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/administrator", RoleSessionName="administrator"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name="us-east-1",
    )


def trust_policy(function_role: str, external_id: str | None = None) -> str:
    """The README's trust policy: the function's role may assume this one (with the external id)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": function_role},
        "Action": "sts:AssumeRole",
    }
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@dataclass
class OtherAccount:
    admin: boto3.Session
    plane: ControlPlane
    authenticator: TokenAuthenticator

    def eks(self) -> Any:
        return self.admin.client("eks", region_name=PROD_REGION)


@pytest.fixture(scope="module")
def other(aws_endpoint: str, eks: EksEmulator, service: Service) -> Iterator[OtherAccount]:
    """Account 222222222222: the roles the service assumes, and a cluster (API mode) whose operator
    bootstrapped the service with an access entry for the role it assumes, as EKS needs."""
    admin = administrator(OTHER)
    iam = admin.client("iam")
    iam.create_role(
        RoleName="eks-iam-sync-access",
        Path="/platform/",
        AssumeRolePolicyDocument=trust_policy(service.role_arn, EXTERNAL_ID),
    )
    iam.create_role(RoleName="eks-iam-sync-unmapped", AssumeRolePolicyDocument=trust_policy(service.role_arn))
    iam.create_role(RoleName="eks-iam-sync-iam-reader", AssumeRolePolicyDocument=trust_policy(service.role_arn))
    iam.create_group(GroupName=SEED_GROUP)
    with ExitStack() as stack:
        plane, authenticator = start_cluster(
            stack, aws_endpoint, PROD, eks=eks, mode="API", region=PROD_REGION, account=OTHER
        )
        utils.create_from_yaml(plane.admin(), str(MANIFEST))
        found = OtherAccount(admin, plane, authenticator)
        found.eks().create_access_entry(
            clusterName=PROD, principalArn=ACCESS_ROLE, username=SERVICE_USERNAME, kubernetesGroups=[SERVICE_GROUP]
        )
        ensure_cluster_role(plane, SEED_CLUSTER_ROLE)
        for namespace in SEED_NAMESPACES:
            ensure_namespace(plane, namespace)
        yield found


@pytest.fixture
def fresh(env: Environment, service: Service, other: OtherAccount) -> OtherAccount:
    """Both clusters as their operators left them; nobody in the seed group of either account."""
    prepare_seed_cluster(env.plane, service)
    eks_api = other.eks()
    for arn in eks_api.list_access_entries(clusterName=PROD)["accessEntries"]:
        entry = eks_api.describe_access_entry(clusterName=PROD, principalArn=arn)["accessEntry"]
        if entry.get("tags", {}).get(MANAGED_BY_LABEL) == "eks-iam-sync":
            eks_api.delete_access_entry(clusterName=PROD, principalArn=arn)
    delete_owned_bindings(other.plane)
    iam = other.admin.client("iam")
    for member in iam.get_group(GroupName=SEED_GROUP)["Users"]:
        iam.remove_user_from_group(GroupName=SEED_GROUP, UserName=member["UserName"])
    return other


def config_text(prod: dict[str, str], iam: dict[str, str] | None = None) -> str:
    seed = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    seed["clusters"] = [
        {"name": CLUSTER_NAME, "region": CLUSTER_REGION},  # the function's own account
        {"name": PROD, "region": PROD_REGION, **prod},
    ]
    if iam is not None:
        seed["iam"] = iam
    return yaml.safe_dump(seed, sort_keys=False)


def developer(admin: boto3.Session | None = None) -> tuple[Principal, str]:
    """A person with their own keys, in the function's account or (``admin``) another one."""
    name = f"dev-{uuid.uuid4().hex[:8]}"
    if admin is None:
        return iam_user(name), name
    iam = admin.client("iam")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    session = boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name="us-east-1"
    )
    return Principal(arn, session), name


def assert_in_both(env: Environment, other: OtherAccount, who: Principal) -> None:
    assert_seed_access(env.plane.client_for(who.token(CLUSTER_NAME, CLUSTER_REGION)), PROJECTS)
    assert_seed_access(other.plane.client_for(who.token(PROD, PROD_REGION)), PROJECTS)


def refused_in(plane: ControlPlane, cluster: str, region: str, who: Principal) -> bool:
    from kubernetes import client  # noqa: PLC0415
    from kubernetes.client.rest import ApiException  # noqa: PLC0415

    try:
        client.CoreV1Api(plane.client_for(who.token(cluster, region))).list_namespaced_pod(PROJECTS[0])
    except ApiException as err:
        return bool(err.status == 401)
    return False


def test_one_full_reconcile_maps_a_seed_user_in_the_function_s_cluster_and_the_other_account_s(
    env: Environment, service: Service, fresh: OtherAccount, tmp_path: Path
) -> None:
    person, name = developer()
    boto3.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    config = config_text({"roleArn": ACCESS_ROLE, "externalId": EXTERNAL_ID})

    with deployed(service, config, tmp_path) as fn:
        result = fn.invoke("reconcile_all")

    assert result["clusters"][CLUSTER_NAME]["backend"] == "configMap"
    assert result["clusters"][PROD]["backend"] == "accessEntries"
    assert_in_both(env, fresh, person)
    # The other cluster was reached as the assumed role, under the contract's session name and external id,
    # and the operator's access entry for that role is as the operator made it.
    sessions = [r for r in sts_backends[OTHER]["aws"].assumed_roles if r.role_arn == ACCESS_ROLE]
    assert sessions and {(r.session_name, r.external_id) for r in sessions} == {("eks-iam-sync", EXTERNAL_ID)}
    assert ("accepted", ASSUMED) in fresh.authenticator.decisions
    assert not any(arn == service.role_arn for _, arn in fresh.authenticator.decisions)
    bootstrap = fresh.eks().describe_access_entry(clusterName=PROD, principalArn=ACCESS_ROLE)["accessEntry"]
    assert bootstrap["kubernetesGroups"] == [SERVICE_GROUP] and MANAGED_BY_LABEL not in bootstrap.get("tags", {})


def test_a_console_click_gives_access_in_both_accounts_before_any_full_run(
    env: Environment, service: Service, fresh: OtherAccount, tmp_path: Path
) -> None:
    person, name = developer()
    config = config_text({"roleArn": ACCESS_ROLE, "externalId": EXTERNAL_ID})

    with deployed(service, config, tmp_path) as fn:
        boto3.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=name)
        result = fn.invoke("on_iam_event", iam_event("AddUserToGroup", {"groupName": SEED_GROUP, "userName": name}))

    assert result["status"] == "reconciled"
    for cluster in (CLUSTER_NAME, PROD):
        assert result["clusters"][cluster]["roleBindingsDone"] == len(PROJECTS), result["clusters"][cluster]
    assert_in_both(env, fresh, person)


def test_a_role_the_other_cluster_does_not_map_fails_that_cluster_alone(
    env: Environment, service: Service, fresh: OtherAccount, tmp_path: Path
) -> None:
    person, name = developer()
    boto3.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    config = config_text({"roleArn": UNMAPPED_ROLE})

    with (
        deployed(service, config, tmp_path) as fn,
        pytest.raises(PermanentError, match=f"reconcile failed for cluster {PROD}: Forbidden: .*401") as raised,
    ):
        fn.invoke("reconcile_all")

    assert CLUSTER_NAME not in str(raised.value)
    assert_seed_access(env.plane.client_for(person.token(CLUSTER_NAME, CLUSTER_REGION)), PROJECTS)
    assert refused_in(fresh.plane, PROD, PROD_REGION, person)


def test_iam_is_read_in_the_identity_account_for_full_runs_and_events(
    env: Environment, service: Service, fresh: OtherAccount, tmp_path: Path
) -> None:
    carol, carol_name = developer(fresh.admin)
    fresh.admin.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=carol_name)
    local, local_name = developer()  # in the function's own account's group of the same name: not read
    boto3.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=local_name)
    with pytest.raises(boto3.client("iam").exceptions.NoSuchEntityException):
        boto3.client("iam").get_user(UserName=carol_name)  # carol exists only in the identity account
    config = config_text({"roleArn": ACCESS_ROLE, "externalId": EXTERNAL_ID}, iam={"roleArn": READER_ROLE})

    with deployed(service, config, tmp_path) as fn:
        fn.invoke("reconcile_all")
        assert_in_both(env, fresh, carol)
        assert refused_in(env.plane, CLUSTER_NAME, CLUSTER_REGION, local)

        dave, dave_name = developer(fresh.admin)  # added later; the identity account forwards the event
        fresh.admin.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=dave_name)
        result = fn.invoke(
            "on_iam_event", iam_event("AddUserToGroup", {"groupName": SEED_GROUP, "userName": dave_name})
        )

    assert result["status"] == "reconciled"
    assert eventually(lambda: not refused_in(fresh.plane, PROD, PROD_REGION, dave))
    assert_in_both(env, fresh, dave)
    readers = [r for r in sts_backends[OTHER]["aws"].assumed_roles if r.role_arn == READER_ROLE]
    assert readers and {r.session_name for r in readers} == {"eks-iam-sync"}
