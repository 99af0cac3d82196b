"""EKS access policies as grants, end to end: the Lambdas against real apiservers, users asked with
their own EKS tokens.

- An ``API`` cluster whose kube-apiserver authorizes with the harness's access-policy webhook
  (``--authorization-mode=Webhook,RBAC``): a group rule's AmazonEKSViewPolicy on ``[a]`` lets a member
  list pods in ``a`` through the association alone (no RoleBinding), not in ``b``; ``[a, b]`` is exactly
  one AssociateAccessPolicy and no DisassociateAccessPolicy, and a probe every 100 ms never sees ``a``
  denied meanwhile; removing the rule disassociates. Foreign entries' associations stay byte-identical.
- A ``CONFIG_MAP`` cluster: the same rule gives the same access through the ``view`` ClusterRole
  (a RoleBinding to the member's username), and ``plan`` says so.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from chalicelib.config import DEFAULT_CONFIG_PATH, parse_config
from chalicelib.deploy.rbac_manifest import render_manifest
from chalicelib.entry.cli import main
from tests.harness.cloudtrail import iam_event
from tests.harness.eks_emulator import EksEmulator
from tests.harness.function import deployed
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, eventually, iam_user
from tests.harness.probe import Probe, list_status
from tests.harness.service import (
    SEED_GROUP,
    Service,
    bootstrap_access_entry_cluster,
    bootstrap_aws_auth,
    delete_owned_bindings,
    ensure_namespace,
    reset_iam_grants,
)
from tests.harness.stack import start_cluster

pytestmark = pytest.mark.cluster

API, CONFIG_MAP = "bttrm-eks-policy-api-0", "bttrm-eks-policy-cm-0"
REGION = "us-east-2"
A, B = "policy-a", "policy-b"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
POLICY_CALLS = ("AssociateAccessPolicy", "DisassociateAccessPolicy")


@dataclass
class Cluster:
    name: str
    plane: ControlPlane

    def pods(self, who: Principal, namespace: str, api: client.ApiClient | None = None) -> int:
        """The apiserver's answer to the member listing pods with a token of their own (a new one,
        unless ``api`` holds one already)."""
        try:
            client.CoreV1Api(api or self.plane.client_for(who.token(self.name, REGION))).list_namespaced_pod(
                namespace, _request_timeout=5
            )
        except ApiException as err:
            return int(err.status)
        return 200

    def bindings_naming(self, username: str) -> list[str]:
        rbac = client.RbacAuthorizationV1Api(self.plane.admin())
        return [
            f"{b.metadata.namespace}/{b.metadata.name}"
            for b in rbac.list_role_binding_for_all_namespaces().items
            if any(s.name == username for s in b.subjects or [])
        ]


def configuration(clusters: dict[str, Cluster], namespaces: list[str] | None) -> str:
    """The seed with both clusters, its group granting View in ``namespaces`` (None: no policy) and no
    Kubernetes group or namespace grant, so that any access comes from the policy alone."""
    seed = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    seed["clusters"] = [
        {"name": c.name, "region": REGION, "endpoint": c.plane.endpoint, "certificateAuthorityData": c.plane.ca_data}
        for c in clusters.values()
    ]
    group = seed["identities"]["groups"][0]
    group["kubernetesGroups"] = []
    if namespaces is not None:
        group["accessPolicies"] = [{"policy": "AmazonEKSViewPolicy", "namespaces": namespaces}]
    seed["identities"]["roles"] = []
    seed["namespaceGrants"] = []
    return yaml.safe_dump(seed)


def aggregate(plane: ControlPlane, role: str) -> None:
    """What kube-controller-manager's clusterrole-aggregation controller does (the test stack runs no
    controller manager): ``view``, ``edit`` and ``admin`` get the rules of the ClusterRoles labelled
    ``rbac.authorization.k8s.io/aggregate-to-<role>``; until then they grant nothing."""
    rbac = client.RbacAuthorizationV1Api(plane.admin())
    selector = f"rbac.authorization.k8s.io/aggregate-to-{role}=true"
    rules = [r for found in rbac.list_cluster_role(label_selector=selector).items for r in found.rules or []]
    rbac.patch_cluster_role(role, {"rules": [client.ApiClient().sanitize_for_serialization(r) for r in rules]})


@pytest.fixture(scope="module")
def clusters(
    aws_endpoint: str, eks: EksEmulator, service: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Cluster]]:
    with ExitStack() as stack:
        api, _ = start_cluster(stack, aws_endpoint, API, eks=eks, mode="API", region=REGION, access_policies=True)
        bootstrap_access_entry_cluster(api, API, service.role_arn, REGION, extra_namespaces=(A, B))
        aws_auth, _ = start_cluster(stack, aws_endpoint, CONFIG_MAP, eks=eks, mode="CONFIG_MAP", region=REGION)
        found = {API: Cluster(API, api), CONFIG_MAP: Cluster(CONFIG_MAP, aws_auth)}
        # The operator's bootstrap of an aws-auth cluster, with the RBAC this configuration needs
        # (`eks-iam-sync rbac`: bind on view, View's equivalent, besides the seed's).
        manifest = tmp_path_factory.mktemp("rbac") / "rbac.yaml"
        manifest.write_text(render_manifest(parse_config(configuration(found, [A]))))
        utils.create_from_yaml(aws_auth.admin(), str(manifest))
        bootstrap_aws_auth(aws_auth, service)
        aggregate(aws_auth, "view")
        for namespace in (A, B):
            ensure_namespace(aws_auth, namespace)
        yield found


@pytest.fixture
def fresh(clusters: dict[str, Cluster], eks: EksEmulator, service: Service) -> dict[str, Cluster]:
    """Nobody in the group; no entries but the service's; no owned bindings; aws-auth as bootstrapped."""
    reset_iam_grants(SEED_GROUP)
    bootstrap_aws_auth(clusters[CONFIG_MAP].plane, service)
    eks_api = boto3.client("eks", region_name=REGION)
    for entry in eks.entries(API):
        if entry.tags.get("app.kubernetes.io/managed-by") == "eks-iam-sync" or entry.username.startswith("foreign-"):
            eks_api.delete_access_entry(clusterName=API, principalArn=entry.principal_arn)
    for found in clusters.values():
        delete_owned_bindings(found.plane)
    eks.reset_hooks()
    return clusters


