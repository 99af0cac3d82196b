"""EKS access entries end to end: the Lambdas and the CLI against two real apiservers registered in
the EKS emulator, one in API_AND_CONFIG_MAP mode and one in API mode, checked with the users' own
EKS tokens through the authenticator that maps callers as EKS does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from chalicelib.config import DEFAULT_CONFIG_PATH
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.entry.cli import main
from chalicelib.errors import PermanentError
from chalicelib.model.ownership import ENTRY_PRINCIPAL_ID_TAG, MANAGED_BY_LABEL
from tests.harness.cloudtrail import iam_event
from tests.harness.eks_emulator import ACCESS_ENTRY_OPERATIONS, EksEmulator
from tests.harness.function import Function, cluster_config, deployed
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, eventually, iam_user, write_aws_auth
from tests.harness.service import (
    NODE_ROLE,
    SEED_GROUP,
    SEED_NAMESPACES,
    Service,
    bootstrap_access_entry_cluster,
    delete_owned_bindings,
    reset_aws_auth,
    reset_iam_grants,
)
from tests.harness.stack import start_cluster

pytestmark = pytest.mark.cluster

BOTH, API = "bttrm-eks-both-0", "bttrm-eks-api-0"
PROJECTS = SEED_NAMESPACES[:2]


@dataclass
class EntryCluster:
    name: str
    plane: ControlPlane

    def can_list_pods(self, who: Principal, namespace: str = PROJECTS[0]) -> int:
        api = self.plane.client_for(who.token(self.name))
        try:
            client.CoreV1Api(api).list_namespaced_pod(namespace)
        except ApiException as err:
            return int(err.status)
        return 200

    def aws_auth(self) -> client.V1ConfigMap | None:
        try:
            return client.CoreV1Api(self.plane.admin()).read_namespaced_config_map("aws-auth", "kube-system")
        except ApiException as err:
            if err.status == 404:
                return None
            raise


@pytest.fixture(scope="module")
def clusters(aws_endpoint: str, eks: EksEmulator, service: Service) -> Iterator[dict[str, EntryCluster]]:
    """Two clusters whose operator bootstrapped the service as EKS needs in API modes: an access entry
    for its role (and, on the mixed one, the node role in aws-auth, as EKS keeps it there)."""
    with ExitStack() as stack:
        found = {}
        for name, mode in ((BOTH, "API_AND_CONFIG_MAP"), (API, "API")):
            plane, _ = start_cluster(stack, aws_endpoint, name, eks=eks, mode=mode)
            bootstrap_access_entry_cluster(plane, name, service.role_arn)
            found[name] = EntryCluster(name, plane)
        yield found


def config_text(found: dict[str, EntryCluster], backend: str = "auto", only: str | None = None) -> str:
    seed = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    seed["clusters"] = [
        {
            "name": c.name,
            "region": "us-east-2",
            "endpoint": c.plane.endpoint,
            "certificateAuthorityData": c.plane.ca_data,
            "backend": backend,
        }
        for c in found.values()
        if only in (None, c.name)
    ]
    return yaml.safe_dump(seed)


@pytest.fixture
def fresh(clusters: dict[str, EntryCluster], eks: EksEmulator) -> dict[str, EntryCluster]:
    """Nobody granted in IAM; no entries but the service's; no owned bindings; aws-auth as bootstrapped."""
    reset_iam_grants(SEED_GROUP)
    for found in clusters.values():
        for entry in eks.entries(found.name):
            if entry.tags.get(MANAGED_BY_LABEL) == "eks-iam-sync" or entry.username.startswith("foreign-"):
                boto3.client("eks", region_name="us-east-2").delete_access_entry(
                    clusterName=found.name, principalArn=entry.principal_arn
                )
        delete_owned_bindings(found.plane)
    reset_aws_auth(clusters[BOTH].plane)
    write_aws_auth(clusters[BOTH].plane, map_roles=[NODE_ROLE])
    eks.reset_hooks()
    return clusters


@pytest.fixture
def function(fresh: dict[str, EntryCluster], service: Service, tmp_path: Path) -> Iterator[Function]:
    with deployed(service, config_text(fresh), tmp_path) as fn:
        # No full run first: the first console click must give working access on its own.
        yield fn


def send(fn: Function, name: str, **params: object) -> dict[str, Any]:
    result: dict[str, Any] = fn.invoke("on_iam_event", iam_event(name, dict(params)))
    return result


def developer() -> tuple[Principal, str]:
    name = f"dev-{uuid.uuid4().hex[:8]}"
    return iam_user(name), name


