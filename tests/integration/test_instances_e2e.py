"""Two instances of the service (EKS_IAM_SYNC_INSTANCE "dev" and "prod") reconciling the same two real
apiservers, one on aws-auth (CONFIG_MAP) and one on access entries in the EKS emulator
(API_AND_CONFIG_MAP), through the Lambdas as deployed: neither changes or deletes the other's entries
or RoleBindings, what one owns and the other wants is refused naming the owner, and people get in
through each instance's grants with their own tokens."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from chalicelib.config import DEFAULT_CONFIG_PATH
from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.model.ownership import (
    ENTRY_INSTANCE_TAG,
    INSTANCE_LABEL,
    LEDGER_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_SELECTOR,
)
from tests.harness.eks_emulator import EksEmulator
from tests.harness.function import deployed
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, eventually, iam_user
from tests.harness.service import (
    MANIFEST,
    SEED_CLUSTER_ROLE,
    SEED_GROUP,
    SEED_NAMESPACES,
    Service,
    bootstrap_access_entry_cluster,
    bootstrap_aws_auth,
    delete_owned_bindings,
    ensure_cluster_role,
    ensure_namespace,
    reset_iam_grants,
)
from tests.harness.stack import start_cluster

pytestmark = pytest.mark.cluster

AWS_AUTH, ENTRIES = "bttrm-eks-instances-cm", "bttrm-eks-instances-ae"
DEV_PROJECTS, PROD_PROJECT = SEED_NAMESPACES[:2], SEED_NAMESPACES[2]
OPS = "rbac-bttrm-ops-group"


@pytest.fixture(scope="module")
def planes(aws_endpoint: str, eks: EksEmulator, service: Service) -> Iterator[dict[str, ControlPlane]]:
    """An aws-auth cluster (the service's role mapped in aws-auth) and an access-entry cluster (its access
    entry), each with the service's RBAC, the seed's ClusterRole and namespaces."""
    with ExitStack() as stack:
        aws_auth, _ = start_cluster(stack, aws_endpoint, AWS_AUTH)
        utils.create_from_yaml(aws_auth.admin(), str(MANIFEST))
        ensure_cluster_role(aws_auth, SEED_CLUSTER_ROLE)
        for namespace in SEED_NAMESPACES:
            ensure_namespace(aws_auth, namespace)
        bootstrap_aws_auth(aws_auth, service)
        entries, _ = start_cluster(stack, aws_endpoint, ENTRIES, eks=eks, mode="API_AND_CONFIG_MAP")
        bootstrap_access_entry_cluster(entries, ENTRIES, service.role_arn)
        yield {AWS_AUTH: aws_auth, ENTRIES: entries}


def configuration(planes: dict[str, ControlPlane], ops_group: str | None, seed_group: bool = True) -> str:
    """Both clusters; the seed's group and grants (dev and prod alike: they collide), and prod's own
    group bound in the third namespace."""
    seed = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    seed["clusters"] = [
        {
            "name": name,
            "region": "us-east-2",
            "endpoint": plane.endpoint,
            "certificateAuthorityData": plane.ca_data,
            "backend": "configMap" if name == AWS_AUTH else "accessEntries",
        }
        for name, plane in planes.items()
    ]
    identities = copy.deepcopy(seed["identities"])
    if not seed_group:
        identities["groups"] = [g for g in identities["groups"] if g["iamGroup"] != SEED_GROUP]
        seed["namespaceGrants"] = []
    if ops_group:
        identities["groups"].append({"iamGroup": ops_group, "kubernetesGroups": [OPS]})
        seed["namespaceGrants"].append(
            {"kubernetesGroup": OPS, "clusterRole": SEED_CLUSTER_ROLE, "namespaces": [PROD_PROJECT]}
        )
    seed["identities"] = identities
    return yaml.safe_dump(seed)


def reconcile_as(instance: str, config: str, service: Service, workdir: Path, monkeypatch: Any) -> dict[str, Any]:
    monkeypatch.setenv("EKS_IAM_SYNC_INSTANCE", instance)
    workdir.mkdir(parents=True, exist_ok=True)
    with deployed(service, config, workdir) as function:
        result: dict[str, Any] = function.invoke("reconcile_all")
    return result


def owners(planes: dict[str, ControlPlane], eks: EksEmulator) -> dict[tuple[str, str], str | None]:
    """(cluster, lower-case principal ARN) -> the instance owning its mapping, for every mapping the
    service made in either cluster."""
    found: dict[tuple[str, str], str | None] = {}
    aws_auth = client.CoreV1Api(planes[AWS_AUTH].admin()).read_namespaced_config_map("aws-auth", "kube-system")
    text = (aws_auth.metadata.annotations or {}).get(LEDGER_ANNOTATION)
    for instance in ("dev", "prod"):
        found |= {(AWS_AUTH, arn): instance for arn in Ledger.parse(text, instance).records}
    found |= {(AWS_AUTH, arn): None for arn in Ledger.parse(text).records}
    for entry in eks.entries(ENTRIES):
        if entry.tags.get(MANAGED_BY_LABEL) == "eks-iam-sync":
            found[(ENTRIES, entry.principal_arn.lower())] = entry.tags.get(ENTRY_INSTANCE_TAG)
    return found


def bindings(planes: dict[str, ControlPlane]) -> dict[tuple[str, str, str], tuple[str | None, str]]:
    """(cluster, namespace, name) -> (instance label, resourceVersion) of the service's RoleBindings."""
    found = {}
    for name, plane in planes.items():
        rbac = client.RbacAuthorizationV1Api(plane.admin())
        for item in rbac.list_role_binding_for_all_namespaces(label_selector=MANAGED_BY_SELECTOR).items:
            labels = item.metadata.labels or {}
            key = (name, item.metadata.namespace, item.metadata.name)
            found[key] = (labels.get(INSTANCE_LABEL), item.metadata.resource_version)
    return found


