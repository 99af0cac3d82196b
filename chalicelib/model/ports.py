"""The ports: what the core needs from the outside world, as Protocols over plain data.

Adapters (``chalicelib/adapters``) implement them with boto3 and the kubernetes client; the
functional tests implement them in memory. The core and ``reconcile`` depend only on these.

- ``IamPort``: the IAM snapshot (stage 2); ``IdentityStorePort``: IAM Identity Center's groups.
- ``ConfigMapStore``, ``BindingStore``, ``ClusterRoleReader``: one cluster's objects.
- ``IdentityBackend``: where identities are mapped (aws-auth or EKS access entries).
- ``Shell``: the factory the service layer asks for all of the above, per cluster.
- ``Observer``: logs and metrics (Powertools in Lambda).
"""

from __future__ import annotations

from collections.abc import Collection, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from chalicelib.model.identities import IdentityStep

if TYPE_CHECKING:
    from chalicelib.config import Cluster, IdentityCenter, RoleToAssume
    from chalicelib.model.bindings import DesiredBinding
    from chalicelib.model.identities import CurrentMapping, Outcome, OwnedEntry
    from chalicelib.model.snapshot import IamSnapshot

Step = TypeVar("Step", bound="IdentityStep")


@dataclass(frozen=True)
class ObservedConfigMap:
    name: str
    namespace: str
    data: dict[str, str]
    annotations: dict[str, str]
    resource_version: str
    raw: Any = field(default=None, compare=False, repr=False)  # the adapter's object, to keep every other field
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObservedBinding:
    """A RoleBinding labelled as ours, as read (``namespace`` empty: a ClusterRoleBinding)."""

    namespace: str
    name: str
    cluster_role: str
    subjects: tuple[tuple[str, str], ...]  # (kind, name)
    source: str
    principal: str | None
    resource_version: str = ""
    principal_label: str | None = None  # PRINCIPAL_LABEL's value (bindings made before it have none)
    group_label: str | None = None  # GROUP_LABEL's value (bindings made before it have none)
    instance: str | None = None  # INSTANCE_LABEL's value (the default instance's, and older bindings, have none)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


class Observer(Protocol):
    def count(self, name: str, value: float = 1, **dimensions: str) -> None: ...
    def milliseconds(self, name: str, value: float) -> None: ...
    def percent(self, name: str, value: float, **dimensions: str) -> None: ...
    def info(self, message: str, **fields: Any) -> None: ...
    def warning(self, message: str, **fields: Any) -> None: ...
    def error(self, message: str, **fields: Any) -> None: ...
    def change(self, message: str, **fields: Any) -> None:
        """A record of a change the service made (the audit trail): never silenced by a log level."""
        ...


class IamPort(Protocol):
    def full_snapshot(self) -> IamSnapshot: ...
    def scoped_snapshot(self, user_names: Iterable[str] = (), role_names: Iterable[str] = ()) -> IamSnapshot: ...
    def members(self, group: str) -> list[str]:
        """The names of the group's users (none when the group does not exist)."""
        ...

    def missing(self, groups: Iterable[str], roles: Iterable[str]) -> list[str]:
        """Descriptions of the configured groups and roles that do not exist in IAM."""
        ...


class IdentityStorePort(Protocol):
    """One Identity Store (IAM Identity Center's users and groups), read only. Each method raises a
    SyncError when the store does not answer (throttled, denied, unreachable), never an empty answer."""

    def group_id(self, display_name: str) -> str | None:
        """GetGroupId by DisplayName; None when the store has no such group."""
        ...

    def member_ids(self, group_id: str) -> list[str]:
        """ListGroupMemberships, every page: the members' user ids."""
        ...

    def user_name(self, user_id: str) -> str | None:
        """DescribeUser's UserName (never its display name); None when the store has no such user."""
        ...

    def member_of(self, user_id: str, group_ids: Collection[str]) -> set[str]:
        """IsMemberInGroups: which of ``group_ids`` the user is a member of."""
        ...


