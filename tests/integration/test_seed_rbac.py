"""The seed's hand-made setup, proven on the real apiserver: what the group's members may and may not do."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from chalicelib.config import DEFAULT_CONFIG_PATH, load_config
from tests.conftest import Environment
from tests.harness.principals import assert_seed_access, iam_user, write_aws_auth
from tests.harness.service import ensure_cluster_role, ensure_namespace, reset_aws_auth

pytestmark = pytest.mark.cluster

SEED = load_config(DEFAULT_CONFIG_PATH)
GRANT = SEED.namespace_grants[0]
PROJECT_NAMESPACES = GRANT.namespaces or ()


@pytest.fixture
def seed_rbac(env: Environment) -> Iterator[None]:
    rbac = client.RbacAuthorizationV1Api(env.admin())
    ensure_cluster_role(env.plane, GRANT.cluster_role)
    for namespace in PROJECT_NAMESPACES:
        ensure_namespace(env.plane, namespace)
        rbac.create_namespaced_role_binding(
            namespace,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="web-ro"),
                role_ref=client.V1RoleRef(
                    api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=GRANT.cluster_role
                ),
                subjects=[
                    client.RbacV1Subject(
                        kind="Group", name=GRANT.kubernetes_group, api_group="rbac.authorization.k8s.io"
                    )
                ],
            ),
        )
    yield
    for namespace in PROJECT_NAMESPACES:
        rbac.delete_namespaced_role_binding("web-ro", namespace)
    reset_aws_auth(env.plane)


def test_seed_group_member_reads_pods_in_both_project_namespaces_and_nothing_else(
    env: Environment, seed_rbac: None
) -> None:
    developer = iam_user(f"dev-{uuid.uuid4().hex[:6]}")
    group = SEED.identities.groups[0]
    write_aws_auth(
        env.plane,
        map_users=[
            {
                "userarn": developer.arn,
                "username": developer.arn.rsplit("/", 1)[1],
                "groups": list(group.kubernetes_groups),
            }
        ],
    )
    api = env.plane.client_for(developer.token(env.cluster_name))
    assert_seed_access(api, PROJECT_NAMESPACES)
    with pytest.raises(ApiException) as denied:
        client.CoreV1Api(api).list_namespaced_pod("default")
    assert denied.value.status == 403
