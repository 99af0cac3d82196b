"""One cluster's ports for the report: every read made once (the display-only reconcile and the
report's own reads then see one consistent picture, at half the requests), and every write refused
before it reaches the store. The report also computes with the display-only applier, which holds no
store at all; this is the second wall: a write attempted anyway fails loudly instead of happening."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from chalicelib.errors import PermanentError
from chalicelib.model.bindings import kind_of
from chalicelib.model.ports import (
    AccessEntryStore,
    AccessPolicyReader,
    AssociatedPolicy,
    BindingStore,
    ClusterPorts,
    ClusterRoleReader,
    ConfigMapStore,
    ObservedAccessEntry,
    ObservedBinding,
    ObservedConfigMap,
    RbacReader,
)

if TYPE_CHECKING:
    from chalicelib.model.bindings import DesiredBinding


class WriteRefused(PermanentError):
    """A write was attempted through the report's ports."""


def _refuse(what: str) -> WriteRefused:
    return WriteRefused(f"the access report is read-only: {what} refused")


@dataclass
class ReadOnlyConfigMaps:
    store: ConfigMapStore
    cache: dict[tuple[str, str], ObservedConfigMap | None] = field(default_factory=dict)

    def read(self, namespace: str, name: str) -> ObservedConfigMap | None:
        if (namespace, name) not in self.cache:
            self.cache[(namespace, name)] = self.store.read(namespace, name)
        return self.cache[(namespace, name)]

    def update(
        self,
        observed: ObservedConfigMap,
        data: Mapping[str, str],
        annotations: Mapping[str, str],
        dry_run: bool = False,
    ) -> ObservedConfigMap:
        raise _refuse(f"update of ConfigMap {observed.namespace}/{observed.name}")

    def create(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ObservedConfigMap:
        raise _refuse(f"create of ConfigMap {namespace}/{name}")

    def put(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> None:
        raise _refuse(f"write of ConfigMap {namespace}/{name}")

    def delete(self, observed: ObservedConfigMap) -> None:
        raise _refuse(f"delete of ConfigMap {observed.namespace}/{observed.name}")


@dataclass
class ReadOnlyBindings:
    store: BindingStore
    listed_namespaces: dict[str, dict[str, str]] | None = None
    owned: list[ObservedBinding] | None = None
    owned_cluster: list[ObservedBinding] | None = None

    def namespaces(self, selector: str | None = None) -> dict[str, dict[str, str]]:
        if selector:
            return self.store.namespaces(selector)
        if self.listed_namespaces is None:
            self.listed_namespaces = self.store.namespaces()
        return {name: dict(labels) for name, labels in self.listed_namespaces.items()}

    def list_owned(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        if self.owned is None:
            self.owned = self.store.list_owned()  # the report always reads them all
        return [b for b in self.owned if principals is None or b.principal_label in principals]

    def list_owned_of_groups(self, groups: Collection[str]) -> list[ObservedBinding]:
        return [b for b in self.list_owned() if b.group_label in groups]

    def list_owned_cluster(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        if self.owned_cluster is None:
            self.owned_cluster = self.store.list_owned_cluster()
        return [b for b in self.owned_cluster if principals is None or b.principal_label in principals]

    def create(self, binding: DesiredBinding) -> None:
        raise _refuse(f"create of {binding.kind} {_named(binding.namespace, binding.name)}")

    def update(self, binding: DesiredBinding, current: ObservedBinding) -> None:
        raise _refuse(f"update of {binding.kind} {_named(binding.namespace, binding.name)}")

    def delete(self, current: ObservedBinding) -> None:
        raise _refuse(f"delete of {kind_of(current.namespace)} {_named(current.namespace, current.name)}")


def _named(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


@dataclass
class ReadOnlyClusterRoles:
    store: ClusterRoleReader
    cache: dict[str, list[str] | PermanentError] = field(default_factory=dict)

    def rules(self, name: str) -> list[str]:
        if name not in self.cache:
            try:
                self.cache[name] = self.store.rules(name)
            except PermanentError as err:  # NotFound, Forbidden: the same answer every time
                self.cache[name] = err
        found = self.cache[name]
        if isinstance(found, PermanentError):
            raise found
        return list(found)


@dataclass
class ReadOnlyAccessEntries:
    store: AccessEntryStore
    principals: list[str] | None = None
    described: dict[str, ObservedAccessEntry | None] = field(default_factory=dict)  # by lower-case ARN

    def list_principals(self) -> list[str]:
        if self.principals is None:
            self.principals = self.store.list_principals()
        return list(self.principals)

    def describe(self, principal_arn: str) -> ObservedAccessEntry | None:
        key = principal_arn.lower()
        if key not in self.described:
            self.described[key] = self.store.describe(principal_arn)
        return self.described[key]

    def all(self) -> tuple[ObservedAccessEntry, ...]:
        """Every entry of the cluster, described."""
        return tuple(e for arn in self.list_principals() if (e := self.describe(arn)) is not None)

    def create(self, principal_arn: str, username: str, groups: tuple[str, ...], tags: Mapping[str, str]) -> None:
        raise _refuse(f"create of the access entry of {principal_arn}")

    def update(self, principal_arn: str, username: str, groups: tuple[str, ...]) -> None:
        raise _refuse(f"update of the access entry of {principal_arn}")

    def tag(self, entry_arn: str, tags: Mapping[str, str]) -> None:
        raise _refuse(f"tagging of {entry_arn}")

    def delete(self, principal_arn: str) -> None:
        raise _refuse(f"delete of the access entry of {principal_arn}")

    def associated_policies(self, principal_arn: str) -> list[AssociatedPolicy]:
        return self.store.associated_policies(principal_arn)

    def associate(self, principal_arn: str, policy_arn: str, namespaces: tuple[str, ...]) -> None:
        raise _refuse(f"association of {policy_arn} with the access entry of {principal_arn}")

    def disassociate(self, principal_arn: str, policy_arn: str) -> None:
        raise _refuse(f"disassociation of {policy_arn} from the access entry of {principal_arn}")


@dataclass
class ReadOnlyAccessPolicies:
    """Only the read of the access policies: the adapter behind it (the access entries') also writes."""

    store: AccessPolicyReader

    def associated_policies(self, principal_arn: str) -> list[AssociatedPolicy]:
        return self.store.associated_policies(principal_arn)

    def offered_policies(self) -> list[str]:
        return self.store.offered_policies()


@dataclass(frozen=True)
class ReadOnlyCluster:
    """A cluster's ports, read-only; ``ports`` is what the reconcile gets."""

    config_maps: ReadOnlyConfigMaps
    bindings: ReadOnlyBindings
    cluster_roles: ReadOnlyClusterRoles
    access_entries: ReadOnlyAccessEntries | None
    ports: ClusterPorts
    rbac: RbacReader | None = None  # has no write to refuse
    access_policies: ReadOnlyAccessPolicies | None = None


def read_only(ports: ClusterPorts) -> ReadOnlyCluster:
    config_maps = ReadOnlyConfigMaps(ports.config_maps)
    bindings = ReadOnlyBindings(ports.bindings)
    cluster_roles = ReadOnlyClusterRoles(ports.cluster_roles)
    entries = ReadOnlyAccessEntries(ports.access_entries) if ports.access_entries is not None else None
    policies = ReadOnlyAccessPolicies(ports.access_policies) if ports.access_policies is not None else None
    # The reconcile gets no RBAC reader and no policy reader: it has no use for them.
    wrapped = replace(
        ports,
        config_maps=config_maps,
        bindings=bindings,
        cluster_roles=cluster_roles,
        access_entries=entries,
        rbac=None,
        access_policies=None,
    )
    return ReadOnlyCluster(config_maps, bindings, cluster_roles, entries, wrapped, ports.rbac, policies)


if TYPE_CHECKING:

    def _conforms(cluster: ReadOnlyCluster, entries: ReadOnlyAccessEntries) -> None:
        """Never called: mypy proves here that each wrapper implements its port."""
        ports: tuple[ConfigMapStore, BindingStore, ClusterRoleReader, AccessEntryStore] = (
            cluster.config_maps,
            cluster.bindings,
            cluster.cluster_roles,
            entries,
        )
        del ports
