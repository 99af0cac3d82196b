"""An access policy at cluster scope on an aws-auth cluster, on the real apiserver: the RBAC equivalent
bound by a ClusterRoleBinding the service owns.

- The RBAC manifest rendered for such a configuration, held as the service (impersonating a member of
  a group bound to exactly its rules, renamed, as test_service_rbac_scope does): it may create, replace,
  list and delete a ClusterRoleBinding of ``view`` for a username, and the API server's escalation
  prevention refuses one of ``cluster-admin``, ``edit``, ``admin`` or any other ClusterRole its ``bind``
  rule does not name; a manifest for a configuration without cluster scope grants no ClusterRoleBinding
  at all.
- End to end, the Lambdas on a CONFIG_MAP cluster holding that manifest and nothing else: ``plan`` shows
  the ClusterRoleBinding, a full run makes it, a member's own EKS token then lists pods in every
  namespace (one created after the run too); a foreign ClusterRoleBinding of the name another member's
  would have is never changed (a reported conflict); removing the rule deletes the service's, and the
  member's token is refused again.
"""

from __future__ import annotations

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

from chalicelib.config import DEFAULT_CONFIG_PATH, parse_config
from chalicelib.deploy.rbac_manifest import render_manifest
from chalicelib.entry.cli import main
from chalicelib.model.ownership import MANAGED_BY_LABEL, MANAGED_BY_SELECTOR, MANAGED_BY_VALUE
from tests.harness.eks_emulator import EksEmulator
from tests.harness.function import deployed
from tests.harness.kube import ControlPlane
from tests.harness.principals import Principal, eventually, iam_user
from tests.harness.service import (
    SEED_GROUP,
    Service,
    bootstrap_aws_auth,
    ensure_cluster_role,
    ensure_namespace,
    reset_iam_grants,
)
from tests.harness.stack import start_cluster
from tests.integration.test_access_policies_e2e import aggregate
from tests.integration.test_service_rbac_scope import as_the_service, status

pytestmark = pytest.mark.cluster

CLUSTER, REGION = "bttrm-eks-policy-crb-0", "us-east-2"
A, B, LATER = "crb-a", "crb-b", "crb-created-later"
NOT_NAMED = "crb-pod-reader"  # a ClusterRole (pods: get, list, watch) the configuration names nowhere
RBAC_GROUP = "rbac.authorization.k8s.io"
SEED = DEFAULT_CONFIG_PATH.read_text()
# The seed with its group granting View at cluster scope (no namespaces).
CLUSTER_VIEW = SEED.replace(
    "      kubernetesGroups: [rbac-bttrm-web-ro-group]\n  roles:",
    "      kubernetesGroups: [rbac-bttrm-web-ro-group]\n      accessPolicies: [{policy: AmazonEKSViewPolicy}]\n  roles:",
)


def crb(name: str, role: str, user: str, owned: bool = True) -> client.V1ClusterRoleBinding:
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE} if owned else {"app.kubernetes.io/managed-by": "someone-else"}
    return client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        role_ref=client.V1RoleRef(api_group=RBAC_GROUP, kind="ClusterRole", name=role),
        subjects=[client.RbacV1Subject(api_group=RBAC_GROUP, kind="User", name=user)],
    )


def configuration(plane: ControlPlane, cluster_scope: bool) -> str:
    """The seed on the test cluster, its group granting View at cluster scope (or nothing) and no
    Kubernetes group or namespace grant, so that any access comes from the ClusterRoleBinding alone."""
    seed = yaml.safe_load(SEED)
    seed["clusters"] = [
        {"name": CLUSTER, "region": REGION, "endpoint": plane.endpoint, "certificateAuthorityData": plane.ca_data}
    ]
    group = seed["identities"]["groups"][0]
    group["kubernetesGroups"] = []
    if cluster_scope:
        group["accessPolicies"] = [{"policy": "AmazonEKSViewPolicy"}]
    seed["identities"]["roles"] = []
    seed["namespaceGrants"] = []
    return yaml.safe_dump(seed)


