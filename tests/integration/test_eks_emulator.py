"""The EKS emulator against botocore's model and EKS's rules, and the test authenticator mapping
callers by authentication mode: through boto3 and moto alone, then on real control planes with
real tokens (two extra planes for the module, API and API_AND_CONFIG_MAP, started side by side)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.loaders import Loader
from botocore.model import ListShape, MapShape, ServiceModel, Shape, StringShape, StructureShape
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.conftest import Environment
from tests.harness.access_policies import CATALOGUE, Association
from tests.harness.authenticator import AccessEntryMapping, TokenAuthenticator
from tests.harness.aws import secret_for
from tests.harness.eks_emulator import (
    ACCESS_ENTRY_OPERATIONS,
    CONFIG_MAP_REFUSAL,
    OPERATIONS,
    STANDARD_ONLY,
    EksEmulator,
    moto_principal_id,
)
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, can, eventually, forbidden_as, iam_user, role_session, write_aws_auth
from tests.harness.stack import start_cluster

if TYPE_CHECKING:
    from mypy_boto3_eks import EKSClient

REGION = "us-east-2"
ACCOUNT = "123456789012"
POLICY = "arn:aws:eks::aws:cluster-access-policy/"
VIEW, EDIT = POLICY + "AmazonEKSViewPolicy", POLICY + "AmazonEKSEditPolicy"
MODEL = ServiceModel(Loader().load_service_model("eks", "service-2"), "eks")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_of(call: Callable[[], object]) -> tuple[str, int, dict[str, Any]]:
    with pytest.raises(ClientError) as info:
        call()
    response: dict[str, Any] = dict(info.value.response)
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"]), response


def user_id(name: str) -> str:
    return str(boto3.client("iam").get_user(UserName=name)["User"]["UserId"])


def delete_user(name: str) -> None:
    iam = boto3.client("iam")
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)


def recreate_user(principal: Principal) -> Principal:
    """The same user ARN, a new principal (new unique id, new key)."""
    name, path = principal.arn.rsplit("/", 1)[-1], "/" + principal.arn.split(":user/", 1)[1].rpartition("/")[0]
    delete_user(name)
    return iam_user(name, path=path.rstrip("/") + "/")


# -- emulator only: boto3 + moto -------------------------------------------------------------------


@pytest.fixture
def eks_client(eks: EksEmulator) -> EKSClient:
    """A plain client: it reaches the emulator through AWS_ENDPOINT_URL_EKS."""
    return boto3.client("eks", region_name=REGION)


@pytest.fixture
def cluster(eks: EksEmulator) -> Iterator[str]:
    name = unique("emu")
    eks.add_cluster(name, region=REGION, endpoint="https://127.0.0.1:1", ca_data="Q0E=")
    yield name
    eks.remove_cluster(name)


def test_boto3_reaches_the_emulator_through_the_standard_variable(eks: EksEmulator, eks_client: EKSClient) -> None:
    assert eks_client.meta.endpoint_url == eks.url


def test_describe_cluster(eks: EksEmulator, eks_client: EKSClient, cluster: str) -> None:
    found = eks_client.describe_cluster(name=cluster)["cluster"]
    assert found["name"] == cluster and found["status"] == "ACTIVE"
    assert found["arn"] == f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{cluster}"
    assert found["endpoint"] == "https://127.0.0.1:1" and found["certificateAuthority"]["data"] == "Q0E="
    assert found["accessConfig"]["authenticationMode"] == "API_AND_CONFIG_MAP" and found["version"]
    code, status, body = error_of(lambda: eks_client.describe_cluster(name="no-such-cluster"))
    assert (code, status, body["clusterName"]) == ("ResourceNotFoundException", 404, "no-such-cluster")
    elsewhere = boto3.client("eks", region_name="eu-west-1")  # clusters are regional
    assert error_of(lambda: elsewhere.describe_cluster(name=cluster))[:2] == ("ResourceNotFoundException", 404)


def test_clusters_belong_to_an_account_and_an_assumed_role_acts_in_its_own(
    eks: EksEmulator, eks_client: EKSClient
) -> None:
    name = unique("other-account")
    eks.add_cluster(name, region=REGION, endpoint="https://127.0.0.1:1", ca_data="Q0E=", account="222222222222")
    try:
        assert error_of(lambda: eks_client.describe_cluster(name=name))[:2] == ("ResourceNotFoundException", 404)
        assert name not in eks_client.list_clusters()["clusters"]
        keys = boto3.client("sts").assume_role(RoleArn="arn:aws:iam::222222222222:role/admin", RoleSessionName="admin")
        other = boto3.client(
            "eks",
            region_name=REGION,
            aws_access_key_id=keys["Credentials"]["AccessKeyId"],
            aws_secret_access_key=keys["Credentials"]["SecretAccessKey"],
            aws_session_token=keys["Credentials"]["SessionToken"],
        )
        found = other.describe_cluster(name=name)["cluster"]
        assert found["arn"] == f"arn:aws:eks:{REGION}:222222222222:cluster/{name}"
        assert name in other.list_clusters()["clusters"]
        assert error_of(lambda: eks_client.list_access_entries(clusterName=name))[0] == "ResourceNotFoundException"
        assert other.list_access_entries(clusterName=name)["accessEntries"] == []
    finally:
        eks.remove_cluster(name)


def test_create_list_delete_cluster_and_the_one_way_mode(eks: EksEmulator, eks_client: EKSClient) -> None:
    name = unique("created")
    created = eks_client.create_cluster(name=name, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={})
    assert created["cluster"]["accessConfig"]["authenticationMode"] == "CONFIG_MAP"  # the API's default
    assert created["cluster"]["endpoint"].startswith("https://") and created["cluster"]["certificateAuthority"]["data"]
    assert name in eks_client.list_clusters()["clusters"]
    assert error_of(lambda: eks_client.create_cluster(name=name, roleArn="r", resourcesVpcConfig={}))[:2] == (
        "ResourceInUseException",
        409,
    )
    update = eks_client.update_cluster_config(name=name, accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"})
    assert update["update"]["type"] == "AccessConfigUpdate"
    done = eks_client.describe_update(name=name, updateId=update["update"]["id"])["update"]
    assert done["status"] == "Successful" and eks.mode(name) == "API_AND_CONFIG_MAP"
    back = error_of(
        lambda: eks_client.update_cluster_config(name=name, accessConfig={"authenticationMode": "CONFIG_MAP"})
    )
    assert back[:2] == ("InvalidParameterException", 400) and eks.mode(name) == "API_AND_CONFIG_MAP"
    eks.set_mode(name, "API")
    with pytest.raises(ValueError, match="cannot go back"):
        eks.set_mode(name, "API_AND_CONFIG_MAP")
    eks_client.delete_cluster(name=name)
    assert name not in eks_client.list_clusters()["clusters"]


def encoded_paths(eks_client: EKSClient) -> list[str]:
    """The URLs botocore sends, as sent (percent-encoded)."""
    urls: list[str] = []

    def keep(request: AWSPreparedRequest, **_: Any) -> None:
        urls.append(request.url)

    eks_client.meta.events.register("before-send.eks", keep)
    return urls


def test_access_entry_round_trip_for_a_user_and_a_role_with_a_path(
    eks: EksEmulator, eks_client: EKSClient, cluster: str
) -> None:
    user = iam_user(unique("ae-user"), path="/people/")
    role_name = unique("ae-role")
    role = role_session(user, role_name, "web-session", path="/teams/web/")
    sent = encoded_paths(eks_client)

    made = eks_client.create_access_entry(
        clusterName=cluster, principalArn=role.arn, kubernetesGroups=["web-readers"], tags={"owner": "web"}
    )["accessEntry"]
    assert made["principalArn"] == role.arn and ":role/teams/web/" in role.arn  # the role keeps its path
    assert made["username"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{{{{SessionName}}}}"
    assert made["type"] == "STANDARD" and made["kubernetesGroups"] == ["web-readers"]
    assert made["accessEntryArn"].startswith(
        f"arn:aws:eks:{REGION}:{ACCOUNT}:access-entry/{cluster}/role/{ACCOUNT}/{role_name}/"
    )
    assert made["tags"] == {"owner": "web"} and made["createdAt"] == made["modifiedAt"]
    as_user = eks_client.create_access_entry(clusterName=cluster, principalArn=user.arn)["accessEntry"]
    assert as_user["username"] == user.arn and as_user["kubernetesGroups"] == []

    by_canonical = eks.entry_for(cluster, f"arn:aws:iam::{ACCOUNT}:role/{role_name}")  # as STS names the role
    assert by_canonical is not None and by_canonical.principal_arn == role.arn
    described = eks_client.describe_access_entry(clusterName=cluster, principalArn=role.arn)["accessEntry"]
    assert described == made
    assert any(f"/access-entries/arn%3Aaws%3Aiam%3A%3A{ACCOUNT}%3Arole%2Fteams%2Fweb%2F{role_name}" in u for u in sent)
    assert sorted(eks_client.list_access_entries(clusterName=cluster)["accessEntries"]) == sorted([role.arn, user.arn])

    updated = eks_client.update_access_entry(
        clusterName=cluster, principalArn=role.arn, kubernetesGroups=["a", "b"], username="web:{{SessionName}}"
    )["accessEntry"]
    assert updated["kubernetesGroups"] == ["a", "b"] and updated["username"] == "web:{{SessionName}}"
    assert updated["createdAt"] == made["createdAt"] and updated["modifiedAt"] >= made["modifiedAt"]
    kept = eks_client.update_access_entry(clusterName=cluster, principalArn=role.arn, username="web2:x")["accessEntry"]
    assert kept["kubernetesGroups"] == ["a", "b"]  # what an update leaves out stays

    arn = made["accessEntryArn"]
    eks_client.tag_resource(resourceArn=arn, tags={"team": "web", "tier": "1"})
    eks_client.untag_resource(resourceArn=arn, tagKeys=["owner", "tier"])
    assert eks_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "web"}
    assert any("/tags/arn%3Aaws%3Aeks%3A" in u for u in sent)

    first = eks_client.associate_access_policy(
        clusterName=cluster, principalArn=role.arn, policyArn=VIEW, accessScope={"type": "cluster"}
    )
    assert first["clusterName"] == cluster and first["principalArn"] == role.arn
    assert first["associatedAccessPolicy"]["accessScope"] == {"type": "cluster", "namespaces": []}
    again = eks_client.associate_access_policy(
        clusterName=cluster,
        principalArn=role.arn,
        policyArn=VIEW,
        accessScope={"type": "namespace", "namespaces": ["web", "web-*"]},
    )["associatedAccessPolicy"]
    assert again["accessScope"] == {"type": "namespace", "namespaces": ["web", "web-*"]}  # replaced
    assert again["associatedAt"] == first["associatedAccessPolicy"]["associatedAt"]
    eks_client.associate_access_policy(
        clusterName=cluster, principalArn=role.arn, policyArn=EDIT, accessScope={"type": "cluster"}
    )
    listed = eks_client.list_associated_access_policies(clusterName=cluster, principalArn=role.arn)
    assert [p["policyArn"] for p in listed["associatedAccessPolicies"]] == [EDIT, VIEW]
    assert eks_client.list_access_entries(clusterName=cluster, associatedPolicyArn=VIEW)["accessEntries"] == [role.arn]
    eks_client.disassociate_access_policy(clusterName=cluster, principalArn=role.arn, policyArn=EDIT)
    assert any(f"/access-policies/{POLICY.replace(':', '%3A').replace('/', '%2F')}" in u for u in sent)
    listed = eks_client.list_associated_access_policies(clusterName=cluster, principalArn=role.arn)
    assert [p["policyArn"] for p in listed["associatedAccessPolicies"]] == [VIEW]

    eks_client.delete_access_entry(clusterName=cluster, principalArn=role.arn)
    gone = error_of(lambda: eks_client.describe_access_entry(clusterName=cluster, principalArn=role.arn))
    assert gone[:2] == ("ResourceNotFoundException", 404) and gone[2]["clusterName"] == cluster
    eks_client.create_access_entry(clusterName=cluster, principalArn=role.arn)
    after = eks_client.list_associated_access_policies(clusterName=cluster, principalArn=role.arn)
    assert after["associatedAccessPolicies"] == []  # the delete took the associations with it
    assert eks_client.list_access_entries(clusterName=cluster, associatedPolicyArn=VIEW)["accessEntries"] == []

    policies = eks_client.list_access_policies()["accessPolicies"]
    assert {"name": "AmazonEKSClusterAdminPolicy", "arn": POLICY + "AmazonEKSClusterAdminPolicy"} in policies
    assert {p["name"] for p in policies} >= {
        "AmazonEKSClusterAdminPolicy",
        "AmazonEKSAdminPolicy",
        "AmazonEKSEditPolicy",
        "AmazonEKSViewPolicy",
    }


def test_a_retried_create_with_the_same_client_request_token_is_idempotent(eks_client: EKSClient, cluster: str) -> None:
    user = iam_user(unique("idem"))
    first = eks_client.create_access_entry(clusterName=cluster, principalArn=user.arn, clientRequestToken="t-1")
    retried = eks_client.create_access_entry(clusterName=cluster, principalArn=user.arn, clientRequestToken="t-1")
    assert retried["accessEntry"] == first["accessEntry"]
    other = error_of(
        lambda: eks_client.create_access_entry(clusterName=cluster, principalArn=user.arn, clientRequestToken="t-2")
    )
    assert other[:2] == ("ResourceInUseException", 409)


def test_node_type_entries(eks: EksEmulator, eks_client: EKSClient, cluster: str) -> None:
    iam = boto3.client("iam")
    trust = '{"Version":"2012-10-17","Statement":[]}'
    node = iam.create_role(RoleName=unique("node"), AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    fargate = iam.create_role(RoleName=unique("fargate"), AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    made = eks_client.create_access_entry(clusterName=cluster, principalArn=node, type="EC2_LINUX")["accessEntry"]
    assert made["type"] == "EC2_LINUX" and made["username"] == "system:node:{{EC2PrivateDNSName}}"
    assert made["kubernetesGroups"] == ["system:nodes"]
    pod = eks_client.create_access_entry(clusterName=cluster, principalArn=fargate, type="FARGATE_LINUX")
    assert pod["accessEntry"]["username"] == "system:node:{{SessionName}}"
    refused = error_of(
        lambda: eks_client.update_access_entry(clusterName=cluster, principalArn=node, kubernetesGroups=["x"])
    )
    assert refused[:2] == ("InvalidParameterException", 400)
    no_policy = error_of(
        lambda: eks_client.associate_access_policy(
            clusterName=cluster, principalArn=node, policyArn=VIEW, accessScope={"type": "cluster"}
        )
    )
    assert no_policy[:2] == ("InvalidParameterException", 400) and no_policy[2]["message"] == STANDARD_ONLY
    for entry in (node, fargate):
        target: dict[str, Any] = {"clusterName": cluster, "principalArn": entry}
        listed = error_of(lambda: eks_client.list_associated_access_policies(**target))  # noqa: B023
        dropped = error_of(lambda: eks_client.disassociate_access_policy(**target, policyArn=VIEW))  # noqa: B023
        for code, status, body in (listed, dropped):
            assert (code, status, body["message"], body["clusterName"]) == (
                "InvalidParameterException",
                400,
                STANDARD_ONLY,
                cluster,
            )
    eks.add_association(cluster, node, POLICY + "AmazonEKSAutoNodePolicy")  # as EKS's own writer would
    assert [a.policy_name for a in eks.associations(cluster, node)] == ["AmazonEKSAutoNodePolicy"]


def invalid_creates(user: Principal, service_linked: str) -> dict[str, dict[str, Any]]:
    assumed = f"arn:aws:sts::{ACCOUNT}:assumed-role/some-role/some-session"
    return {
        "not an ARN": {"principalArn": "alice"},
        "an IAM group": {"principalArn": f"arn:aws:iam::{ACCOUNT}:group/devs"},
        "an assumed role": {"principalArn": assumed},
        "a service-linked role": {"principalArn": service_linked},
        "a principal IAM does not know": {"principalArn": f"arn:aws:iam::{ACCOUNT}:user/{unique('ghost')}"},
        "a user under the wrong path": {"principalArn": user.arn.replace(":user/", ":user/elsewhere/")},
        "a system: group": {"principalArn": user.arn, "kubernetesGroups": ["ok", "system:masters"]},
        "an empty group": {"principalArn": user.arn, "kubernetesGroups": [""]},
        "username system:": {"principalArn": user.arn, "username": "system:admin"},
        "username eks:": {"principalArn": user.arn, "username": "eks:x"},
        "username aws:": {"principalArn": user.arn, "username": "aws:x"},
        "username amazon:": {"principalArn": user.arn, "username": "amazon:x"},
        "username iam:": {"principalArn": user.arn, "username": "iam:x"},
        "SessionName first": {"principalArn": user.arn, "username": "{{SessionName}}"},
        "SessionNameRaw without a colon": {"principalArn": user.arn, "username": "dev-{{SessionNameRaw}}"},
        "an unknown type": {"principalArn": user.arn, "type": "ROBOT"},
        "a node type with groups": {"principalArn": user.arn, "type": "EC2_LINUX", "kubernetesGroups": ["g"]},
        "a node type for a user": {"principalArn": user.arn, "type": "EC2_LINUX"},
        "a reserved tag": {"principalArn": user.arn, "tags": {"aws:owner": "x"}},
        "too many tags": {"principalArn": user.arn, "tags": {f"k{i}": "v" for i in range(51)}},
    }


def test_each_invalid_create_is_an_invalid_parameter(eks: EksEmulator, eks_client: EKSClient, cluster: str) -> None:
    user = iam_user(unique("valid"), path="/people/")
    iam = boto3.client("iam")
    suffix = uuid.uuid4().hex[:8]
    service_linked = iam.create_service_linked_role(AWSServiceName="eks.amazonaws.com", CustomSuffix=suffix)["Role"]
    assert moto_principal_id(service_linked["Arn"]) is not None  # it exists; EKS refuses it all the same
    for case, params in invalid_creates(user, service_linked["Arn"]).items():
        code, status, body = error_of(partial(eks_client.create_access_entry, clusterName=cluster, **params))
        assert (code, status, body["clusterName"]) == ("InvalidParameterException", 400, cluster), case
        assert body["message"], case
    assert eks.entries(cluster) == []
    for fine in ("dev:{{SessionName}}", "a:b:{{SessionNameRaw}}", "{{AccountID}}-x"):
        name = unique("fine")
        ok = iam_user(name)
        assert eks_client.create_access_entry(clusterName=cluster, principalArn=ok.arn, username=fine)["accessEntry"]


def test_other_refusals_and_their_codes(eks: EksEmulator, eks_client: EKSClient, cluster: str) -> None:
    user = iam_user(unique("refusals"))
    arn = eks_client.create_access_entry(clusterName=cluster, principalArn=user.arn)["accessEntry"]["accessEntryArn"]
    cases: dict[str, tuple[Callable[[], object], str, int]] = {
        "duplicate": (
            lambda: eks_client.create_access_entry(clusterName=cluster, principalArn=user.arn),
            "ResourceInUseException",
            409,
        ),
        "unknown cluster": (
            lambda: eks_client.list_access_entries(clusterName="no-such-cluster"),
            "ResourceNotFoundException",
            404,
        ),
        "unknown entry": (
            lambda: eks_client.update_access_entry(clusterName=cluster, principalArn=user.arn + "x"),
            "ResourceNotFoundException",
            404,
        ),
        "system: group on update": (
            lambda: eks_client.update_access_entry(
                clusterName=cluster, principalArn=user.arn, kubernetesGroups=["system:nodes"]
            ),
            "InvalidParameterException",
            400,
        ),
        "reserved username on update": (
            lambda: eks_client.update_access_entry(clusterName=cluster, principalArn=user.arn, username="eks:me"),
            "InvalidParameterException",
            400,
        ),
        "unknown policy": (
            lambda: eks_client.associate_access_policy(
                clusterName=cluster,
                principalArn=user.arn,
                policyArn=POLICY + "AmazonEKSNoSuchPolicy",
                accessScope={"type": "cluster"},
            ),
            "InvalidParameterException",
            400,
        ),
        "namespace scope without namespaces": (
            lambda: eks_client.associate_access_policy(
                clusterName=cluster, principalArn=user.arn, policyArn=VIEW, accessScope={"type": "namespace"}
            ),
            "InvalidParameterException",
            400,
        ),
        "policy not associated": (
            lambda: eks_client.disassociate_access_policy(clusterName=cluster, principalArn=user.arn, policyArn=VIEW),
            "ResourceNotFoundException",
            404,
        ),
        "tag an unknown resource": (
            lambda: eks_client.tag_resource(resourceArn=arn + "x", tags={"a": "b"}),
            "NotFoundException",
            404,
        ),
        "51 tags": (
            lambda: eks_client.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(51)}),
            "BadRequestException",
            400,
        ),
        "a tag value too long": (
            lambda: eks_client.tag_resource(resourceArn=arn, tags={"k": "v" * 257}),
            "BadRequestException",
            400,
        ),
    }
    for case, (call, code, status) in cases.items():
        assert error_of(call)[:2] == (code, status), case


def test_the_type_of_an_entry_cannot_change(eks_client: EKSClient, cluster: str) -> None:
    """UpdateAccessEntry has no type member; a request that carries one anyway is refused."""
    user = iam_user(unique("typed"))
    eks_client.create_access_entry(clusterName=cluster, principalArn=user.arn)

    def add_type(request: AWSPreparedRequest, **_: Any) -> None:
        sent = request.body if isinstance(request.body, bytes | str) else b"{}"
        request.body = json.dumps({**json.loads(sent or b"{}"), "type": "EC2_LINUX"}).encode()
        request.headers["Content-Length"] = str(len(request.body))

    eks_client.meta.events.register("before-send.eks.UpdateAccessEntry", add_type)
    refused = error_of(lambda: eks_client.update_access_entry(clusterName=cluster, principalArn=user.arn))
    assert refused[:2] == ("InvalidParameterException", 400) and "type" in refused[2]["message"]


def test_a_config_map_cluster_refuses_every_access_entry_call(eks: EksEmulator, eks_client: EKSClient) -> None:
    name = unique("cm")
    eks.add_cluster(name, region=REGION, endpoint="https://127.0.0.1:1", ca_data="Q0E=", mode="CONFIG_MAP")
    try:
        user = iam_user(unique("cm-user"))
        target: dict[str, Any] = {"clusterName": name, "principalArn": user.arn}
        calls: dict[str, Callable[[], object]] = {
            "CreateAccessEntry": lambda: eks_client.create_access_entry(**target),
            "DescribeAccessEntry": lambda: eks_client.describe_access_entry(**target),
            "ListAccessEntries": lambda: eks_client.list_access_entries(clusterName=name),
            "UpdateAccessEntry": lambda: eks_client.update_access_entry(**target, username="u"),
            "DeleteAccessEntry": lambda: eks_client.delete_access_entry(**target),
            "AssociateAccessPolicy": lambda: eks_client.associate_access_policy(
                **target, policyArn=VIEW, accessScope={"type": "cluster"}
            ),
            "DisassociateAccessPolicy": lambda: eks_client.disassociate_access_policy(**target, policyArn=VIEW),
            "ListAssociatedAccessPolicies": lambda: eks_client.list_associated_access_policies(**target),
        }
        assert set(calls) == ACCESS_ENTRY_OPERATIONS
        for operation, call in calls.items():
            code, status, body = error_of(call)
            assert (code, status, body["message"]) == ("InvalidRequestException", 400, CONFIG_MAP_REFUSAL), operation
        assert eks_client.describe_cluster(name=name)["cluster"]["accessConfig"]["authenticationMode"] == "CONFIG_MAP"
        eks.set_mode(name, "API_AND_CONFIG_MAP")
        assert eks_client.create_access_entry(**target)["accessEntry"]["principalArn"] == user.arn
    finally:
        eks.remove_cluster(name)


def test_a_recreated_principal_leaves_a_stale_entry(eks: EksEmulator, eks_client: EKSClient, cluster: str) -> None:
    name = unique("stale")
    user = iam_user(name)
    eks_client.create_access_entry(clusterName=cluster, principalArn=user.arn)
    entry = eks.entry_for(cluster, user.arn)
    assert entry is not None and entry.principal_id == user_id(name)

    delete_user(name)
    still = eks_client.describe_access_entry(clusterName=cluster, principalArn=user.arn)["accessEntry"]
    assert still["principalArn"] == user.arn  # deleting the principal leaves its entry
    recreated = iam_user(name)
    assert recreated.arn == user.arn and user_id(name) != entry.principal_id
    unchanged = eks.entry_for(cluster, user.arn)
    assert unchanged is not None and unchanged.principal_id == entry.principal_id  # nothing in the API shows it
    assert error_of(lambda: eks_client.create_access_entry(clusterName=cluster, principalArn=user.arn))[0] == (
        "ResourceInUseException"
    )
    eks_client.delete_access_entry(clusterName=cluster, principalArn=user.arn)
    eks_client.create_access_entry(clusterName=cluster, principalArn=user.arn)
    fresh = eks.entry_for(cluster, user.arn)
    assert fresh is not None and fresh.principal_id == user_id(name)


def test_call_log_counts_calls_per_operation_and_cluster(eks: EksEmulator, eks_client: EKSClient, cluster: str) -> None:
    assert eks.calls_to(*ACCESS_ENTRY_OPERATIONS, cluster=cluster) == []
    eks_client.describe_cluster(name=cluster)
    eks_client.list_access_entries(clusterName=cluster)
    eks_client.list_access_entries(clusterName=cluster, maxResults=5)
    reads = eks.calls_to("ListAccessEntries", cluster=cluster)
    assert len(reads) == 2 and all(c.status == 200 and c.error_code is None for c in reads)
    assert [c.operation for c in eks.calls_to(cluster=cluster)] == [
        "DescribeCluster",
        "ListAccessEntries",
        "ListAccessEntries",
    ]
    user = iam_user(unique("logged"))
    error_of(lambda: eks_client.describe_access_entry(clusterName=cluster, principalArn=user.arn))
    last = eks.calls_to("DescribeAccessEntry", cluster=cluster)[-1]
    assert (last.principal_arn, last.status, last.error_code) == (user.arn, 404, "ResourceNotFoundException")


# -- a private emulator: injected principal ids and clock, small quota -----------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def fake_principal_id(arn: str) -> str | None:
    """Every well-formed user/role ARN exists, with an id derived from it."""
    return "AIDA" + uuid.uuid5(uuid.NAMESPACE_URL, arn).hex[:17].upper() if ":iam::" in arn else None


@dataclass
class Private:
    emulator: EksEmulator
    client: EKSClient
    clock: FakeClock
    cluster: str = "private-0"


@pytest.fixture
def private() -> Iterator[Callable[..., Private]]:
    started: list[EksEmulator] = []

    def make(**options: Any) -> Private:
        clock = FakeClock()
        emulator = EksEmulator(principal_id=fake_principal_id, clock=clock, **options).start()
        started.append(emulator)
        emulator.add_cluster("private-0", region=REGION, endpoint="https://127.0.0.1:1", ca_data="Q0E=")
        retries = Config(retries={"total_max_attempts": 1})  # no retry: every answer is seen
        return Private(emulator, client_for(emulator, retries), clock)

    yield make
    for emulator in started:
        emulator.stop()


def client_for(emulator: EksEmulator, config: Config | None = None) -> EKSClient:
    """A client of that emulator alone (no moto needed: it checks no signature)."""
    return boto3.client(
        "eks",
        region_name=REGION,
        endpoint_url=emulator.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


def arn_of(i: int) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/u{i:03d}"


def pages_of(size: int, total: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def test_list_access_entries_pages_through_250_entries(private: Callable[..., Private]) -> None:
    p = private()
    for i in range(250):
        p.client.create_access_entry(clusterName=p.cluster, principalArn=arn_of(i))
    expected = sorted(arn_of(i) for i in range(250))

    pages: list[list[str]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"clusterName": p.cluster, **({"nextToken": token} if token else {})}
        page = p.client.list_access_entries(**params)
        pages.append(page["accessEntries"])
        token = page.get("nextToken")
        if token is None:
            break
    assert [len(x) for x in pages] == [100, 100, 50]  # the default page is 100
    assert [a for x in pages for a in x] == expected

    paginator = p.client.get_paginator("list_access_entries")
    small = list(paginator.paginate(clusterName=p.cluster, PaginationConfig={"PageSize": 7}))
    assert len(small) == 36 and [a for x in small for a in x["accessEntries"]] == expected
    assert p.client.list_access_entries(clusterName=p.cluster, maxResults=100)["accessEntries"] == expected[:100]

    assert error_of(lambda: p.client.list_access_entries(clusterName=p.cluster, maxResults=101))[:2] == (
        "InvalidParameterException",
        400,
    )
    assert error_of(lambda: p.client.list_access_entries(clusterName=p.cluster, nextToken="bogus"))[:2] == (
        "InvalidParameterException",
        400,
    )
    unchecked = client_for(p.emulator, Config(parameter_validation=False))
    assert error_of(lambda: unchecked.list_access_entries(clusterName=p.cluster, maxResults=0))[:2] == (
        "InvalidParameterException",
        400,
    )

    target: dict[str, Any] = {"clusterName": p.cluster, "principalArn": arn_of(0)}
    for _, policy in sorted(
        (n, a) for n, a in ((x["name"], x["arn"]) for x in p.client.list_access_policies()["accessPolicies"])
    ):
        p.client.associate_access_policy(**target, policyArn=policy, accessScope={"type": "cluster"})
    associated = p.client.get_paginator("list_associated_access_policies").paginate(
        **target, PaginationConfig={"PageSize": 2}
    )
    sizes = [len(x["associatedAccessPolicies"]) for x in associated]
    assert sizes == pages_of(2, len(CATALOGUE))
    policies = list(p.client.get_paginator("list_access_policies").paginate(PaginationConfig={"PageSize": 5}))
    assert [len(x["accessPolicies"]) for x in policies] == pages_of(5, len(CATALOGUE))
    assert sorted(x["name"] for page in policies for x in page["accessPolicies"]) == sorted(CATALOGUE)


def test_associating_a_policy_again_replaces_its_scope_in_one_call(private: Callable[..., Private]) -> None:
    """As the user guide says: "If you later want to change the scope of an associated access policy,
    run the previous command again with the new scope" — the association is never absent."""
    p = private()
    target: dict[str, Any] = {"clusterName": p.cluster, "principalArn": arn_of(1)}
    p.client.create_access_entry(**target)
    p.emulator.clear_calls()
    first = p.client.associate_access_policy(
        **target, policyArn=VIEW, accessScope={"type": "namespace", "namespaces": ["a"]}
    )["associatedAccessPolicy"]
    p.clock.now += 60
    second = p.client.associate_access_policy(
        **target, policyArn=VIEW, accessScope={"type": "namespace", "namespaces": ["a", "b", "team-*"]}
    )["associatedAccessPolicy"]
    assert second["accessScope"] == {"type": "namespace", "namespaces": ["a", "b", "team-*"]}
    assert (
        second["associatedAt"] == first["associatedAt"]
        and (second["modifiedAt"] - first["modifiedAt"]).total_seconds() == 60
    )
    listed = p.client.list_associated_access_policies(**target)["associatedAccessPolicies"]
    assert len(listed) == 1 and listed[0]["accessScope"] == second["accessScope"]
    assert p.emulator.associations(p.cluster, arn_of(1)) == [Association(VIEW, "namespace", ("a", "b", "team-*"))]
    p.client.associate_access_policy(**target, policyArn=VIEW, accessScope={"type": "cluster"})
    assert p.emulator.associations(p.cluster, arn_of(1)) == [Association(VIEW, "cluster", ())]
    assert [c.operation for c in p.emulator.calls] == [
        "AssociateAccessPolicy",
        "AssociateAccessPolicy",
        "ListAssociatedAccessPolicies",
        "AssociateAccessPolicy",
    ]
    assert len(p.emulator.calls_to("DisassociateAccessPolicy")) == 0

    p.client.disassociate_access_policy(**target, policyArn=VIEW)
    assert p.emulator.associations(p.cluster, arn_of(1)) == []
    assert len(p.emulator.calls_to("DisassociateAccessPolicy", cluster=p.cluster)) == 1