def test_membership_events_create_and_delete_entries_and_people_get_in_and_out(
    fresh: dict[str, EntryCluster], function: Function, eks: EksEmulator
) -> None:
    iam = boto3.client("iam")
    who, name = developer()
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    result = send(function, "AddUserToGroup", groupName=SEED_GROUP, userName=name)
    for found in fresh.values():
        assert result["clusters"][found.name]["backend"] == "accessEntries"
        entry = eks.entry_for(found.name, who.arn)
        assert entry is not None and entry.username == f"eks-iam-sync:user:{name}"
        assert entry.groups == ["rbac-bttrm-web-ro-group"]
        assert entry.tags[MANAGED_BY_LABEL] == "eks-iam-sync"
        assert entry.tags[ENTRY_PRINCIPAL_ID_TAG] == iam.get_user(UserName=name)["User"]["UserId"]
        assert eventually(lambda found=found: found.can_list_pods(who) == 200)  # type: ignore[misc]
    assert fresh[API].aws_auth() is None  # API mode: aws-auth is never created
    both = fresh[BOTH].aws_auth()
    assert both is not None and read_aws_auth(both.data).entries("mapUsers") == ()

    iam.remove_user_from_group(GroupName=SEED_GROUP, UserName=name)
    send(function, "RemoveUserFromGroup", groupName=SEED_GROUP, userName=name)
    for found in fresh.values():
        assert eks.entry_for(found.name, who.arn) is None
        assert eventually(lambda found=found: found.can_list_pods(who) == 401)  # type: ignore[misc]


def test_a_membership_event_costs_at_most_two_eks_reads_per_principal(
    fresh: dict[str, EntryCluster], function: Function, eks: EksEmulator
) -> None:
    iam = boto3.client("iam")
    _, name = developer()
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    eks.clear_calls()
    send(function, "AddUserToGroup", groupName=SEED_GROUP, userName=name)
    for found in fresh.values():
        reads = [c.operation for c in eks.calls_to("DescribeAccessEntry", "ListAccessEntries", cluster=found.name)]
        assert reads == ["DescribeAccessEntry"]
        assert [c.operation for c in eks.calls_to("CreateAccessEntry", cluster=found.name)] == ["CreateAccessEntry"]


def test_foreign_and_node_entries_are_left_alone_and_a_wanted_foreign_one_is_a_conflict(
    fresh: dict[str, EntryCluster], function: Function, eks: EksEmulator
) -> None:
    iam = boto3.client("iam")
    eks_api = boto3.client("eks", region_name="us-east-2")
    node = iam.create_role(RoleName=f"node-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    other, _ = developer()
    taken, taken_name = developer()
    eks_api.create_access_entry(clusterName=API, principalArn=node, type="EC2_LINUX")
    for principal in (other.arn, taken.arn):
        username = f"foreign-{uuid.uuid4().hex[:4]}"
        eks_api.create_access_entry(
            clusterName=API, principalArn=principal, username=username, kubernetesGroups=["ops"]
        )
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=taken_name)

    result = function.invoke("reconcile_all")

    assert eks.entry_for(API, node) is not None and eks.entry_for(API, other.arn) is not None
    foreign = eks.entry_for(API, taken.arn)
    assert foreign is not None and foreign.username.startswith("foreign-")
    conflicts = result["clusters"][API]["identities"]["conflicts"]
    assert any(taken.arn in c and "someone else" in c for c in conflicts)


def test_a_recreated_principal_s_stale_entry_is_replaced(
    fresh: dict[str, EntryCluster], function: Function, eks: EksEmulator
) -> None:
    iam = boto3.client("iam")
    first, name = developer()
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    send(function, "AddUserToGroup", groupName=SEED_GROUP, userName=name)
    assert eventually(lambda: fresh[API].can_list_pods(first) == 200)

    # The user is deleted and created again under the same name; the DeleteUser event was missed.
    iam.remove_user_from_group(GroupName=SEED_GROUP, UserName=name)
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)
    again = iam_user(name)
    assert again.arn == first.arn
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    assert fresh[API].can_list_pods(again) == 401  # the old entry is bound to the old unique id

    result = send(function, "AddUserToGroup", groupName=SEED_GROUP, userName=name)

    changes = result["clusters"][API]["identities"]["changes"]
    assert [c["action"] for c in changes] == ["recreate"]
    entry = eks.entry_for(API, again.arn)
    assert entry is not None and entry.tags[ENTRY_PRINCIPAL_ID_TAG] == iam.get_user(UserName=name)["User"]["UserId"]
    assert eventually(lambda: fresh[API].can_list_pods(again) == 200)


def test_a_username_eks_refuses_is_refused_by_validation_before_anything_is_written(
    fresh: dict[str, EntryCluster], service: Service, eks: EksEmulator, tmp_path: Path
) -> None:
    iam = boto3.client("iam")
    role = f"ci-{uuid.uuid4().hex[:6]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    seed = yaml.safe_load(config_text(fresh, only=API))
    # Refused by EKS ({{SessionName}} needs a ':' before it in an access entry) and, before that, by
    # validation: a username that is the session name alone could be anybody's subject. The runtime's
    # own refusal (session-name-template) is tested in tests/unit/accessentries.
    seed["identities"]["roles"] = [{"iamRole": role, "username": "{{SessionName}}", "kubernetesGroups": ["ci"]}]
    who, name = developer()
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    with deployed(service, yaml.safe_dump(seed), tmp_path) as fn, pytest.raises(PermanentError) as raised:
        fn.invoke("reconcile_all")
    assert "could be a subject the service does not own" in str(raised.value)
    assert eks.entry_for(API, who.arn) is None  # a refused configuration writes nothing


