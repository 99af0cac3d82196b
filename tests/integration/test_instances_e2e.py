"""Two instances of the service (EKS_IAM_SYNC_INSTANCE "dev" and "prod") configured with the same two
real apiservers, one on aws-auth (CONFIG_MAP) and one on access entries in the EKS emulator
(API_AND_CONFIG_MAP), through the Lambdas as deployed: a cluster one manages is refused to the other,
naming it, with nothing changed, until an operator uninstalls the first there; an install from before
instances is adopted in place; people get in through the managing instance's grants with their own tokens."""

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
from chalicelib.errors import PermanentError
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


def state(planes: dict[str, ControlPlane], eks: EksEmulator) -> tuple[Any, ...]:
    """Everything a refused run must leave exactly as it was: aws-auth's resourceVersion, the owner of
    every mapping, the service's RoleBindings (resourceVersions) and every access entry as EKS holds it."""
    aws_auth = client.CoreV1Api(planes[AWS_AUTH].admin()).read_namespaced_config_map("aws-auth", "kube-system")
    entries = sorted(
        (e.principal_arn, e.username, tuple(e.groups), sorted(e.tags.items()), sorted(e.policies), e.modified_at)
        for e in eks.entries(ENTRIES)
    )
    return aws_auth.metadata.resource_version, owners(planes, eks), bindings(planes), entries


def uninstall_as(instance: str, config: str, planes: dict[str, ControlPlane], workdir: Path, monkeypatch: Any) -> None:
    """An operator's `eks-iam-sync uninstall` of ``instance`` from each cluster, as its admin (the backups'
    deletes are the operator's), with the function's AWS credentials (IAM, the access-entry API)."""
    from chalicelib.entry.cli import main  # noqa: PLC0415

    monkeypatch.setenv("EKS_IAM_SYNC_INSTANCE", instance)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(config)
    for name, plane in planes.items():
        kubeconfig = plane.admin_kubeconfig(workdir / f"{name}.kubeconfig")
        argv = ["uninstall", "--config", str(workdir / "config.yaml"), "--kubeconfig", str(kubeconfig)]
        assert main([*argv, "--cluster", name]) == 0


def test_a_cluster_one_instance_manages_is_refused_to_another_until_it_is_uninstalled_there(
    fresh: dict[str, ControlPlane], eks: EksEmulator, service: Service, tmp_path: Path, monkeypatch: Any
) -> None:
    """dev manages both clusters (aws-auth and access entries); prod's run on them is refused, naming
    dev, and changes nothing (resourceVersions and entries compared); after an operator uninstalls dev
    there, prod's next run takes both over, and people get in through prod's grants with their own tokens."""
    iam = boto3.client("iam")
    ops_group = f"iam-ops-{uuid.uuid4().hex[:8]}"
    iam.create_group(GroupName=ops_group)
    alice_name, bob_name = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    alice, bob = iam_user(alice_name), iam_user(bob_name)
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=alice_name)
    iam.add_user_to_group(GroupName=ops_group, UserName=bob_name)

    dev_config = configuration(fresh, None)
    reconcile_as("dev", dev_config, service, tmp_path / "dev", monkeypatch)
    dev_owned = owners(fresh, eks)
    assert dev_owned[(AWS_AUTH, alice.arn.lower())] == dev_owned[(ENTRIES, alice.arn.lower())] == "dev"
    assert set(dev_owned.values()) == {"dev"}
    assert {(c, ns) for c, ns, _ in bindings(fresh)} == {(c, ns) for c in fresh for ns in DEV_PROJECTS}
    before = state(fresh, eks)

    # prod is configured with both clusters: each is refused, naming dev, and nothing is written there
    eks.clear_calls()
    prod_config = configuration(fresh, ops_group)
    with pytest.raises(PermanentError) as refused:
        reconcile_as("prod", prod_config, service, tmp_path / "prod", monkeypatch)
    for cluster in fresh:
        assert (
            f"cluster {cluster}: ManagedByOtherInstance: cluster {cluster} is managed by eks-iam-sync instance 'dev'"
            in str(refused.value)
        )
    assert state(fresh, eks) == before
    writes = ("CreateAccessEntry", "UpdateAccessEntry", "DeleteAccessEntry", "TagResource", "UntagResource")
    assert eks.calls_to(*writes, "AssociateAccessPolicy", "DisassociateAccessPolicy", cluster=ENTRIES) == []
    for cluster, plane in fresh.items():  # dev's people still get in; prod's were not mapped
        assert can_list_pods(plane, cluster, alice, DEV_PROJECTS[0]) == 200
        assert can_list_pods(plane, cluster, bob, PROD_PROJECT) == 401

    # an operator uninstalls dev from both; prod's next run takes them over
    uninstall_as("dev", dev_config, fresh, tmp_path / "uninstall", monkeypatch)
    assert owners(fresh, eks) == {} and bindings(fresh) == {}
    result = reconcile_as("prod", prod_config, service, tmp_path / "prod-2", monkeypatch)
    taken = owners(fresh, eks)
    assert taken[(AWS_AUTH, alice.arn.lower())] == taken[(ENTRIES, alice.arn.lower())] == "prod"
    assert taken[(AWS_AUTH, bob.arn.lower())] == taken[(ENTRIES, bob.arn.lower())] == "prod"
    assert set(taken.values()) == {"prod"}
    assert {(c, ns, label) for (c, ns, _), (label, _) in bindings(fresh).items()} == {
        (c, ns, "prod") for c in fresh for ns in (*DEV_PROJECTS, PROD_PROJECT)
    }
    for cluster, plane in fresh.items():
        assert result["clusters"][cluster]["identities"]["conflicts"] == []
        assert eventually(lambda p=plane, c=cluster: can_list_pods(p, c, alice, DEV_PROJECTS[0]) == 200)  # type: ignore[misc]
        assert eventually(lambda p=plane, c=cluster: can_list_pods(p, c, bob, PROD_PROJECT) == 200)  # type: ignore[misc]
        assert can_list_pods(plane, cluster, bob, DEV_PROJECTS[0]) == 403


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

    # the default instance (the CLI without EKS_IAM_SYNC_INSTANCE) is now refused where prod manages,
    # told how to act as prod, and changes nothing
    marked = state(fresh, eks)
    with pytest.raises(PermanentError) as refused:
        reconcile_as("default", config, service, tmp_path / "cli", monkeypatch)
    for cluster in fresh:
        assert f"cluster {cluster} is managed by eks-iam-sync instance 'prod'" in str(refused.value)
    assert "set EKS_IAM_SYNC_INSTANCE=prod" in str(refused.value)
    assert state(fresh, eks) == marked