def test_association_refusals(private: Callable[..., Private]) -> None:
    p = private()
    target: dict[str, Any] = {"clusterName": p.cluster, "principalArn": arn_of(1)}
    p.client.create_access_entry(**target)
    unchecked = client_for(p.emulator, Config(parameter_validation=False, retries={"total_max_attempts": 1}))
    scopes: dict[str, Any] = {
        "namespace scope without namespaces": {"type": "namespace"},
        "namespace scope with an empty list": {"type": "namespace", "namespaces": []},
        "cluster scope with namespaces": {"type": "cluster", "namespaces": ["a"]},
        "an unknown scope type": {"type": "everything"},
        "an empty namespace": {"type": "namespace", "namespaces": ["a", ""]},
    }
    for case, scope in scopes.items():
        refused = error_of(lambda: unchecked.associate_access_policy(**target, policyArn=VIEW, accessScope=scope))  # noqa: B023
        assert refused[:2] == ("InvalidParameterException", 400) and refused[2]["clusterName"] == p.cluster, case
    for bad in (POLICY + "AmazonEKSNoSuchPolicy", "AmazonEKSViewPolicy", "arn:aws:iam::aws:policy/ReadOnlyAccess"):
        refused = error_of(
            lambda: p.client.associate_access_policy(**target, policyArn=bad, accessScope={"type": "cluster"})  # noqa: B023
        )
        assert refused[:2] == ("InvalidParameterException", 400), bad
    nobody: dict[str, Any] = {"clusterName": p.cluster, "principalArn": arn_of(2)}
    for call in (
        lambda: p.client.associate_access_policy(**nobody, policyArn=VIEW, accessScope={"type": "cluster"}),
        lambda: p.client.list_associated_access_policies(**nobody),
        lambda: p.client.disassociate_access_policy(**nobody, policyArn=VIEW),
    ):
        assert error_of(call)[:2] == ("ResourceNotFoundException", 404)
    assert p.emulator.associations(p.cluster, arn_of(1)) == []  # nothing refused was stored
    for name in CATALOGUE[:3]:
        p.client.associate_access_policy(**target, policyArn=POLICY + name, accessScope={"type": "cluster"})
    first = p.client.list_associated_access_policies(**target, maxResults=2)
    rest = p.client.list_associated_access_policies(**target, nextToken=first["nextToken"])
    assert [len(first["associatedAccessPolicies"]), len(rest["associatedAccessPolicies"])] == [2, 1]
    assert "nextToken" not in rest
    assert error_of(lambda: p.client.list_associated_access_policies(**target, nextToken="bogus"))[:2] == (
        "InvalidParameterException",
        400,
    )


