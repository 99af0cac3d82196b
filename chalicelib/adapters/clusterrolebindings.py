"""ClusterRoleBindings with the kubernetes client: the service's own (an access policy's RBAC
equivalent at cluster scope on an aws-auth cluster), owned exactly as its RoleBindings are: listed
only by the managed-by label (and a principal's label), so nothing unlabelled is ever read for
changing; written with the same labels and annotations (``metadata``, shared with
``rolebindings``); replaced and deleted on the resourceVersion read. ``rolebindings.RoleBindings``
hands it every binding without a namespace."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from kubernetes import client

from chalicelib.adapters.kube import call
from chalicelib.model.bindings import DesiredBinding, binding_labels
from chalicelib.model.ownership import (
    EVENT_ID_ANNOTATION,
    GROUP_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY_SELECTOR,
    PRINCIPAL_ANNOTATION,
    PRINCIPAL_LABEL,
    SOURCE_ANNOTATION,
)
from chalicelib.model.ports import ObservedBinding

RBAC_GROUP = "rbac.authorization.k8s.io"


def owned_selector(principals: Collection[str] | None) -> str | None:
    """The label selector of the service's bindings (of ``principals`` only, when given); None when
    there is no principal to ask for."""
    if principals is None:
        return MANAGED_BY_SELECTOR
    if not principals:
        return None
    return f"{MANAGED_BY_SELECTOR},{PRINCIPAL_LABEL} in ({','.join(sorted(principals))})"


class ClusterRoleBindings:
    def __init__(self, api: client.ApiClient) -> None:
        self._rbac = client.RbacAuthorizationV1Api(api)

    def list_owned(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        selector = owned_selector(principals)
        if selector is None:
            return []
        found = call(
            "list owned clusterrolebindings",
            lambda: self._rbac.list_cluster_role_binding(label_selector=selector),
        )
        return [observed(item) for item in found.items]

    def create(self, binding: DesiredBinding) -> None:
        body = _body(binding)
        call(f"create clusterrolebinding {binding.name}", lambda: self._rbac.create_cluster_role_binding(body))

    def update(self, binding: DesiredBinding, current: ObservedBinding) -> None:
        body = _body(binding)
        body.metadata.resource_version = current.resource_version
        call(
            f"update clusterrolebinding {binding.name}",
            lambda: self._rbac.replace_cluster_role_binding(binding.name, body),
        )

    def delete(self, current: ObservedBinding) -> None:
        precondition = client.V1Preconditions(resource_version=current.resource_version)
        options = client.V1DeleteOptions(preconditions=precondition)
        call(
            f"delete clusterrolebinding {current.name}",
            lambda: self._rbac.delete_cluster_role_binding(current.name, body=options),
        )


def _body(binding: DesiredBinding) -> client.V1ClusterRoleBinding:
    return client.V1ClusterRoleBinding(
        metadata=metadata(binding),
        role_ref=client.V1RoleRef(api_group=RBAC_GROUP, kind="ClusterRole", name=binding.cluster_role),
        subjects=[client.RbacV1Subject(api_group=RBAC_GROUP, kind=binding.subject_kind, name=binding.subject_name)],
    )


def metadata(binding: DesiredBinding) -> client.V1ObjectMeta:
    """A RoleBinding's or ClusterRoleBinding's metadata: the ownership labels and why it exists."""
    annotations = {SOURCE_ANNOTATION: binding.source}
    if binding.principal:
        annotations[PRINCIPAL_ANNOTATION] = binding.principal
    if binding.event_id:
        annotations[EVENT_ID_ANNOTATION] = binding.event_id
    return client.V1ObjectMeta(
        name=binding.name,
        namespace=binding.namespace or None,
        labels=binding_labels(binding),
        annotations=annotations,
    )


def observed(item: Any) -> ObservedBinding:
    """A RoleBinding or ClusterRoleBinding as read (``namespace`` empty for the latter)."""
    annotations = item.metadata.annotations or {}
    labels = item.metadata.labels or {}
    role_ref = item.role_ref
    return ObservedBinding(
        namespace=item.metadata.namespace or "",
        name=item.metadata.name,
        cluster_role=role_ref.name if role_ref.kind == "ClusterRole" else f"{role_ref.kind}/{role_ref.name}",
        subjects=tuple((s.kind, s.name) for s in item.subjects or []),
        source=annotations.get(SOURCE_ANNOTATION, ""),
        principal=annotations.get(PRINCIPAL_ANNOTATION),
        resource_version=str(item.metadata.resource_version),
        principal_label=labels.get(PRINCIPAL_LABEL),
        group_label=labels.get(GROUP_LABEL),
        instance=labels.get(INSTANCE_LABEL),
    )
