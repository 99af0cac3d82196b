"""IAM Identity Center on the real apiserver, with the person's own token: a permission set's role
(under /aws-reserved/sso.amazonaws.com/) is mapped by name through the Lambdas — aws-auth on the
CONFIG_MAP cluster, an access entry on the API_AND_CONFIG_MAP one — the person signs in as an
assumed-role session of it, and re-provisioning (a new role suffix) moves the mapping."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.conftest import Environment
from tests.harness.cloudtrail import iam_event
from tests.harness.function import cluster_config, deployed
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, assumed, eventually, iam_user
from tests.harness.service import SEED_NAMESPACES, Service, prepare_seed_cluster
from tests.integration.test_access_entries_e2e import BOTH, EntryCluster, clusters, fresh  # noqa: F401 - fixtures

pytestmark = pytest.mark.cluster

SSO_PATH = "/aws-reserved/sso.amazonaws.com/us-east-2/"
KUBERNETES_GROUP = "rbac-bttrm-web-ro-group"  # bound to the pod reader in the seed's projects


def permission_set_config(base: str, name: str) -> str:
    config = yaml.safe_load(base)
    config["identities"]["permissionSets"] = [{"name": name, "kubernetesGroups": [KUBERNETES_GROUP]}]
    return yaml.safe_dump(config)


def sso_role(permission_set: str) -> str:
    name = f"AWSReservedSSO_{permission_set}_{uuid.uuid4().hex[:16]}"
    trust = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}'
    )
    boto3.client("iam").create_role(RoleName=name, Path=SSO_PATH, AssumeRolePolicyDocument=trust)
    return name


def signs_in(person: Principal, role: str) -> Principal:
    """What `aws sso login` gives the person: a session of the permission set's role, named after them."""
    session = assumed(person.session, f"arn:aws:iam::123456789012:role{SSO_PATH}{role}", "alice@example.com")
    return Principal(f"arn:aws:iam::123456789012:role/{role}", session)


def whoami(plane: ControlPlane, cluster: str, who: Principal) -> tuple[int, str]:
    api = plane.client_for(who.token(cluster))
    try:
        client.CoreV1Api(api).list_namespaced_pod(SEED_NAMESPACES[0])
    except ApiException as err:
        return int(err.status), ""
    review = client.AuthenticationV1Api(plane.admin())
    token = who.token(cluster)
    status = review.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))).status
    return 200, status.user.username if status and status.user else ""


@pytest.fixture
def permission_set() -> str:
    return f"DevOps{uuid.uuid4().hex[:6]}"


def test_a_permission_set_is_mapped_by_name_on_config_map_and_the_person_gets_in_as_themselves(
    env: Environment, service: Service, tmp_path: Path, permission_set: str
) -> None:
    prepare_seed_cluster(env.plane, service)
    first = sso_role(permission_set)
    person = iam_user(f"alice-{uuid.uuid4().hex[:6]}")
    with deployed(service, permission_set_config(cluster_config(env.plane), permission_set), tmp_path) as fn:
        fn.invoke("reconcile_all")
        alice = signs_in(person, first)
        ok = eventually(lambda: whoami(env.plane, env.cluster_name, alice)[0] == 200)
        assert ok, env.authenticator.decisions[-3:]
        assert whoami(env.plane, env.cluster_name, alice)[1] == "sso:alice-example.com"  # {{SessionName}}

        # Identity Center re-provisions the permission set: a new role suffix, the old role deleted.
        second = sso_role(permission_set)
        fn.invoke("on_iam_event", iam_event("CreateRole", {"roleName": second, "path": SSO_PATH}))
        boto3.client("iam").delete_role(RoleName=first)
        fn.invoke("on_iam_event", iam_event("DeleteRole", {"roleName": first}))
    again = signs_in(person, second)
    ok = eventually(lambda: whoami(env.plane, env.cluster_name, again)[0] == 200)
    assert ok, env.authenticator.decisions[-3:]
    data = client.CoreV1Api(env.admin()).read_namespaced_config_map("aws-auth", "kube-system").data
    assert first not in data["mapRoles"] and f"role/{second}" in data["mapRoles"]  # path-free, as STS reports


def test_a_permission_set_gets_an_access_entry_with_its_path(
    fresh: dict[str, EntryCluster],  # noqa: F811 - the fixture from the access-entries suite
    service: Service,
    tmp_path: Path,
    permission_set: str,
) -> None:
    from tests.integration.test_access_entries_e2e import config_text  # noqa: PLC0415

    both = fresh[BOTH]
    role = sso_role(permission_set)
    person = iam_user(f"alice-{uuid.uuid4().hex[:6]}")
    with deployed(service, permission_set_config(config_text(fresh, only=BOTH), permission_set), tmp_path) as fn:
        fn.invoke("reconcile_all")
    entry = boto3.client("eks", region_name="us-east-2").describe_access_entry(
        clusterName=BOTH, principalArn=f"arn:aws:iam::123456789012:role{SSO_PATH}{role}"
    )["accessEntry"]
    assert entry["username"] == "sso:{{SessionName}}" and entry["kubernetesGroups"] == [KUBERNETES_GROUP]
    alice = signs_in(person, role)
    assert eventually(lambda: whoami(both.plane, BOTH, alice)[0] == 200)


@pytest.fixture(autouse=True)
def _no_leftover_roles() -> Iterator[None]:
    yield
    iam = boto3.client("iam")
    for page in iam.get_paginator("list_roles").paginate(PathPrefix=SSO_PATH):
        for role in page["Roles"]:
            iam.delete_role(RoleName=role["RoleName"])
