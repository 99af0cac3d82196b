"""The service's RBAC manifest, as rendered for a configuration, holds on the real apiserver: a grant of
exactly the rendered rules (renamed so that this test's grant is its own) to a group, and requests made as
a user of that group (impersonated: the apiserver authorizes the group's RBAC, nothing else)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from chalicelib.config import ADMIN_VIEW_CLUSTER_ROLE, DEFAULT_CONFIG_PATH, parse_config
from chalicelib.deploy.rbac_manifest import NAME, manifest_documents
from chalicelib.model.ownership import MANAGED_BY_LABEL, MANAGED_BY_VALUE, SERVICE_GROUP
from tests.conftest import Environment
from tests.harness.kube import ControlPlane
from tests.harness.service import ensure_cluster_role, ensure_namespace

pytestmark = pytest.mark.cluster

SEED = DEFAULT_CONFIG_PATH.read_text()
ENTRIES_ONLY = SEED.replace("region: us-east-2", "region: us-east-2\n    backend: accessEntries")
LISTED_ONLY = SEED.split("tagGrants:")[0] + "allowPrivilegedClusterRoles: []\n"
POD_READER = "rbac-bttrm-pods-ro-cluster-role"
GRANTED, ELSEWHERE = "bttrm-web-proj-1-ns", "rbac-scope-elsewhere"


def as_the_service(plane: ControlPlane, text: str) -> client.ApiClient:
    """The manifest rendered for ``text``, applied under names of its own, and a client acting as a member
    of its group."""
    tag = uuid.uuid4().hex[:8]
    group = f"{SERVICE_GROUP}-{tag}"
    renamed = []
    for document in manifest_documents(parse_config(text)):
        if document["metadata"]["name"] == ADMIN_VIEW_CLUSTER_ROLE:
            continue  # shipped for others, bound to nobody
        mine = copy.deepcopy(document)
        mine["metadata"]["name"] += f"-{tag}"
        if "roleRef" in mine:
            mine["roleRef"]["name"] += f"-{tag}"
            mine["subjects"] = [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}]
        renamed.append(mine)
    for document in renamed:
        utils.create_from_dict(plane.admin(), document)
    api = plane.admin()
    api.set_default_header("Impersonate-User", f"{NAME}-{tag}")
    api.set_default_header("Impersonate-Group", group)
    return api


def status(call: Callable[[], Any]) -> int:
    try:
        call()
    except ApiException as err:
        return int(err.status)
    return 200


def binding(namespace: str, name: str) -> client.V1RoleBinding:
    return client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels={MANAGED_BY_LABEL: MANAGED_BY_VALUE}),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=POD_READER),
        subjects=[client.RbacV1Subject(kind="Group", name="rbac-scope-team", api_group="rbac.authorization.k8s.io")],
    )


@pytest.fixture
def plane(env: Environment) -> ControlPlane:
    for namespace in (GRANTED, "bttrm-web-proj-2-ns", ELSEWHERE):
        ensure_namespace(env.plane, namespace)
    ensure_cluster_role(env.plane, POD_READER)
    return env.plane


def test_access_entries_only_the_service_can_neither_read_nor_write_any_configmap(plane: ControlPlane) -> None:
    core = client.CoreV1Api(as_the_service(plane, ENTRIES_ONLY))
    assert status(lambda: core.read_namespaced_config_map("aws-auth", "kube-system")) == 403
    aws_auth = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="aws-auth"), data={"mapRoles": "[]"})
    assert status(lambda: core.create_namespaced_config_map("kube-system", aws_auth)) == 403
    assert status(core.list_namespace) == 200  # what it does need still works
    # the same configuration with backend auto (the cluster's mode decides): aws-auth is readable
    core = client.CoreV1Api(as_the_service(plane, SEED))
    assert status(lambda: core.read_namespaced_config_map("aws-auth", "kube-system")) in (200, 404)


def test_with_every_namespace_listed_bindings_are_written_there_and_nowhere_else(plane: ControlPlane) -> None:
    admin = client.RbacAuthorizationV1Api(plane.admin())
    foreign = f"someone-elses-{uuid.uuid4().hex[:6]}"
    admin.create_namespaced_role_binding(ELSEWHERE, binding(ELSEWHERE, foreign))
    rbac = client.RbacAuthorizationV1Api(as_the_service(plane, LISTED_ONLY))
    name = f"eks-iam-sync-scope-{uuid.uuid4().hex[:6]}"
    assert status(lambda: rbac.create_namespaced_role_binding(GRANTED, binding(GRANTED, name))) == 200
    assert status(lambda: rbac.delete_namespaced_role_binding(name, GRANTED)) == 200
    assert status(lambda: rbac.create_namespaced_role_binding(ELSEWHERE, binding(ELSEWHERE, name))) == 403
    assert status(lambda: rbac.delete_namespaced_role_binding(foreign, ELSEWHERE)) == 403
    assert status(lambda: rbac.list_role_binding_for_all_namespaces(label_selector=MANAGED_BY_LABEL)) == 200
    assert admin.read_namespaced_role_binding(foreign, ELSEWHERE).metadata.name == foreign  # untouched
    # with a tag grant the namespaces are chosen at run time: RBAC cannot follow, writes are cluster-wide
    rbac = client.RbacAuthorizationV1Api(as_the_service(plane, SEED))
    assert status(lambda: rbac.create_namespaced_role_binding(ELSEWHERE, binding(ELSEWHERE, name))) == 200
    admin.delete_namespaced_role_binding(name, ELSEWHERE)
    admin.delete_namespaced_role_binding(foreign, ELSEWHERE)