def test_the_access_policy_catalogue(eks_client: EKSClient) -> None:
    listed = {p["name"]: p["arn"] for p in eks_client.list_access_policies()["accessPolicies"]}
    assert listed == {name: POLICY + name for name in CATALOGUE}
    for name in ("View", "Edit", "Admin", "AdminView", "ClusterAdmin"):
        assert f"AmazonEKS{name}Policy" in listed


def test_the_entry_quota(private: Callable[..., Private]) -> None:
    p = private(entry_quota=3)
    for i in range(3):
        p.client.create_access_entry(clusterName=p.cluster, principalArn=arn_of(i))
    code, status, body = error_of(lambda: p.client.create_access_entry(clusterName=p.cluster, principalArn=arn_of(3)))
    assert (code, status, body["clusterName"]) == ("ResourceLimitExceededException", 400, p.cluster)
    p.client.delete_access_entry(clusterName=p.cluster, principalArn=arn_of(0))
    p.client.create_access_entry(clusterName=p.cluster, principalArn=arn_of(3))


def test_new_entries_propagate_after_a_delay_or_a_number_of_calls(private: Callable[..., Private]) -> None:
    p = private()
    target: dict[str, Any] = {"clusterName": p.cluster, "principalArn": arn_of(1)}
    p.emulator.delay_new_entries(seconds=5)
    p.client.create_access_entry(**target)
    assert error_of(lambda: p.client.describe_access_entry(**target))[:2] == ("ResourceNotFoundException", 404)
    assert p.client.list_access_entries(clusterName=p.cluster)["accessEntries"] == []
    assert p.emulator.mappings(p.cluster) == []  # nor does it authenticate yet
    assert error_of(lambda: p.client.create_access_entry(**target))[0] == "ResourceInUseException"
    p.clock.now += 5
    assert p.client.describe_access_entry(**target)["accessEntry"]["principalArn"] == arn_of(1)
    assert [m.principal_arn for m in p.emulator.mappings(p.cluster)] == [arn_of(1)]

    p.emulator.delay_new_entries(calls=2)
    second: dict[str, Any] = {"clusterName": p.cluster, "principalArn": arn_of(2)}
    p.client.create_access_entry(**second)
    assert error_of(lambda: p.client.describe_access_entry(**second))[0] == "ResourceNotFoundException"
    assert error_of(lambda: p.client.update_access_entry(**second, username="x:y"))[0] == "ResourceNotFoundException"
    assert p.client.update_access_entry(**second, username="x:y")["accessEntry"]["username"] == "x:y"
    p.emulator.delay_new_entries()
    third: dict[str, Any] = {"clusterName": p.cluster, "principalArn": arn_of(3)}
    p.client.create_access_entry(**third)
    assert p.client.describe_access_entry(**third)["accessEntry"]