def can_list_pods(plane: ControlPlane, cluster: str, who: Principal, namespace: str) -> int:
    try:
        client.CoreV1Api(plane.client_for(who.token(cluster))).list_namespaced_pod(namespace)
    except ApiException as err:
        return int(err.status)
    return 200


@pytest.fixture
def fresh(planes: dict[str, ControlPlane], eks: EksEmulator, service: Service) -> dict[str, ControlPlane]:
    reset_iam_grants(SEED_GROUP)
    for entry in eks.entries(ENTRIES):
        if entry.tags.get(MANAGED_BY_LABEL) == "eks-iam-sync":
            boto3.client("eks", region_name="us-east-2").delete_access_entry(
                clusterName=ENTRIES, principalArn=entry.principal_arn
            )
    for plane in planes.values():
        delete_owned_bindings(plane)
    bootstrap_aws_auth(planes[AWS_AUTH], service)
    return planes


def test_two_instances_share_both_kinds_of_cluster_and_never_touch_each_other_s_objects(
    fresh: dict[str, ControlPlane], eks: EksEmulator, service: Service, tmp_path: Path, monkeypatch: Any
) -> None:
    iam = boto3.client("iam")
    ops_group = f"iam-ops-{uuid.uuid4().hex[:8]}"
    iam.create_group(GroupName=ops_group)
    alice_name, bob_name = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    alice, bob = iam_user(alice_name), iam_user(bob_name)
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=alice_name)
    iam.add_user_to_group(GroupName=ops_group, UserName=bob_name)

    reconcile_as("dev", configuration(fresh, None), service, tmp_path / "dev", monkeypatch)
    dev_owned = owners(fresh, eks)
    assert dev_owned[(AWS_AUTH, alice.arn.lower())] == dev_owned[(ENTRIES, alice.arn.lower())] == "dev"
    assert set(dev_owned.values()) == {"dev"}
    dev_bindings = bindings(fresh)
    assert {(c, ns) for c, ns, _ in dev_bindings} == {(c, ns) for c in fresh for ns in DEV_PROJECTS}
    dev_entries = {e.principal_arn: e for e in eks.entries(ENTRIES) if e.tags.get(ENTRY_INSTANCE_TAG) == "dev"}
    aws_auth_users = read_aws_auth(
        client.CoreV1Api(fresh[AWS_AUTH].admin()).read_namespaced_config_map("aws-auth", "kube-system").data
    ).entries("mapUsers")

    # prod wants the seed's group too (dev's: refused) and its own (mapped)
    result = reconcile_as("prod", configuration(fresh, ops_group), service, tmp_path / "prod", monkeypatch)
    after = owners(fresh, eks)
    assert after == {**dev_owned, (AWS_AUTH, bob.arn.lower()): "prod", (ENTRIES, bob.arn.lower()): "prod"}
    now = bindings(fresh)
    assert {k: v for k, v in now.items() if k in dev_bindings} == dev_bindings  # not one resourceVersion moved
    assert {(key[0], key[1], label) for key, (label, _) in now.items() if key not in dev_bindings} == {
        (c, PROD_PROJECT, "prod") for c in fresh
    }
    assert {e.principal_arn: e for e in eks.entries(ENTRIES) if e.principal_arn in dev_entries} == dev_entries
    users = read_aws_auth(
        client.CoreV1Api(fresh[AWS_AUTH].admin()).read_namespaced_config_map("aws-auth", "kube-system").data
    ).entries("mapUsers")
    assert [u for u in users if u.arn != bob.arn] == list(aws_auth_users)  # dev's entries as they were
    for cluster in fresh:
        report = result["clusters"][cluster]
        conflicts = [c for c in report["identities"]["conflicts"] if alice.arn in c]
        assert conflicts and all("mapped by eks-iam-sync instance 'dev'" in c for c in conflicts), report
        refused = [r for r in report["grantRefusals"] if r["reason"] == "other-instance"]
        assert len(refused) == len(DEV_PROJECTS), report

    # each gets in through its own instance's grants, asked with their own tokens
    for cluster, plane in fresh.items():
        assert eventually(lambda p=plane, c=cluster: can_list_pods(p, c, alice, DEV_PROJECTS[0]) == 200)  # type: ignore[misc]
        assert eventually(lambda p=plane, c=cluster: can_list_pods(p, c, bob, PROD_PROJECT) == 200)  # type: ignore[misc]
        assert can_list_pods(plane, cluster, bob, DEV_PROJECTS[0]) == 403

    # dev stops granting the seed's group: it removes its own, and nothing of prod's
    reconcile_as("dev", configuration(fresh, None, seed_group=False), service, tmp_path / "dev-2", monkeypatch)
    final = owners(fresh, eks)
    assert (AWS_AUTH, alice.arn.lower()) not in final and (ENTRIES, alice.arn.lower()) not in final
    assert final[(AWS_AUTH, bob.arn.lower())] == final[(ENTRIES, bob.arn.lower())] == "prod"
    assert {k: v for k, v in bindings(fresh).items()} == {k: v for k, v in now.items() if v[0] == "prod"}
    for cluster, plane in fresh.items():
        assert eventually(lambda p=plane, c=cluster: can_list_pods(p, c, alice, DEV_PROJECTS[0]) == 401)  # type: ignore[misc]
        assert can_list_pods(plane, cluster, bob, PROD_PROJECT) == 200


