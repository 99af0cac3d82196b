"""IAM principals in the emulator, and what they can do in the cluster with their own credentials."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import boto3
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from chalicelib.adapters.eks_token import mint_token
from tests.harness.kube import ControlPlane


@dataclass
class Principal:
    arn: str
    session: boto3.Session
    _issued: set[str] = field(default_factory=set)

    def token(self, cluster: str, region: str = "us-east-2") -> str:
        """A token never handed out before: the apiserver caches each successful token for 10 s
        (not configurable in 1.20), so a test of revocation must present a new one, as a new
        `kubectl` call would. Presigned URLs are signed to the second; on a repeat, wait for the next."""
        while (token := mint_token(self.session, cluster, region).value) in self._issued:
            time.sleep(0.05)
        self._issued.add(token)
        return token


def credentials_env(principal: Principal) -> dict[str, str]:
    """The standard AWS variables that make boto3 (the service, the CLI) act as ``principal``."""
    found = principal.session.get_credentials()
    assert found is not None
    frozen = found.get_frozen_credentials()
    return {
        "AWS_ACCESS_KEY_ID": str(frozen.access_key),
        "AWS_SECRET_ACCESS_KEY": str(frozen.secret_key),
        "AWS_SESSION_TOKEN": frozen.token or "",
    }


def iam_user(name: str, path: str = "/") -> Principal:
    iam = boto3.client("iam")
    arn = iam.create_user(UserName=name, Path=path)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    session = boto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name="us-east-1",
    )
    return Principal(arn, session)


def role_session(assumer: Principal, role_name: str, session_name: str, path: str = "/") -> Principal:
    iam = boto3.client("iam")
    trust = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}'
    )
    role_arn = iam.create_role(RoleName=role_name, Path=path, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    return Principal(role_arn, assumed(assumer.session, role_arn, session_name))


def assumed(session: boto3.Session, role_arn: str, session_name: str, region: str = "us-east-1") -> boto3.Session:
    """A session of ``role_arn`` assumed from ``session`` (moto keys its state by the caller's account,
    so a role in another account is a session in that account)."""
    creds = session.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def can(api: client.ApiClient, verb: str, resource: str, namespace: str | None = None) -> bool:
    """`kubectl auth can-i` as the client's own identity (SelfSubjectAccessReview)."""
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace)
        )
    )
    result = client.AuthorizationV1Api(api).create_self_subject_access_review(review)
    return bool(result.status.allowed)


def forbidden_as(api: client.ApiClient) -> str:
    """The username the apiserver reports in a 403 for listing nodes (nobody here may)."""
    try:
        client.CoreV1Api(api).list_node()
    except ApiException as err:
        if err.status == 403:
            return str(json.loads(err.body)["message"])
        raise
    raise AssertionError("listing nodes was allowed")


def write_aws_auth(
    plane: ControlPlane,
    map_roles: list[dict[str, object]] | None = None,
    map_users: list[dict[str, object]] | None = None,
) -> None:
    """Writes aws-auth as an administrator would (test setup only; the service has its own writer)."""
    core = client.CoreV1Api(plane.admin())
    data = {
        "mapRoles": yaml.safe_dump(map_roles or [], default_flow_style=False),
        "mapUsers": yaml.safe_dump(map_users or [], default_flow_style=False),
    }
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="aws-auth", namespace="kube-system"), data=data)
    try:
        core.replace_namespaced_config_map("aws-auth", "kube-system", body)
    except ApiException as err:
        if err.status != 404:
            raise
        core.create_namespaced_config_map("kube-system", body)


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """True once ``check`` holds; the apiserver's RBAC authorizer sees writes through an informer."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def assert_seed_access(api: client.ApiClient, projects: tuple[str, ...]) -> None:
    """The seed's facts as the user sees them: get/list/watch pods in each project namespace (and a
    real list works), no pod creation there, nothing in `default`, no nodes."""
    assert eventually(lambda: all(can(api, "list", "pods", ns) for ns in projects))
    for namespace in projects:
        for verb in ("get", "list", "watch"):
            assert can(api, verb, "pods", namespace), (verb, namespace)
        assert not can(api, "create", "pods", namespace), namespace
        assert client.CoreV1Api(api).list_namespaced_pod(namespace).items == []
    assert not can(api, "list", "pods", "default")
    assert not can(api, "list", "nodes")