def test_a_config_map_cluster_makes_no_access_entry_call(
    env: Any, service: Service, eks: EksEmulator, tmp_path: Path
) -> None:
    from tests.harness.service import prepare_seed_cluster  # noqa: PLC0415 - the session cluster's own reset

    prepare_seed_cluster(env.plane, service)
    iam = boto3.client("iam")
    _, name = developer()
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    eks.clear_calls()
    with deployed(service, cluster_config(env.plane), tmp_path) as fn:
        result = send(fn, "AddUserToGroup", groupName=SEED_GROUP, userName=name)
    assert result["clusters"][env.cluster_name]["backend"] == "configMap"
    assert eks.calls_to(*ACCESS_ENTRY_OPERATIONS) == []


def test_migrate_moves_owned_entries_keeps_foreign_ones_and_is_idempotent(
    fresh: dict[str, EntryCluster],
    service: Service,
    eks: EksEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    both = fresh[BOTH]
    iam = boto3.client("iam")
    people = [developer() for _ in range(3)]
    for _, name in people:
        iam.add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    # Before: the service ran with aws-auth on this cluster, beside a break-glass user mapped by hand.
    glass, _ = developer()
    write_aws_auth(
        both.plane,
        map_roles=[NODE_ROLE],
        map_users=[{"userarn": glass.arn, "username": "break-glass", "groups": ["rbac-bttrm-web-ro-group"]}],
    )
    (tmp_path / "before").mkdir()
    with deployed(service, config_text(fresh, backend="configMap", only=BOTH), tmp_path / "before") as fn:
        fn.invoke("reconcile_all")
    before = both.aws_auth()
    assert before is not None and len(read_aws_auth(before.data).entries("mapUsers")) == 4
    config = tmp_path / "config.yaml"
    config.write_text(config_text(fresh, only=BOTH))
    kubeconfig = str(both.plane.admin_kubeconfig(tmp_path / "kubeconfig"))
    args = ["migrate", "--config", str(config), "--cluster", BOTH, "--kubeconfig", kubeconfig]

    assert main([*args, "--dry-run"]) == 0
    assert both.aws_auth().data == before.data and all(eks.entry_for(BOTH, p.arn) is None for p, _ in people)  # type: ignore[union-attr]

    code = main(args)
    out = capsys.readouterr().out
    assert code == 0, out
    after = both.aws_auth()
    assert after is not None
    users = read_aws_auth(after.data).entries("mapUsers")
    assert [u.arn for u in users] == [glass.arn]  # only the foreign mapping stays
    assert read_aws_auth(after.data).entries("mapRoles")[0].arn == NODE_ROLE["rolearn"]
    for person, _ in people:
        assert eks.entry_for(BOTH, person.arn) is not None
        assert eventually(lambda person=person: both.can_list_pods(person) == 200)  # type: ignore[misc]
    assert eventually(lambda: both.can_list_pods(glass) == 200)

    assert main(args) == 0
    again = capsys.readouterr().out
    assert "access entries: unchanged" in again and "aws-auth: unchanged" in again
    assert both.aws_auth().data == after.data  # type: ignore[union-attr]


def test_migrate_refuses_a_config_map_cluster_with_the_command_that_switches_it(
    env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(cluster_config(env.plane))
    assert main(["migrate", "--config", str(config), "--cluster", env.cluster_name]) == 1
    out = capsys.readouterr().out
    assert "authenticationMode=API_AND_CONFIG_MAP" in out and "aws eks update-cluster-config" in out


def test_explain_says_which_mechanism_maps_the_principal_and_warns_about_shadowed_aws_auth(
    fresh: dict[str, EntryCluster], function: Function, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = fresh[BOTH]
    iam = boto3.client("iam")
    who, name = developer()
    iam.add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    send(function, "AddUserToGroup", groupName=SEED_GROUP, userName=name)
    write_aws_auth(
        both.plane, map_roles=[NODE_ROLE], map_users=[{"userarn": who.arn, "username": "old", "groups": ["x"]}]
    )
    config = tmp_path / "config.yaml"
    config.write_text(config_text(fresh, only=BOTH))
    kubeconfig = str(both.plane.admin_kubeconfig(tmp_path / "kubeconfig"))
    code = main(["explain", name, "--config", str(config), "--cluster", BOTH, "--kubeconfig", kubeconfig])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "mapped through access entries (authentication mode API_AND_CONFIG_MAP)" in out
    assert "in place now: yes" in out and "EKS uses the access entry and ignores that mapping" in out
