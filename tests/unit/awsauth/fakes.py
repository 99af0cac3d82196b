"""An in-memory ConfigMap store with the semantics the writer relies on: resourceVersions, 409s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.errors import WriteConflict
from chalicelib.model.ports import ObservedConfigMap


@dataclass
class FakeConfigMaps:
    objects: dict[tuple[str, str], ObservedConfigMap] = field(default_factory=dict)
    version: int = 0
    writes: list[str] = field(default_factory=list)
    reads: int = 0
    interfere: list[dict[str, str]] = field(default_factory=list)  # data a "foreign writer" sets before our next update

    def _store(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        annotations: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
    ) -> ObservedConfigMap:
        self.version += 1
        observed = ObservedConfigMap(
            name, namespace, dict(data), dict(annotations), str(self.version), raw=None, labels=dict(labels or {})
        )
        self.objects[(namespace, name)] = observed
        return observed

    def read(self, namespace: str, name: str) -> ObservedConfigMap | None:
        self.reads += 1
        return self.objects.get((namespace, name))

    def update(
        self,
        observed: ObservedConfigMap,
        data: Mapping[str, str],
        annotations: Mapping[str, str],
        dry_run: bool = False,
    ) -> ObservedConfigMap:
        key = (observed.namespace, observed.name)
        if self.interfere:
            current = self.objects[key]
            self._store(*key, {**current.data, **self.interfere.pop(0)}, current.annotations, current.labels)
        if self.objects[key].resource_version != observed.resource_version:
            raise WriteConflict("conflict")
        if dry_run:
            return self.objects[key]
        self.writes.append(f"update {observed.name}")
        return self._store(*key, data, {**self.objects[key].annotations, **annotations}, self.objects[key].labels)

    def create(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ObservedConfigMap:
        if (namespace, name) in self.objects:
            raise WriteConflict("already exists")
        self.writes.append(f"create {name}")
        return self._store(namespace, name, data, annotations or {}, labels)

    def put(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> None:
        self.writes.append(f"put {name}")
        self._store(namespace, name, data, {}, labels)

    def delete(self, observed: ObservedConfigMap) -> None:
        key = (observed.namespace, observed.name)
        if key not in self.objects:
            return
        if self.objects[key].resource_version != observed.resource_version:
            raise WriteConflict("conflict")
        self.writes.append(f"delete {observed.name}")
        del self.objects[key]
