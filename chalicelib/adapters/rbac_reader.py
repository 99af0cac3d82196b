"""The RbacReader port with the kubernetes client: every RoleBinding, ClusterRoleBinding, Role and
ClusterRole of a cluster, for the access report only. Four list requests, each read whole; nothing
here writes."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from chalicelib.adapters.kube import call
from chalicelib.model.ports import RbacBinding, RbacRole, RbacRule, RbacSnapshot


class RbacReader:
    def __init__(self, api: client.ApiClient) -> None:
        self._rbac = client.RbacAuthorizationV1Api(api)
        self._extensions = client.ApiextensionsV1Api(api)

    def custom_resources(self) -> list[str]:
        found = call("list customresourcedefinitions", self._extensions.list_custom_resource_definition)
        return sorted(item.metadata.name for item in found.items)

    def snapshot(self) -> RbacSnapshot:
        role_bindings = call("list rolebindings", self._rbac.list_role_binding_for_all_namespaces)
        cluster_role_bindings = call("list clusterrolebindings", self._rbac.list_cluster_role_binding)
        roles = call("list roles", self._rbac.list_role_for_all_namespaces)
        cluster_roles = call("list clusterroles", self._rbac.list_cluster_role)
        lists = {
            "rolebindings": role_bindings,
            "clusterrolebindings": cluster_role_bindings,
            "roles": roles,
            "clusterroles": cluster_roles,
        }
        return RbacSnapshot(
            role_bindings=tuple(_binding(item) for item in role_bindings.items),
            cluster_role_bindings=tuple(_binding(item) for item in cluster_role_bindings.items),
            roles=tuple(_role(item) for item in roles.items),
            cluster_roles=tuple(_role(item) for item in cluster_roles.items),
            resource_versions={kind: str(found.metadata.resource_version or "") for kind, found in lists.items()},
        )


def _binding(item: Any) -> RbacBinding:
    return RbacBinding(
        name=item.metadata.name,
        role_kind=item.role_ref.kind,
        role_name=item.role_ref.name,
        subjects=tuple((s.kind, s.name) for s in item.subjects or []),
        namespace=item.metadata.namespace or "",
        labels=dict(item.metadata.labels or {}),
    )


def _role(item: Any) -> RbacRole:
    rules = tuple(
        RbacRule(
            verbs=tuple(r.verbs or ()),
            api_groups=tuple(r.api_groups or ()),
            resources=tuple(r.resources or ()),
            resource_names=tuple(r.resource_names or ()),
            non_resource_urls=tuple(r.non_resource_ur_ls or ()),
        )
        for r in item.rules or []
    )
    return RbacRole(name=item.metadata.name, rules=rules, namespace=item.metadata.namespace or "")
