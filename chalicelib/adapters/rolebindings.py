"""The BindingStore and ClusterRoleReader ports with the kubernetes client. Only labelled bindings
are listed, so nothing unlabelled is ever read for changing, let alone changed. A binding without a
namespace is a ClusterRoleBinding: ``clusterrolebindings`` reads and writes those."""

from __future__ import annotations

from collections.abc import Collection

from kubernetes import client

from chalicelib.adapters.clusterrolebindings import (
    RBAC_GROUP,
    ClusterRoleBindings,
    metadata,
    observed,
    owned_selector,
)
from chalicelib.adapters.kube import call
from chalicelib.model.bindings import DesiredBinding
from chalicelib.model.ownership import GROUP_LABEL, MANAGED_BY_SELECTOR
from chalicelib.model.ports import ObservedBinding


class RoleBindings:
    def __init__(self, api: client.ApiClient) -> None:
        self._rbac = client.RbacAuthorizationV1Api(api)
        self._core = client.CoreV1Api(api)
        self._cluster = ClusterRoleBindings(api)

    def list_owned(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        selector = owned_selector(principals)
        if selector is None:
            return []
        found = call(
            "list owned rolebindings",
            lambda: self._rbac.list_role_binding_for_all_namespaces(label_selector=selector),
        )
        return [observed(item) for item in found.items]

    def list_owned_of_groups(self, groups: Collection[str]) -> list[ObservedBinding]:
        if not groups:
            return []
        selector = f"{MANAGED_BY_SELECTOR},{GROUP_LABEL} in ({','.join(sorted(groups))})"
        found = call(
            "list owned rolebindings of groups",
            lambda: self._rbac.list_role_binding_for_all_namespaces(label_selector=selector),
        )
        return [observed(item) for item in found.items]

    def list_owned_cluster(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        return self._cluster.list_owned(principals)

    def namespaces(self, selector: str | None = None) -> dict[str, dict[str, str]]:
        filters = {"label_selector": selector} if selector else {}
        found = call("list namespaces", lambda: self._core.list_namespace(**filters))
        return {ns.metadata.name: dict(ns.metadata.labels or {}) for ns in found.items}

    def create(self, binding: DesiredBinding) -> None:
        if binding.cluster_wide:
            self._cluster.create(binding)
            return
        call(
            f"create rolebinding {binding.namespace}/{binding.name}",
            lambda: self._rbac.create_namespaced_role_binding(binding.namespace, _body(binding)),
        )

    def update(self, binding: DesiredBinding, current: ObservedBinding) -> None:
        if binding.cluster_wide:
            self._cluster.update(binding, current)
            return
        body = _body(binding)
        body.metadata.resource_version = current.resource_version
        call(
            f"update rolebinding {binding.namespace}/{binding.name}",
            lambda: self._rbac.replace_namespaced_role_binding(binding.name, binding.namespace, body),
        )

    def delete(self, current: ObservedBinding) -> None:
        if not current.namespace:
            self._cluster.delete(current)
            return
        precondition = client.V1Preconditions(resource_version=current.resource_version)
        options = client.V1DeleteOptions(preconditions=precondition)
        call(
            f"delete rolebinding {current.namespace}/{current.name}",
            lambda: self._rbac.delete_namespaced_role_binding(current.name, current.namespace, body=options),
        )


def _body(binding: DesiredBinding) -> client.V1RoleBinding:
    return client.V1RoleBinding(
        metadata=metadata(binding),
        role_ref=client.V1RoleRef(api_group=RBAC_GROUP, kind="ClusterRole", name=binding.cluster_role),
        subjects=[client.RbacV1Subject(api_group=RBAC_GROUP, kind=binding.subject_kind, name=binding.subject_name)],
    )


class ClusterRoles:
    def __init__(self, api: client.ApiClient) -> None:
        self._rbac = client.RbacAuthorizationV1Api(api)

    def rules(self, name: str) -> list[str]:
        found = call(f"read clusterrole {name}", lambda: self._rbac.read_cluster_role(name))
        return [
            f"{', '.join(r.resources or r.non_resource_ur_ls or [])}: {', '.join(r.verbs)}"
            + (f" (only {', '.join(r.resource_names)})" if r.resource_names else "")
            for r in found.rules or []
        ]