def test_injected_faults(private: Callable[..., Private]) -> None:
    p = private()
    p.emulator.fail_next("DescribeCluster")
    code, status, body = error_of(lambda: p.client.describe_cluster(name=p.cluster))
    assert (code, status, body["clusterName"]) == ("ServerException", 500, p.cluster)
    assert p.client.describe_cluster(name=p.cluster)["cluster"]["name"] == p.cluster  # one call only

    p.emulator.fail_next("ListAccessEntries", "ThrottlingException", 429, "Rate exceeded", times=2)
    assert error_of(lambda: p.client.list_access_entries(clusterName=p.cluster))[:2] == ("ThrottlingException", 429)
    retrying = client_for(p.emulator)  # botocore retries a 5xx or a throttle
    p.emulator.clear_calls()
    assert retrying.list_access_entries(clusterName=p.cluster)["accessEntries"] == []
    assert [c.status for c in p.emulator.calls_to("ListAccessEntries")] == [429, 200]
    with pytest.raises(ValueError, match="does not serve"):
        p.emulator.fail_next("CreateNodegroup")


# -- the emulator cannot drift from the API: botocore's model is the reference ---------------------


def test_every_served_operation_is_in_the_model_with_its_method_and_uri() -> None:
    for name, (method, uri) in OPERATIONS.items():
        http = MODEL.operation_model(name).http
        assert (http["method"], http["requestUri"]) == (method, uri), name


SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "timestamp": (int, float),
}


def problems(value: Any, shape: Shape | None, where: str) -> list[str]:
    """Where ``value`` (a JSON document as sent) leaves ``shape``: unknown members, wrong types, enums."""
    if shape is None:
        return [] if value in ({}, None) else [f"{where}: the operation has no output, got {value!r}"]
    if shape.type_name in ("structure", "list", "map"):
        return _container_problems(value, shape, where)
    wrong_int = shape.type_name in ("integer", "long") and isinstance(value, bool)
    if wrong_int or not isinstance(value, SCALARS.get(shape.type_name, (object,))):
        return [f"{where}: {value!r} is not a {shape.type_name}"]
    if isinstance(shape, StringShape) and shape.enum and value not in shape.enum:
        return [f"{where}: {value!r} is not one of {shape.enum}"]
    return []


def _container_problems(value: Any, shape: Shape, where: str) -> list[str]:
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [p for i, item in enumerate(value) for p in problems(item, shape.member, f"{where}[{i}]")]
    if not isinstance(value, dict):
        return [f"{where}: not an object"]
    if isinstance(shape, MapShape):
        return [p for k, item in value.items() for p in problems(item, shape.value, f"{where}[{k}]")]
    assert isinstance(shape, StructureShape)
    found: list[str] = []
    for key, item in value.items():
        member = shape.members.get(key)
        found += (
            [f"{where}.{key}: not a member of {shape.name}"]
            if member is None
            else problems(item, member, f"{where}.{key}")
        )
    return found