def test_an_install_from_before_instances_is_adopted_in_place_by_its_named_instance(
    fresh: dict[str, ControlPlane], eks: EksEmulator, service: Service, tmp_path: Path, monkeypatch: Any
) -> None:
    iam = boto3.client("iam")
    name = f"carol-{uuid.uuid4().hex[:6]}"
    carol = iam_user(name)
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    config = configuration(fresh, None)
    reconcile_as("default", config, service, tmp_path / "before", monkeypatch)  # what earlier versions wrote
    before = owners(fresh, eks)
    assert before[(AWS_AUTH, carol.arn.lower())] is None and set(before.values()) == {None}
    assert {label for label, _ in bindings(fresh).values()} == {None}

    eks.clear_calls()
    reconcile_as("prod", config, service, tmp_path / "upgraded", monkeypatch)
    assert owners(fresh, eks) == dict.fromkeys(before, "prod")  # the same mappings, each marked in place
    assert {label for label, _ in bindings(fresh).values()} == {"prod"}
    assert [c.operation for c in eks.calls_to("CreateAccessEntry", "DeleteAccessEntry", cluster=ENTRIES)] == []
    for cluster, plane in fresh.items():
        assert can_list_pods(plane, cluster, carol, DEV_PROJECTS[0]) == 200  # access never interrupted

    # the default instance (the CLI without EKS_IAM_SYNC_INSTANCE) now leaves prod's objects alone
    marked = bindings(fresh)
    result = reconcile_as("default", config, service, tmp_path / "cli", monkeypatch)
    assert owners(fresh, eks) == dict.fromkeys(before, "prod") and bindings(fresh) == marked
    for cluster in fresh:
        assert any("eks-iam-sync instance 'prod'" in c for c in result["clusters"][cluster]["identities"]["conflicts"])
