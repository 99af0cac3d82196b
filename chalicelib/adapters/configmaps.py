"""The ConfigMapStore port with the kubernetes client: read with resourceVersion, update in place
with it, create only when absent, delete (uninstall's backups) with it. The only module that touches ConfigMaps."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from chalicelib.adapters.kube import call
from chalicelib.errors import NotFound, WriteConflict
from chalicelib.model.ports import ObservedConfigMap


class ConfigMaps:
    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)

    def read(self, namespace: str, name: str) -> ObservedConfigMap | None:
        try:
            found = call(
                f"read configmap {namespace}/{name}", lambda: self._core.read_namespaced_config_map(name, namespace)
            )
        except NotFound:
            return None
        return _observed(found)

    def update(
        self,
        observed: ObservedConfigMap,
        data: Mapping[str, str],
        annotations: Mapping[str, str],
        dry_run: bool = False,
    ) -> ObservedConfigMap:
        """PUT with the read resourceVersion: a concurrent change makes this raise WriteConflict."""
        body = copy.deepcopy(observed.raw)
        body.data = dict(data)
        body.metadata.annotations = {**(body.metadata.annotations or {}), **annotations}
        body.metadata.resource_version = observed.resource_version
        written = call(
            f"update configmap {observed.namespace}/{observed.name}",
            lambda: self._core.replace_namespaced_config_map(
                observed.name, observed.namespace, body, **({"dry_run": "All"} if dry_run else {})
            ),
        )
        return _observed(written)

    def create(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ObservedConfigMap:
        """Creates; if it already exists (someone else won the race), raises WriteConflict."""
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name=name, namespace=namespace, annotations=dict(annotations or {}), labels=dict(labels or {})
            ),
            data=dict(data),
        )
        written = call(
            f"create configmap {namespace}/{name}", lambda: self._core.create_namespaced_config_map(namespace, body)
        )
        return _observed(written)

    def put(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> None:
        """Writes an object only this service writes (a backup slot) without reading it first:
        an unconditional replace (no resourceVersion), or a create when it does not exist yet."""
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=dict(labels or {})), data=dict(data)
        )
        what = f"write configmap {namespace}/{name}"
        if fresh:
            try:
                call(what, lambda: self._core.create_namespaced_config_map(namespace, body))
            except WriteConflict:
                call(what, lambda: self._core.replace_namespaced_config_map(name, namespace, body))
            return
        try:
            call(what, lambda: self._core.replace_namespaced_config_map(name, namespace, body))
        except NotFound:
            call(what, lambda: self._core.create_namespaced_config_map(namespace, body))

    def delete(self, observed: ObservedConfigMap) -> None:
        """DELETE with the read resourceVersion as a precondition: a changed object is a WriteConflict."""
        options = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version=observed.resource_version)
        )
        try:
            call(
                f"delete configmap {observed.namespace}/{observed.name}",
                lambda: self._core.delete_namespaced_config_map(observed.name, observed.namespace, body=options),
            )
        except NotFound:
            return


def _observed(found: Any) -> ObservedConfigMap:
    return ObservedConfigMap(
        name=found.metadata.name,
        namespace=found.metadata.namespace,
        data=dict(found.data or {}),
        annotations=dict(found.metadata.annotations or {}),
        resource_version=str(found.metadata.resource_version),
        raw=found,
        labels=dict(found.metadata.labels or {}),
    )