# Errors EKS answers that botocore's model does not declare for the operation: on an entry that is not
# STANDARD, ListAssociatedAccessPolicies (reported by the ACK controller reading a node role's entry:
# "InvalidParameterException: This operation can only be performed on Access Entries with a type of
# \"STANDARD\".", 400) and, by the same rule, DisassociateAccessPolicy.
UNDECLARED_ERRORS = {
    ("ListAssociatedAccessPolicies", "InvalidParameterException"),
    ("DisassociateAccessPolicy", "InvalidParameterException"),
}


def test_every_response_is_what_the_model_says_the_operation_returns(private: Callable[..., Private]) -> None:
    p = private(entry_quota=2)
    c, eks_client = p.cluster, p.client
    user, role = arn_of(1), f"arn:aws:iam::{ACCOUNT}:role/teams/r1"
    target: dict[str, Any] = {"clusterName": c, "principalArn": role}
    made = eks_client.create_access_entry(**target, kubernetesGroups=["g"], tags={"a": "b"})["accessEntry"]
    eks_client.create_access_entry(clusterName=c, principalArn=user)
    eks_client.describe_access_entry(**target)
    eks_client.list_access_entries(clusterName=c, maxResults=1)
    eks_client.update_access_entry(**target, username="r:{{SessionName}}")
    eks_client.associate_access_policy(**target, policyArn=VIEW, accessScope={"type": "namespace", "namespaces": ["n"]})
    eks_client.list_associated_access_policies(**target)
    eks_client.list_access_policies(maxResults=1)
    eks_client.disassociate_access_policy(**target, policyArn=VIEW)
    eks_client.tag_resource(resourceArn=made["accessEntryArn"], tags={"c": "d"})
    eks_client.list_tags_for_resource(resourceArn=made["accessEntryArn"])
    eks_client.untag_resource(resourceArn=made["accessEntryArn"], tagKeys=["c"])
    eks_client.delete_access_entry(**target)
    eks_client.describe_cluster(name=c)
    eks_client.list_clusters()
    created = eks_client.create_cluster(name="model-1", roleArn="r", resourcesVpcConfig={})["cluster"]["name"]
    update = eks_client.update_cluster_config(name=created, accessConfig={"authenticationMode": "API"})["update"]
    eks_client.describe_update(name=created, updateId=update["id"])
    eks_client.delete_cluster(name=created)
    failing: list[Callable[[], object]] = [
        lambda: eks_client.describe_access_entry(**target),
        lambda: eks_client.create_access_entry(clusterName=c, principalArn=user),
        lambda: eks_client.create_access_entry(clusterName=c, principalArn=user + "/x", kubernetesGroups=["system:x"]),
        lambda: eks_client.create_access_entry(clusterName=c, principalArn=arn_of(5)),  # over the quota of 2
        lambda: eks_client.create_access_entry(clusterName=c, principalArn=arn_of(6)),  # ... with the next one
        lambda: eks_client.list_access_entries(clusterName="nope"),
        lambda: eks_client.tag_resource(resourceArn="arn:aws:eks:us-east-2:1:access-entry/x", tags={"a": "b"}),
        lambda: eks_client.update_cluster_config(name=c, accessConfig={"authenticationMode": "CONFIG_MAP"}),
        lambda: eks_client.describe_update(name=c, updateId="nope"),
    ]
    eks_client.create_access_entry(clusterName=c, principalArn=arn_of(4))
    for failure in failing:
        error_of(failure)
    eks_client.delete_access_entry(clusterName=c, principalArn=arn_of(4))
    node: dict[str, Any] = {"clusterName": c, "principalArn": f"arn:aws:iam::{ACCOUNT}:role/node"}
    eks_client.create_access_entry(**node, type="EC2_LINUX")
    error_of(lambda: eks_client.list_associated_access_policies(**node))
    error_of(lambda: eks_client.disassociate_access_policy(**node, policyArn=VIEW))
    error_of(lambda: eks_client.associate_access_policy(**node, policyArn=VIEW, accessScope={"type": "cluster"}))
    p.emulator.add_cluster("model-cm", region=REGION, endpoint="https://127.0.0.1:1", ca_data="Q0E=", mode="CONFIG_MAP")
    error_of(lambda: eks_client.list_access_entries(clusterName="model-cm"))
    p.emulator.fail_next("DescribeCluster")
    error_of(lambda: eks_client.describe_cluster(name=c))

    calls = p.emulator.calls
    assert {call.operation for call in calls} == set(OPERATIONS)
    assert {call.error_code for call in calls} >= {
        "ResourceNotFoundException",
        "ResourceInUseException",
        "InvalidParameterException",
        "InvalidRequestException",
        "ResourceLimitExceededException",
        "ServerException",
        "NotFoundException",
    }
    for call in calls:
        operation = MODEL.operation_model(call.operation)
        if call.error_code is None:
            assert problems(call.response, operation.output_shape, call.operation) == []
            continue
        declared = {shape.name: shape for shape in operation.error_shapes}
        if (call.operation, call.error_code) in UNDECLARED_ERRORS:
            assert (call.status, call.response["message"]) == (400, STANDARD_ONLY), call
            continue
        assert call.error_code in declared, (call.operation, call.error_code)
        error = declared[call.error_code]
        assert error.metadata["error"]["httpStatusCode"] == call.status, call
        assert problems(call.response, error, call.error_code) == [], call


