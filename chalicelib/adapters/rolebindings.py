"""The BindingStore and ClusterRoleReader ports with the kubernetes client. Only labelled bindings
are listed, so nothing unlabelled is ever read for changing, let alone changed."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from kubernetes import client

from chalicelib.adapters.kube import call
from chalicelib.model.bindings import DesiredBinding, binding_labels
from chalicelib.model.ownership import (
    EVENT_ID_ANNOTATION,
    GROUP_LABEL,
    MANAGED_BY_SELECTOR,
    PRINCIPAL_ANNOTATION,
    PRINCIPAL_LABEL,
    SOURCE_ANNOTATION,
)
from chalicelib.model.ports import ObservedBinding

RBAC_GROUP = "rbac.authorization.k8s.io"


class RoleBindings:
    def __init__(self, api: client.ApiClient) -> None:
        self._rbac = client.RbacAuthorizationV1Api(api)
        self._core = client.CoreV1Api(api)

    def list_owned(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        selector = MANAGED_BY_SELECTOR
        if principals is not None:
            if not principals:
                return []
            selector += f",{PRINCIPAL_LABEL} in ({','.join(sorted(principals))})"
        found = call(
            "list owned rolebindings",
            lambda: self._rbac.list_role_binding_for_all_namespaces(label_selector=selector),
        )
        return [_observed(item) for item in found.items]

    def list_owned_of_groups(self, groups: Collection[str]) -> list[ObservedBinding]:
        if not groups:
            return []
        selector = f"{MANAGED_BY_SELECTOR},{GROUP_LABEL} in ({','.join(sorted(groups))})"
        found = call(
            "list owned rolebindings of groups",
            lambda: self._rbac.list_role_binding_for_all_namespaces(label_selector=selector),
        )
        return [_observed(item) for item in found.items]

    def namespaces(self, selector: str | None = None) -> dict[str, dict[str, str]]:
        filters = {"label_selector": selector} if selector else {}
        found = call("list namespaces", lambda: self._core.list_namespace(**filters))
        return {ns.metadata.name: dict(ns.metadata.labels or {}) for ns in found.items}

    def create(self, binding: DesiredBinding) -> None:
        call(
            f"create rolebinding {binding.namespace}/{binding.name}",
            lambda: self._rbac.create_namespaced_role_binding(binding.namespace, _body(binding)),
        )

    def update(self, binding: DesiredBinding, current: ObservedBinding) -> None:
        body = _body(binding)
        body.metadata.resource_version = current.resource_version
        call(
            f"update rolebinding {binding.namespace}/{binding.name}",
            lambda: self._rbac.replace_namespaced_role_binding(binding.name, binding.namespace, body),
        )

    def delete(self, current: ObservedBinding) -> None:
        precondition = client.V1Preconditions(resource_version=current.resource_version)
        options = client.V1DeleteOptions(preconditions=precondition)
        call(
            f"delete rolebinding {current.namespace}/{current.name}",
            lambda: self._rbac.delete_namespaced_role_binding(current.name, current.namespace, body=options),
        )


def _body(binding: DesiredBinding) -> client.V1RoleBinding:
    annotations = {SOURCE_ANNOTATION: binding.source}
    if binding.principal:
        annotations[PRINCIPAL_ANNOTATION] = binding.principal
    if binding.event_id:
        annotations[EVENT_ID_ANNOTATION] = binding.event_id
    return client.V1RoleBinding(
        metadata=client.V1ObjectMeta(
            name=binding.name,
            namespace=binding.namespace,
            labels=binding_labels(binding),
            annotations=annotations,
        ),
        role_ref=client.V1RoleRef(api_group=RBAC_GROUP, kind="ClusterRole", name=binding.cluster_role),
        subjects=[client.RbacV1Subject(api_group=RBAC_GROUP, kind=binding.subject_kind, name=binding.subject_name)],
    )


def _observed(item: Any) -> ObservedBinding:
    annotations = item.metadata.annotations or {}
    role_ref = item.role_ref
    return ObservedBinding(
        namespace=item.metadata.namespace,
        name=item.metadata.name,
        cluster_role=role_ref.name if role_ref.kind == "ClusterRole" else f"{role_ref.kind}/{role_ref.name}",
        subjects=tuple((s.kind, s.name) for s in item.subjects or []),
        source=annotations.get(SOURCE_ANNOTATION, ""),
        principal=annotations.get(PRINCIPAL_ANNOTATION),
        resource_version=str(item.metadata.resource_version),
        principal_label=(item.metadata.labels or {}).get(PRINCIPAL_LABEL),
        group_label=(item.metadata.labels or {}).get(GROUP_LABEL),
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