class ConfigMapStore(Protocol):
    def read(self, namespace: str, name: str) -> ObservedConfigMap | None: ...
    def update(
        self,
        observed: ObservedConfigMap,
        data: Mapping[str, str],
        annotations: Mapping[str, str],
        dry_run: bool = False,
    ) -> ObservedConfigMap:
        """Replaces data and merges annotations, conditional on observed.resource_version (else
        WriteConflict); ``dry_run`` asks the server to check the write (conflict, size) without making it."""
        ...

    def create(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ObservedConfigMap:
        """Creates; WriteConflict when it already exists."""
        ...

    def put(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> None:
        """Writes an object only this service writes (a backup slot), unconditionally; ``fresh`` says
        it most likely does not exist yet (one request instead of two then)."""
        ...

    def delete(self, observed: ObservedConfigMap) -> None:
        """Deletes, conditional on observed.resource_version (else WriteConflict); gone already is done.
        Only ``uninstall`` (the operator's CLI) deletes: the service's own RBAC grants no delete."""
        ...


class BindingStore(Protocol):
    def namespaces(self, selector: str | None = None) -> dict[str, dict[str, str]]:
        """Every namespace and its labels; with ``selector`` (a Kubernetes label selector) only those it selects."""
        ...

    def list_owned(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        """The owned RoleBindings; with ``principals`` (PRINCIPAL_LABEL values) only theirs."""
        ...

    def list_owned_of_groups(self, groups: Collection[str]) -> list[ObservedBinding]:
        """The owned RoleBindings labelled with one of ``groups`` (GROUP_LABEL values)."""
        ...

    def list_owned_cluster(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        """The owned ClusterRoleBindings (``namespace`` empty); with ``principals`` (PRINCIPAL_LABEL
        values) only theirs. Forbidden where the service's RBAC grants no ClusterRoleBindings."""
        ...

    def create(self, binding: DesiredBinding) -> None:
        """A RoleBinding, or a ClusterRoleBinding when ``binding.namespace`` is empty (so update and delete)."""
        ...

    def update(self, binding: DesiredBinding, current: ObservedBinding) -> None: ...
    def delete(self, current: ObservedBinding) -> None: ...


class ClusterRoleReader(Protocol):
    def rules(self, name: str) -> list[str]:
        """The ClusterRole's rules, one line each ("pods: get, list"); NotFound when it does not exist."""
        ...


@dataclass(frozen=True)
class ObservedAccessEntry:
    """An EKS access entry, as DescribeAccessEntry reports it."""

    principal_arn: str  # with its path
    username: str
    kubernetes_groups: tuple[str, ...] = ()
    type: str = "STANDARD"
    tags: Mapping[str, str] = field(default_factory=dict)
    entry_arn: str = ""

    @property
    def key(self) -> str:
        return self.principal_arn.lower()


class AccessEntryStore(Protocol):
    """One cluster's EKS access entries (the EKS API)."""

    def list_principals(self) -> list[str]:
        """Every entry's principal ARN (all pages)."""
        ...

    def describe(self, principal_arn: str) -> ObservedAccessEntry | None: ...
    def create(self, principal_arn: str, username: str, groups: tuple[str, ...], tags: Mapping[str, str]) -> None:
        """A STANDARD entry; WriteConflict when the principal has one already."""
        ...

    def update(self, principal_arn: str, username: str, groups: tuple[str, ...]) -> None: ...
    def tag(self, entry_arn: str, tags: Mapping[str, str]) -> None: ...
    def delete(self, principal_arn: str) -> None: ...
    def associated_policies(self, principal_arn: str) -> list[AssociatedPolicy]:
        """The entry's access-policy associations (all pages); never asked of a non-STANDARD entry."""
        ...

    def associate(self, principal_arn: str, policy_arn: str, namespaces: tuple[str, ...]) -> None:
        """Associates the policy with this scope (``namespaces`` empty: cluster scope); associating a policy
        again replaces its scope in the one call."""
        ...

    def disassociate(self, principal_arn: str, policy_arn: str) -> None: ...


@dataclass(frozen=True)
class ClusterPorts:
    """Everything the service reaches in one cluster."""

    name: str
    config_maps: ConfigMapStore
    bindings: BindingStore
    cluster_roles: ClusterRoleReader
    authentication_mode: str | None = None  # CONFIG_MAP | API_AND_CONFIG_MAP | API; None: not described
    access_entries: AccessEntryStore | None = None  # None: the EKS API is not reachable for this cluster
    # Whom the cluster sees as the service when that is not the shell's own identity (the canonical ARN
    # of the role assumed for a cluster in another account): protected there like own_arn. None: own_arn.
    caller_arn: str | None = None
    # Read only by the access report: every RBAC object, and the access entries' policies.
    rbac: RbacReader | None = None
    access_policies: AccessPolicyReader | None = None


class Shell(Protocol):
    """Builds the ports for a run. Each call may raise a SyncError, which fails only what asked."""

    def iam(self, role: RoleToAssume | None) -> IamPort:
        """IAM in the caller's own account, or (``role``, the configuration's ``iam``) as that role."""
        ...

    def own_arn(self) -> str:
        """The canonical ARN of whoever runs the service: its mapping must never be changed."""
        ...

    def cluster(self, cluster: Cluster) -> ClusterPorts: ...

    def identity_store(self, settings: IdentityCenter) -> IdentityStorePort:
        """The Identity Store of ``identityCenter``, in its region, as its ``roleArn`` when given."""
        ...


class IdentityBackend(Protocol[Step]):
    """Where IAM identities are mapped to Kubernetes users and groups in one cluster: aws-auth
    (``configMap``) or EKS access entries (``accessEntries``)."""

    @property
    def name(self) -> str: ...

    def plan(self, desired: Iterable[OwnedEntry], scope: Container[str] | None = None) -> Step:
        """Reads the current mapping and computes the step to the desired one. Never writes."""
        ...

    def apply(self, step: Step, reason: str) -> Outcome:
        """Carries a step out (re-reading and re-planning after a write conflict)."""
        ...

    def members_of(self, groups: Iterable[str]) -> set[str]:
        """Names of the users mapped because of these IAM groups (once the groups are gone)."""
        ...

    def mapping_of(self, principal: OwnedEntry) -> CurrentMapping | None:
        """How this cluster maps the principal now through this backend, whoever wrote it; None when
        it does not map it at all. Reads; never writes."""
        ...


# --------------------------------------------------------------------------------------------------
# Read-only ports of the access report: every RBAC object of a cluster, and EKS access policies.


@dataclass(frozen=True)
class RbacRule:
    """One PolicyRule of a Role or ClusterRole, as the API server keeps it."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class RbacRole:
    """A ClusterRole (``namespace`` empty) or a Role."""

    name: str
    rules: tuple[RbacRule, ...]
    namespace: str = ""


@dataclass(frozen=True)
class RbacBinding:
    """A RoleBinding (``namespace`` set) or a ClusterRoleBinding (``namespace`` empty), whoever made it."""

    name: str
    role_kind: str  # ClusterRole | Role
    role_name: str
    subjects: tuple[tuple[str, str], ...]  # (kind, name): User, Group, ServiceAccount
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RbacSnapshot:
    """Every RoleBinding, ClusterRoleBinding, Role and ClusterRole of a cluster, with the
    resourceVersion of each list (what the report's provenance names)."""

    role_bindings: tuple[RbacBinding, ...]
    cluster_role_bindings: tuple[RbacBinding, ...]
    roles: tuple[RbacRole, ...]
    cluster_roles: tuple[RbacRole, ...]
    resource_versions: Mapping[str, str] = field(default_factory=dict)  # list kind -> its resourceVersion


class RbacReader(Protocol):
    """Reads every RBAC object of one cluster (list on rolebindings, clusterrolebindings, roles and
    clusterroles, cluster-wide). Never writes."""

    def snapshot(self) -> RbacSnapshot: ...
    def custom_resources(self) -> list[str]:
        """The names of the cluster's CustomResourceDefinitions (``explain``: what an Edit policy misses)."""
        ...


@dataclass(frozen=True)
class AssociatedPolicy:
    """An EKS access policy associated with an access entry (ListAssociatedAccessPolicies)."""

    policy_arn: str
    scope: str  # cluster | namespace
    namespaces: tuple[str, ...] = ()  # a trailing * is a prefix wildcard


class AccessPolicyReader(Protocol):
    def associated_policies(self, principal_arn: str) -> list[AssociatedPolicy]:
        """Every access policy associated with the principal's access entry (all pages). Never writes."""
        ...

    def offered_policies(self) -> list[str]:
        """The names of the access policies EKS offers (ListAccessPolicies, all pages; ``validate --live``)."""
        ...


@dataclass(frozen=True)
class LastUsed:
    """When a principal last used AWS, as IAM records it (role last used; a user's console password
    or access keys): the latest, or None when IAM has no record."""

    at: str | None  # ISO 8601, UTC
    how: str = ""  # "role", "console", "access key AKIA…"


class IamActivityReader(Protocol):
    def last_used(self, arn: str) -> LastUsed:
        """IAM's last-used record of a user or role (read only; NotFound when it does not exist)."""
        ...


@runtime_checkable
class ActivityShell(Protocol):
    """A Shell that can also read IAM's last-used records (the access report's ``--last-used``)."""

    def iam_activity(self, role: RoleToAssume | None) -> IamActivityReader: ...