# -- the authenticator's choice, straight through review() (STS in moto, no apiserver) -------------


class Source:
    def __init__(self, mode: str, entries: list[AccessEntryMapping]) -> None:
        self._mode, self._entries = mode, entries

    def mode(self) -> str:
        return self._mode

    def entries(self) -> list[AccessEntryMapping]:
        return self._entries


def aws_auth(users: list[dict[str, object]] | None = None, accounts: list[str] | None = None) -> dict[str, str]:
    data = {"mapUsers": json.dumps(users or [])}  # JSON is YAML
    return {**data, "mapAccounts": json.dumps(accounts or [])} if accounts else data


def test_the_authenticator_maps_by_authentication_mode(aws_endpoint: str) -> None:
    cluster_id = "mapping-table"
    name = unique("table-user")
    user = iam_user(name, path="/people/")
    uid = user_id(name)
    entry = AccessEntryMapping(user.arn, uid, "from-entry", ("entry-group",))
    stale = AccessEntryMapping(user.arn, "AIDAOLDPRINCIPAL00000", "from-entry", ("entry-group",))
    renamed = AccessEntryMapping(user.arn.replace(name, "old-name"), uid, "from-entry", ())
    in_aws_auth = aws_auth([{"userarn": user.arn, "username": "from-aws-auth", "groups": ["cm-group"]}])
    account_only = aws_auth(accounts=[ACCOUNT])
    role_name = unique("table-role")
    session = role_session(user, role_name, "dev@example.com", path="/teams/web/")
    role_id = str(boto3.client("iam").get_role(RoleName=role_name)["Role"]["RoleId"])
    role_default = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{{{{SessionName}}}}"
    role_entry = AccessEntryMapping(session.arn, role_id, role_default, ("web",))
    node_entry = AccessEntryMapping(
        session.arn, role_id, "system:node:{{EC2PrivateDNSName}}", ("system:nodes",), "EC2_LINUX"
    )
    stale_role = AccessEntryMapping(session.arn, "AROAOLDROLE0000000000", role_default, ("web",))
    tokens = {user.arn: user.token(cluster_id), session.arn: session.token(cluster_id)}

    accepted_entry = ("accepted", "from-entry", ["entry-group"])
    accepted_cm = ("accepted", "from-aws-auth", ["cm-group"])
    cases: list[tuple[str, str, list[AccessEntryMapping], dict[str, str], Principal, tuple[Any, ...]]] = [
        ("config map ignores entries", "CONFIG_MAP", [entry], in_aws_auth, user, accepted_cm),
        ("config map: an entry alone maps nothing", "CONFIG_MAP", [entry], {}, user, ("rejected", "ARN is not mapped")),
        ("api: the entry", "API", [entry], in_aws_auth, user, accepted_entry),
        ("api ignores aws-auth", "API", [], in_aws_auth, user, ("rejected", "identity is not mapped")),
        ("api ignores mapAccounts", "API", [], account_only, user, ("rejected", "identity is not mapped")),
        ("both: the entry wins", "API_AND_CONFIG_MAP", [entry], in_aws_auth, user, accepted_entry),
        ("both: aws-auth without an entry", "API_AND_CONFIG_MAP", [], in_aws_auth, user, accepted_cm),
        ("both: mapAccounts", "API_AND_CONFIG_MAP", [], account_only, user, ("accepted", user.arn, [])),
        ("api: a stale entry", "API", [stale], in_aws_auth, user, ("rejected", "stale")),
        ("both: a stale entry alone", "API_AND_CONFIG_MAP", [stale], {}, user, ("rejected", "stale")),
        ("both: a stale entry, then aws-auth", "API_AND_CONFIG_MAP", [stale], in_aws_auth, user, accepted_cm),
        ("api: same id, another name", "API", [renamed], {}, user, ("rejected", "ARN does not match")),
        (
            "api: a role session",
            "API",
            [role_entry],
            {},
            session,
            ("accepted", role_default.replace("{{SessionName}}", "dev-example.com"), ["web"]),
        ),
        ("api: a stale role", "API", [stale_role], {}, session, ("rejected", "stale")),
        (
            "api: a node entry",
            "API",
            [node_entry],
            {},
            session,
            ("accepted", "system:node:", ["system:bootstrappers", "system:nodes"]),
        ),
    ]
    data: list[dict[str, str]] = [{}]
    authenticator = TokenAuthenticator(cluster_id, aws_endpoint, lambda: data[0], secret_for)
    for case, mode, entries, config_map, principal, expected in cases:
        data[0] = config_map
        authenticator.access_entries = Source(mode, entries)
        status = authenticator.review(tokens[principal.arn])
        if expected[0] == "accepted":
            assert status["authenticated"], (case, status)
            assert (status["user"]["username"], status["user"]["groups"]) == expected[1:], case
        else:
            assert not status["authenticated"] and expected[1] in status["error"], (case, status)
    authenticator.access_entries = None  # the default: CONFIG_MAP, as before access entries
    data[0] = in_aws_auth
    assert authenticator.review(tokens[user.arn])["user"]["username"] == "from-aws-auth"


# -- end to end: real apiservers, real tokens ------------------------------------------------------


@dataclass
class Cluster:
    name: str
    plane: ControlPlane
    authenticator: TokenAuthenticator


POD_READER = "emulator-pod-reader"


@pytest.fixture(scope="module")
def planes(aws_endpoint: str, eks: EksEmulator) -> Iterator[dict[str, Cluster]]:
    """One control plane in API mode and one in API_AND_CONFIG_MAP, started side by side."""
    wanted = {"API": "emulator-api-0", "API_AND_CONFIG_MAP": "emulator-mixed-0"}

    def start(mode: str) -> tuple[ExitStack, Cluster]:
        inner = ExitStack()
        try:
            plane, authenticator = start_cluster(inner, aws_endpoint, wanted[mode], eks=eks, mode=mode)
            client.RbacAuthorizationV1Api(plane.admin()).create_cluster_role(
                client.V1ClusterRole(
                    metadata=client.V1ObjectMeta(name=POD_READER),
                    rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])],
                )
            )
        except BaseException:
            inner.close()
            raise
        return inner, Cluster(wanted[mode], plane, authenticator)

    with ExitStack() as stack, ThreadPoolExecutor(len(wanted)) as pool:
        futures = {mode: pool.submit(start, mode) for mode in wanted}
        started: dict[str, Cluster] = {}
        failures: list[BaseException] = []
        for mode, future in futures.items():
            try:
                inner, cluster = future.result()
            except Exception as err:
                failures.append(err)
                continue
            stack.enter_context(inner)
            started[mode] = cluster
        if failures:
            raise failures[0]
        yield started


