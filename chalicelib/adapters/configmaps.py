"""ConfigMaps through the kubernetes client: read with resourceVersion, update in place with it,
create only when absent. The only module that touches ConfigMaps; errors become the service's own."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from chalicelib.errors import PermanentError, TransientError, WriteConflict

T = TypeVar("T")


@dataclass(frozen=True)
class ObservedConfigMap:
    name: str
    namespace: str
    data: dict[str, str]
    annotations: dict[str, str]
    resource_version: str
    raw: Any = field(compare=False, repr=False)  # the V1ConfigMap as read, to keep every other field


def call(what: str, request: Callable[[], T]) -> T:
    """Runs one API request, translating failures: 409 -> WriteConflict, 429/5xx/network -> TransientError."""
    try:
        return request()
    except ApiException as err:
        status = int(err.status or 0)
        if status == 409:
            raise WriteConflict(f"{what}: conflict ({err.reason})") from err
        if status in (0, 429) or status >= 500:
            raise TransientError(f"{what}: HTTP {status} {err.reason}") from err
        raise PermanentError(f"{what}: HTTP {status} {err.reason}: {_message(err)}", status) from err
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise TransientError(f"{what}: cluster unreachable: {err}") from err


def _message(err: ApiException) -> str:
    try:
        return str(json.loads(err.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(err.body)[:300]


class ConfigMaps:
    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)

    def read(self, namespace: str, name: str) -> ObservedConfigMap | None:
        def request() -> Any:
            try:
                return self._core.read_namespaced_config_map(name, namespace)
            except ApiException as err:
                if err.status == 404:
                    return None
                raise

        found = call(f"read configmap {namespace}/{name}", request)
        if found is None:
            return None
        return ObservedConfigMap(
            name=name,
            namespace=namespace,
            data=dict(found.data or {}),
            annotations=dict(found.metadata.annotations or {}),
            resource_version=str(found.metadata.resource_version),
            raw=found,
        )

    def update(
        self, observed: ObservedConfigMap, data: Mapping[str, str], annotations: Mapping[str, str]
    ) -> ObservedConfigMap:
        """PUT with the read resourceVersion: a concurrent change makes this raise WriteConflict."""
        body = observed.raw
        body.data = dict(data)
        body.metadata.annotations = {**(body.metadata.annotations or {}), **annotations}
        body.metadata.resource_version = observed.resource_version
        written = call(
            f"update configmap {observed.namespace}/{observed.name}",
            lambda: self._core.replace_namespaced_config_map(observed.name, observed.namespace, body),
        )
        return self._observed(written)

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
        return self._observed(written)

    def put(self, namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str] | None = None) -> None:
        """Writes an object only this service writes (a backup slot) without reading it first:
        an unconditional replace (no resourceVersion), or a create when it does not exist yet."""
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=dict(labels or {})), data=dict(data)
        )

        def request() -> Any:
            try:
                return self._core.replace_namespaced_config_map(name, namespace, body)
            except ApiException as err:
                if err.status != 404:
                    raise
                return self._core.create_namespaced_config_map(namespace, body)

        call(f"write configmap {namespace}/{name}", request)

    @staticmethod
    def _observed(found: Any) -> ObservedConfigMap:
        return ObservedConfigMap(
            name=found.metadata.name,
            namespace=found.metadata.namespace,
            data=dict(found.data or {}),
            annotations=dict(found.metadata.annotations or {}),
            resource_version=str(found.metadata.resource_version),
            raw=found,
        )