def member() -> tuple[Principal, str]:
    name = f"pol-{uuid.uuid4().hex[:8]}"
    who = iam_user(name)
    boto3.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    return who, name


def run(service: Service, text: str, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    with deployed(service, text, workdir) as fn:
        result: dict[str, Any] = fn.invoke("reconcile_all")
    return result


def foreign_entry(eks: EksEmulator) -> tuple[str, list[Any]]:
    """Someone else's entry with an association of its own: the service must never touch it."""
    other = iam_user(f"foreign-{uuid.uuid4().hex[:6]}")
    eks_api = boto3.client("eks", region_name=REGION)
    eks_api.create_access_entry(clusterName=API, principalArn=other.arn, username=f"foreign-{uuid.uuid4().hex[:4]}")
    eks_api.associate_access_policy(
        clusterName=API,
        principalArn=other.arn,
        policyArn="arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy",
        accessScope={"type": "namespace", "namespaces": [B]},
    )
    return other.arn, copy.deepcopy(eks.associations(API, other.arn))


def test_a_group_s_view_policy_grants_through_the_association_alone_and_changes_scope_without_a_gap(
    fresh: dict[str, Cluster], service: Service, eks: EksEmulator, tmp_path: Path
) -> None:
    api = fresh[API]
    who, name = member()
    username = f"eks-iam-sync:user:{name}"
    foreign, foreign_before = foreign_entry(eks)

    run(service, configuration(fresh, [A]), tmp_path / "1")
    assert eks.associations(API, who.arn)[0].policy_arn == VIEW
    assert eventually(lambda: api.pods(who, A) == 200)
    assert api.pods(who, B) == 403
    assert api.bindings_naming(username) == []  # through the policy alone
    assert eks.associations(API, foreign) == foreign_before

    eks.clear_calls()
    member_api = api.plane.client_for(who.token(API, REGION))  # one token for the probe: minting takes a second
    with Probe(lambda: list_status(member_api, A)) as probe:
        time.sleep(0.5)
        run(service, configuration(fresh, [A, B]), tmp_path / "2")
        assert eventually(lambda: api.pods(who, B) == 200)
        time.sleep(0.5)
    calls = [c.operation for c in eks.calls_to(*POLICY_CALLS, cluster=API)]
    assert calls == ["AssociateAccessPolicy"]
    answers = probe.answers()
    assert len(answers) >= 10 and set(answers) == {200} and not probe.errors, (answers, probe.errors)
    assert eks.associations(API, foreign) == foreign_before

    eks.clear_calls()
    run(service, configuration(fresh, None), tmp_path / "3")
    assert [c.operation for c in eks.calls_to(*POLICY_CALLS, cluster=API)] == ["DisassociateAccessPolicy"]
    assert eks.associations(API, who.arn) == []
    assert eventually(lambda: api.pods(who, A) == 403)
    assert eks.associations(API, foreign) == foreign_before


def test_an_event_gives_a_new_member_the_policy_before_any_full_run(
    fresh: dict[str, Cluster], service: Service, eks: EksEmulator, tmp_path: Path
) -> None:
    api = fresh[API]
    who, name = member()
    with deployed(service, configuration(fresh, [A]), tmp_path) as fn:
        fn.invoke("on_iam_event", iam_event("AddUserToGroup", {"groupName": SEED_GROUP, "userName": name}))
    assert eventually(lambda: api.pods(who, A) == 200)
    assert api.pods(who, B) == 403


def test_on_an_aws_auth_cluster_the_same_rule_gives_the_same_access_through_view(
    fresh: dict[str, Cluster], service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cm = fresh[CONFIG_MAP]
    who, name = member()
    username = f"eks-iam-sync:user:{name}"
    text = configuration(fresh, [A])
    config = tmp_path / "config.yaml"
    config.write_text(text)
    kubeconfig = str(cm.plane.admin_kubeconfig(tmp_path / "kubeconfig"))

    assert main(["plan", "--config", str(config), "--cluster", CONFIG_MAP, "--kubeconfig", kubeconfig]) == 2
    planned = capsys.readouterr().out
    binding = f"eks-iam-sync:policy:{username}:view"
    assert (
        f"+ rolebinding {A}/{binding}: User {username} -> ClusterRole view  (accessPolicy AmazonEKSViewPolicy"
        in planned
    )

    result = run(service, text, tmp_path / "run")
    assert result["clusters"][CONFIG_MAP]["status"] in ("changes", "written", "ok"), result["clusters"][CONFIG_MAP]
    assert cm.bindings_naming(username) == [f"{A}/{binding}"]
    assert eventually(lambda: cm.pods(who, A) == 200), cm.pods(who, A)
    assert cm.pods(who, B) == 403