@pytest.fixture
def api(planes: dict[str, Cluster]) -> Cluster:
    return planes["API"]


@pytest.fixture
def mixed(planes: dict[str, Cluster]) -> Cluster:
    return planes["API_AND_CONFIG_MAP"]


def bind(cluster: Cluster, group: str) -> None:
    client.RbacAuthorizationV1Api(cluster.plane.admin()).create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=group),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=POD_READER),
            subjects=[client.RbacV1Subject(kind="Group", name=group, api_group="rbac.authorization.k8s.io")],
        )
    )


def status_of(cluster: Cluster, principal: Principal) -> int:
    """401: not authenticated; 403: authenticated (nobody may list namespaces here)."""
    try:
        client.CoreV1Api(cluster.plane.client_for(principal.token(cluster.name))).list_namespace()
    except ApiException as err:
        return int(err.status)
    return 200


def username_on(cluster: Cluster, principal: Principal) -> str:
    return forbidden_as(cluster.plane.client_for(principal.token(cluster.name)))


@pytest.mark.cluster
def test_api_mode_maps_from_access_entries_only(api: Cluster, eks_client: EKSClient) -> None:
    alice, bob = iam_user(unique("api-alice")), iam_user(unique("api-bob"))
    group = unique("api-readers")
    bind(api, group)
    eks_client.create_access_entry(
        clusterName=api.name, principalArn=alice.arn, username="alice", kubernetesGroups=[group]
    )
    write_aws_auth(
        api.plane,
        map_users=[
            {"userarn": bob.arn, "username": "bob", "groups": [group]},
            {"userarn": alice.arn, "username": "alice-in-aws-auth", "groups": []},
        ],
    )
    as_alice = api.plane.client_for(alice.token(api.name))
    assert 'User "alice"' in forbidden_as(as_alice)
    assert eventually(lambda: can(as_alice, "list", "pods", "default"))
    assert status_of(api, bob) == 401  # aws-auth alone lets nobody in
    verdict, message = api.authenticator.decisions[-1]
    assert verdict == "rejected" and f"identity is not mapped: {bob.arn}" in message

    role_name = unique("api-web-role")
    session = role_session(alice, role_name, "carol@example.com", path="/teams/web/")
    made = eks_client.create_access_entry(clusterName=api.name, principalArn=session.arn)["accessEntry"]
    assert made["principalArn"] == session.arn and ":role/teams/web/" in session.arn
    assert f'User "arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/carol-example.com"' in username_on(api, session)


@pytest.mark.cluster
def test_api_and_config_map_prefers_the_entry_and_falls_back_to_aws_auth(mixed: Cluster, eks_client: EKSClient) -> None:
    both, only_aws_auth = iam_user(unique("mixed-both")), iam_user(unique("mixed-cm"))
    entry_group, aws_auth_group = unique("entry-readers"), unique("cm-nothing")
    bind(mixed, entry_group)
    write_aws_auth(
        mixed.plane,
        map_users=[
            {"userarn": both.arn, "username": "both-from-aws-auth", "groups": [aws_auth_group]},
            {"userarn": only_aws_auth.arn, "username": "only-aws-auth", "groups": []},
        ],
    )
    eks_client.create_access_entry(
        clusterName=mixed.name, principalArn=both.arn, username="both-from-entry", kubernetesGroups=[entry_group]
    )
    as_both = mixed.plane.client_for(both.token(mixed.name))
    assert 'User "both-from-entry"' in forbidden_as(as_both)
    assert eventually(lambda: can(as_both, "list", "pods", "default"))  # the entry's groups, not aws-auth's
    assert 'User "only-aws-auth"' in username_on(mixed, only_aws_auth)

    eks_client.delete_access_entry(clusterName=mixed.name, principalArn=both.arn)
    as_both = mixed.plane.client_for(both.token(mixed.name))
    assert 'User "both-from-aws-auth"' in forbidden_as(as_both)
    assert not can(as_both, "list", "pods", "default")


@pytest.mark.cluster
def test_the_config_map_cluster_of_the_session(env: Environment, eks: EksEmulator, eks_client: EKSClient) -> None:
    described = eks_client.describe_cluster(name=env.cluster_name)["cluster"]
    assert described["accessConfig"]["authenticationMode"] == "CONFIG_MAP" == eks.mode(env.cluster_name)
    assert (
        described["endpoint"] == env.plane.endpoint and described["certificateAuthority"]["data"] == env.plane.ca_data
    )
    user = iam_user(unique("cm-session"))
    refused = error_of(lambda: eks_client.create_access_entry(clusterName=env.cluster_name, principalArn=user.arn))
    assert refused[:2] == ("InvalidRequestException", 400)
    assert env.authenticator.access_entries is not None and list(env.authenticator.access_entries.entries()) == []


@pytest.mark.cluster
def test_a_stale_entry_authenticates_nobody(api: Cluster, mixed: Cluster, eks_client: EKSClient) -> None:
    user = iam_user(unique("stale-e2e"))
    eks_client.create_access_entry(clusterName=api.name, principalArn=user.arn)
    assert status_of(api, user) == 403
    user = recreate_user(user)
    assert status_of(api, user) == 401
    verdict, message = api.authenticator.decisions[-1]
    assert verdict == "rejected" and "identity is not mapped" in message and "stale" in message
    eks_client.delete_access_entry(clusterName=api.name, principalArn=user.arn)
    eks_client.create_access_entry(clusterName=api.name, principalArn=user.arn)
    assert status_of(api, user) == 403

    assumer = iam_user(unique("stale-assumer"))
    role_name = unique("stale-role")
    session = role_session(assumer, role_name, "first")
    eks_client.create_access_entry(clusterName=api.name, principalArn=session.arn)
    assert status_of(api, session) == 403
    boto3.client("iam").delete_role(RoleName=role_name)
    session = role_session(assumer, role_name, "second")  # the same role ARN, a new role id
    assert status_of(api, session) == 401

    # As aws-iam-authenticator does, a mapper that does not map the caller hands over to the next:
    # in API_AND_CONFIG_MAP, an aws-auth mapping of the recreated principal still applies.
    other = iam_user(unique("stale-mixed"))
    eks_client.create_access_entry(clusterName=mixed.name, principalArn=other.arn, username="other-entry")
    write_aws_auth(mixed.plane, map_users=[{"userarn": other.arn, "username": "other-aws-auth", "groups": []}])
    assert 'User "other-entry"' in username_on(mixed, other)
    other = recreate_user(other)
    assert 'User "other-aws-auth"' in username_on(mixed, other)
    write_aws_auth(mixed.plane, map_users=[])
    assert status_of(mixed, other) == 401


@pytest.mark.cluster
def test_an_entry_authenticates_once_it_has_propagated(api: Cluster, eks: EksEmulator, eks_client: EKSClient) -> None:
    user = iam_user(unique("propagating"))
    eks.delay_new_entries(calls=1)
    try:
        eks_client.create_access_entry(clusterName=api.name, principalArn=user.arn)
    finally:
        eks.delay_new_entries()
    assert status_of(api, user) == 401
    gone = error_of(lambda: eks_client.describe_access_entry(clusterName=api.name, principalArn=user.arn))
    assert gone[:2] == ("ResourceNotFoundException", 404)
    assert status_of(api, user) == 403