@pytest.fixture(scope="module")
def plane(
    aws_endpoint: str, eks: EksEmulator, service: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    """A CONFIG_MAP cluster bootstrapped by its operator: aws-auth mapping the node and the service's
    role, and the RBAC `eks-iam-sync rbac` renders for the cluster-scope configuration (nothing else)."""
    with ExitStack() as stack:
        found, _ = start_cluster(stack, aws_endpoint, CLUSTER, eks=eks, mode="CONFIG_MAP", region=REGION)
        manifest = tmp_path_factory.mktemp("rbac") / "rbac.yaml"
        manifest.write_text(render_manifest(parse_config(configuration(found, True))))
        utils.create_from_yaml(found.admin(), str(manifest))
        bootstrap_aws_auth(found, service)
        for role in ("view", "edit", "admin"):  # as the controller manager would: each then holds real rules
            aggregate(found, role)
        ensure_cluster_role(found, NOT_NAMED)
        for namespace in (A, B):
            ensure_namespace(found, namespace)
        yield found


def pods(plane: ControlPlane, who: Principal, namespace: str) -> int:
    """The apiserver's answer to ``who`` listing pods with a new token of their own."""
    try:
        client.CoreV1Api(plane.client_for(who.token(CLUSTER, REGION))).list_namespaced_pod(
            namespace, _request_timeout=5
        )
    except ApiException as err:
        return int(err.status)
    return 200


def member() -> tuple[Principal, str]:
    name = f"crb-{uuid.uuid4().hex[:8]}"
    who = iam_user(name)
    boto3.client("iam").add_user_to_group(GroupName=SEED_GROUP, UserName=name)
    return who, f"eks-iam-sync:user:{name}"


def run(service: Service, text: str, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    with deployed(service, text, workdir) as fn:
        result: dict[str, Any] = fn.invoke("reconcile_all")
    cluster: dict[str, Any] = result["clusters"][CLUSTER]
    return cluster


def test_cluster_scope_is_applied_as_a_clusterrolebinding_of_view_and_removed_with_the_rule(
    plane: ControlPlane, service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reset_iam_grants(SEED_GROUP)
    rbac = client.RbacAuthorizationV1Api(plane.admin())
    alice, alice_user = member()
    bob, bob_user = member()
    mine, theirs = f"eks-iam-sync:policy:{alice_user}:view", f"eks-iam-sync:policy:{bob_user}:view"
    rbac.create_cluster_role_binding(crb(theirs, "view", "someone-else", owned=False))
    foreign = rbac.read_cluster_role_binding(theirs)
    text = configuration(plane, True)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    kubeconfig = str(plane.admin_kubeconfig(tmp_path / "kubeconfig"))

    assert main(["plan", "--config", str(config), "--cluster", CLUSTER, "--kubeconfig", kubeconfig]) == 2
    planned = capsys.readouterr().out
    assert (
        f"+ clusterrolebinding {mine}: User {alice_user} -> ClusterRole view  (accessPolicy AmazonEKSViewPolicy"
        in planned
    )

    result = run(service, text, tmp_path / "1")
    assert any(theirs in p and "conflict" in p for p in result["problems"]), result
    made = rbac.read_cluster_role_binding(mine)
    assert made.metadata.labels[MANAGED_BY_LABEL] == MANAGED_BY_VALUE
    assert (made.role_ref.name, [(s.kind, s.name) for s in made.subjects]) == ("view", [("User", alice_user)])
    ensure_namespace(plane, LATER)
    for namespace in (A, B, LATER, "default"):
        assert eventually(lambda: pods(plane, alice, namespace) == 200), namespace  # noqa: B023
    assert pods(plane, bob, A) == 403  # his would-be binding's name is someone else's: not taken over
    assert status_of(rbac, theirs) == _fingerprint(foreign)

    result = run(service, configuration(plane, False), tmp_path / "2")
    assert result["status"] in ("written", "changes", "ok"), result
    assert not [b for b in rbac.list_cluster_role_binding(label_selector=MANAGED_BY_SELECTOR).items]
    assert eventually(lambda: pods(plane, alice, A) == 403)
    assert status_of(rbac, theirs) == _fingerprint(foreign)  # never changed, never deleted
    rbac.delete_cluster_role_binding(theirs)


def _fingerprint(binding: client.V1ClusterRoleBinding) -> tuple[Any, ...]:
    return (
        binding.metadata.resource_version,
        binding.metadata.labels,
        binding.role_ref.name,
        [(s.kind, s.name) for s in binding.subjects],
    )


def status_of(rbac: client.RbacAuthorizationV1Api, name: str) -> tuple[Any, ...]:
    return _fingerprint(rbac.read_cluster_role_binding(name))


def test_the_manifest_lets_the_service_bind_only_the_equivalents_cluster_wide(plane: ControlPlane) -> None:
    assert CLUSTER_VIEW != SEED
    rbac = client.RbacAuthorizationV1Api(as_the_service(plane, CLUSTER_VIEW))
    user = f"eks-iam-sync:user:crb-{uuid.uuid4().hex[:6]}"
    name = f"eks-iam-sync:policy:{user}:view"
    # (a) a ClusterRoleBinding of view to the username: created, listed by label, replaced, deleted
    assert status(lambda: rbac.create_cluster_role_binding(crb(name, "view", user))) == 200
    listed = rbac.list_cluster_role_binding(label_selector=MANAGED_BY_SELECTOR).items
    assert name in {b.metadata.name for b in listed}
    current = next(b for b in listed if b.metadata.name == name)  # as the service reads it: listed, never get
    current.metadata.annotations = {"eks-iam-sync.io/source": "accessPolicy AmazonEKSViewPolicy (test)"}
    assert status(lambda: rbac.replace_cluster_role_binding(name, current)) == 200
    assert status(lambda: rbac.delete_cluster_role_binding(name)) == 200
    # (b) escalation prevention: no ClusterRole its bind rule does not name, whatever it holds itself
    for role in ("cluster-admin", "edit", "admin", NOT_NAMED, "eks-iam-sync-admin-view"):
        other = f"eks-iam-sync:policy:{user}:{role}"
        assert status(lambda: rbac.create_cluster_role_binding(crb(other, role, user))) == 403, role  # noqa: B023
    # a configuration without cluster scope: no ClusterRoleBinding rights at all
    scoped = CLUSTER_VIEW.replace("{policy: AmazonEKSViewPolicy}", "{policy: AmazonEKSViewPolicy, namespaces: [a]}")
    rbac = client.RbacAuthorizationV1Api(as_the_service(plane, scoped))
    assert status(lambda: rbac.create_cluster_role_binding(crb(name, "view", user))) == 403
    assert status(lambda: rbac.list_cluster_role_binding(label_selector=MANAGED_BY_SELECTOR)) == 403


def test_the_function_itself_cannot_bind_cluster_admin(plane: ControlPlane, service: Service) -> None:
    """The service's own token on the cluster holding the generated manifest (not an impersonation)."""
    rbac = client.RbacAuthorizationV1Api(service.api(plane, CLUSTER))
    user = f"eks-iam-sync:user:crb-{uuid.uuid4().hex[:6]}"
    escalation = crb(f"eks-iam-sync:policy:{user}:cluster-admin", "cluster-admin", user)
    with pytest.raises(ApiException) as refused:
        rbac.create_cluster_role_binding(escalation)
    assert refused.value.status == 403
    assert status(lambda: rbac.list_cluster_role_binding(label_selector=MANAGED_BY_SELECTOR)) == 200
