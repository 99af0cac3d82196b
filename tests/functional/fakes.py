"""In-memory implementations of the ports (chalicelib/model/ports.py), and the seed world built from them.

Each fake keeps the semantics the service relies on from the real thing, not just its signatures:
resourceVersions and 409s on stale writes, 404 for a missing namespace or object, RoleBindings
owned exactly when labelled ``app.kubernetes.io/managed-by=eks-iam-sync``, case-insensitive IAM
names, a scoped IAM read that leaves out principals that do not exist.

Every fake counts its calls per operation (``calls``), logs its writes (``writes``), and answers a
fault on demand for a named operation, once or always, optionally only for one target
(``fake.fail("create", "forbidden", target="team-ns")``): ``not-found`` (404), ``forbidden``
(403), ``conflict`` (409), ``transient`` (5xx), ``timeout``, ``rejected`` (422), or any SyncError.

FakeIam, FakeConfigMapStore (the unit tests' FakeConfigMaps, extended), FakeBindings,
FakeClusterRoles, FakeAccessEntries, FakeCluster (one cluster's fakes -> ClusterPorts), FakeShell,
RecordingObserver; then the seed world the functional tests start from.

mypy checks each fake against its Protocol (see ``_conforms`` at the bottom): no ``type: ignore``.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import yaml

from chalicelib.config import DEFAULT_CONFIG_PATH, Cluster, IdentityCenter, RoleToAssume
from chalicelib.errors import Forbidden, NotFound, Rejected, SyncError, TransientError, WriteConflict
from chalicelib.model import arns
from chalicelib.model.bindings import DesiredBinding, binding_labels
from chalicelib.model.ownership import (
    AWS_AUTH_NAME,
    AWS_AUTH_NAMESPACE,
    EVENT_ID_ANNOTATION,
    GROUP_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    PRINCIPAL_ANNOTATION,
    PRINCIPAL_LABEL,
    SOURCE_ANNOTATION,
)
from chalicelib.model.ports import (
    AssociatedPolicy,
    ClusterPorts,
    LastUsed,
    ObservedAccessEntry,
    ObservedBinding,
    ObservedConfigMap,
    RbacBinding,
    RbacRole,
    RbacRule,
    RbacSnapshot,
)
from chalicelib.model.snapshot import IamRole, IamSnapshot, IamUser
from tests.unit.awsauth.fakes import FakeConfigMaps

if TYPE_CHECKING:
    from chalicelib.model.ports import (
        AccessEntryStore,
        BindingStore,
        ClusterRoleReader,
        ConfigMapStore,
        IamPort,
        IdentityStorePort,
        Observer,
        Shell,
    )

# --------------------------------------------------------------------------------------------------
# Faults

FaultKind = Literal["not-found", "forbidden", "conflict", "transient", "timeout", "rejected"]

_FAULTS: dict[FaultKind, tuple[type[SyncError], str]] = {
    "not-found": (NotFound, "404 Not Found"),
    "forbidden": (Forbidden, "403 Forbidden"),
    "conflict": (WriteConflict, "409 Conflict: the object has been modified"),
    "transient": (TransientError, "503 Service Unavailable"),
    "timeout": (TransientError, "read timed out"),
    "rejected": (Rejected, "422 Unprocessable Entity"),
}


@dataclass
class Fault:
    operation: str
    make: Callable[[str], SyncError]
    remaining: int | None  # None: every time
    target: str | None  # None: any call; else the call's target, or a prefix of it up to a "/"

    def matches(self, operation: str, target: str) -> bool:
        if operation != self.operation or self.remaining == 0:
            return False
        return self.target is None or target == self.target or target.startswith(f"{self.target}/")


def _maker(fault: FaultKind | SyncError) -> Callable[[str], SyncError]:
    if isinstance(fault, SyncError):
        # A new instance per raise: re-raising one instance would chain its old tracebacks.
        error_type, args = type(fault), fault.args
        return lambda target: error_type(*args)
    error_type, status = _FAULTS[fault]
    return lambda target: error_type(f"{status} ({target})" if target else status)


@dataclass
class FakePort:
    """What every fake shares: call counts, and faults answered on demand."""

    OPERATIONS: ClassVar[tuple[str, ...]] = ()

    calls: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    raised: list[str] = field(default_factory=list)  # "operation target: error", in order

    def fail(
        self,
        operation: str,
        fault: FaultKind | SyncError,
        *,
        always: bool = False,
        times: int = 1,
        target: str | None = None,
    ) -> None:
        """The next call(s) of ``operation`` (on ``target``) raise; checked against the port's operations."""
        if operation not in self.OPERATIONS:
            raise ValueError(f"{type(self).__name__} has no operation {operation!r}: one of {self.OPERATIONS}")
        self.faults.append(Fault(operation, _maker(fault), None if always else times, target))

    def _enter(self, operation: str, target: str = "") -> None:
        """Counts the call, then raises the first planned fault that matches it."""
        self.calls[operation] += 1
        for fault in self.faults:
            if fault.matches(operation, target):
                if fault.remaining is not None:
                    fault.remaining -= 1
                error = fault.make(target)
                self.raised.append(f"{operation} {target}".strip() + f": {error!r}")
                raise error


# --------------------------------------------------------------------------------------------------
# IAM

ACCOUNT = "123456789012"


def user_arn(name: str, path: str = "/", account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:user{path}{name}"


def role_arn(name: str, path: str = "/", account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:role{path}{name}"


@dataclass
class FakeIam(FakePort):
    """The IamPort: users (with paths, groups, tags, unique ids), roles (paths, tags, ids), groups.

    Names are unique case-insensitively, as in IAM; ``requests`` records each scoped read's names."""

    OPERATIONS: ClassVar[tuple[str, ...]] = ("full_snapshot", "scoped_snapshot", "members", "missing", "last_used")

    users: dict[str, IamUser] = field(default_factory=dict)  # by lower-case name
    roles: dict[str, IamRole] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)  # lower-case name -> name
    requests: list[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    account: str = ACCOUNT  # whose IAM this is (another for an identity account read through iam.roleArn)
    activity: dict[str, LastUsed] = field(default_factory=dict)  # lower-case ARN -> IAM's last-used record
    _ids: Iterator[int] = field(default_factory=itertools.count, repr=False, init=False)

    # The port

    def full_snapshot(self) -> IamSnapshot:
        self._enter("full_snapshot")
        return IamSnapshot(
            tuple(sorted(self.users.values(), key=lambda u: u.name.lower())),
            tuple(sorted(self.roles.values(), key=lambda r: r.name.lower())),
            frozenset(self.groups),
        )

    def scoped_snapshot(self, user_names: Iterable[str] = (), role_names: Iterable[str] = ()) -> IamSnapshot:
        users, roles = tuple(user_names), tuple(role_names)
        self.requests.append((users, roles))
        self._enter("scoped_snapshot", ",".join((*users, *roles)))
        found_users = [self.users[n.lower()] for n in sorted(set(users)) if n.lower() in self.users]
        found_roles = [self.roles[n.lower()] for n in sorted(set(roles)) if n.lower() in self.roles]
        return IamSnapshot(tuple(found_users), tuple(found_roles))

    def last_used(self, arn: str) -> LastUsed:
        """The IamActivityReader (the report's --last-used): no record unless ``activity`` has one."""
        self._enter("last_used", arn)
        return self.activity.get(arn.lower(), LastUsed(None, ""))

    def members(self, group: str) -> list[str]:
        self._enter("members", group)
        return sorted(u.name for u in self.users.values() if group.lower() in {g.lower() for g in u.groups})

    def missing(self, groups: Iterable[str], roles: Iterable[str]) -> list[str]:
        self._enter("missing")
        absent = [f"IAM group {g!r} does not exist" for g in groups if g.lower() not in self.groups]
        return absent + [f"IAM role {r!r} does not exist" for r in roles if r.lower() not in self.roles]

    # What happens in IAM (the test's hand on the console)

    def add_group(self, name: str) -> None:
        self.groups[name.lower()] = name

    def delete_group(self, name: str) -> None:
        """Gone, and with it every membership: IAM can no longer say who was in it."""
        self.groups.pop(name.lower(), None)
        for key, user in self.users.items():
            self.users[key] = replace(user, groups=tuple(g for g in user.groups if g.lower() != name.lower()))

    def add_user(
        self, name: str, *, groups: Iterable[str] = (), tags: Mapping[str, str] | None = None, path: str = "/"
    ) -> IamUser:
        user = IamUser(name, user_arn(name, path, self.account), (), dict(tags or {}), f"AIDA{next(self._ids):016d}")
        self.users[name.lower()] = user
        for group in groups:
            self.add_to_group(name, group)
        return self.users[name.lower()]

    def delete_user(self, name: str) -> None:
        del self.users[name.lower()]

    def add_to_group(self, user: str, group: str) -> None:
        self.groups.setdefault(group.lower(), group)
        current = self.users[user.lower()]
        self.users[user.lower()] = replace(current, groups=tuple(sorted({*current.groups, self.groups[group.lower()]})))

    def remove_from_group(self, user: str, group: str) -> None:
        current = self.users[user.lower()]
        kept = tuple(g for g in current.groups if g.lower() != group.lower())
        self.users[user.lower()] = replace(current, groups=kept)

    def tag_user(self, user: str, tags: Mapping[str, str]) -> None:
        current = self.users[user.lower()]
        self.users[user.lower()] = replace(current, tags={**current.tags, **tags})

    def untag_user(self, user: str, *keys: str) -> None:
        current = self.users[user.lower()]
        self.users[user.lower()] = replace(current, tags={k: v for k, v in current.tags.items() if k not in keys})

    def add_role(self, name: str, *, tags: Mapping[str, str] | None = None, path: str = "/") -> IamRole:
        role = IamRole(name, role_arn(name, path, self.account), dict(tags or {}), f"AROA{next(self._ids):016d}")
        self.roles[name.lower()] = role
        return role

    def delete_role(self, name: str) -> None:
        del self.roles[name.lower()]


@dataclass
class FakeIdentityStore(FakePort):
    """The IdentityStorePort: IAM Identity Center's users (UserName and a display name the service
    must never use), groups by DisplayName, memberships; ids are UUIDs as the Identity Store's are."""

    OPERATIONS: ClassVar[tuple[str, ...]] = ("group_id", "member_ids", "user_name", "member_of")

    groups: dict[str, str] = field(default_factory=dict)  # group id -> DisplayName
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # user id -> (UserName, DisplayName)
    memberships: set[tuple[str, str]] = field(default_factory=set)  # (group id, user id)
    _ids: Iterator[int] = field(default_factory=itertools.count, repr=False, init=False)

    # The port

    def group_id(self, display_name: str) -> str | None:
        self._enter("group_id", display_name)
        return next((gid for gid, name in self.groups.items() if name == display_name), None)

    def member_ids(self, group_id: str) -> list[str]:
        self._enter("member_ids", self.groups.get(group_id, group_id))
        return sorted(uid for gid, uid in self.memberships if gid == group_id)

    def user_name(self, user_id: str) -> str | None:
        self._enter("user_name", user_id)
        found = self.users.get(user_id)
        return found[0] if found else None

    def member_of(self, user_id: str, group_ids: Collection[str]) -> set[str]:
        self._enter("member_of", user_id)
        return {gid for gid in group_ids if (gid, user_id) in self.memberships}

    # What happens in Identity Center (the console, the API, SCIM)

    def _new_id(self) -> str:
        return f"9067{next(self._ids):04d}-0000-4000-8000-000000000000"

    def add_group(self, name: str) -> str:
        gid = self._new_id()
        self.groups[gid] = name
        return gid

    def add_user(self, user_name: str, *groups: str) -> str:
        uid = self._new_id()
        self.users[uid] = (user_name, f"Display {user_name.split('@', maxsplit=1)[0].title()}")
        for group in groups:
            self.add_member(group, uid)
        return uid

    def gid(self, name: str) -> str:
        return next(gid for gid, n in self.groups.items() if n == name)

    def add_member(self, group: str, user_id: str) -> None:
        self.memberships.add((self.gid(group), user_id))

    def remove_member(self, group: str, user_id: str) -> None:
        self.memberships.discard((self.gid(group), user_id))

    def rename_user(self, user_id: str, user_name: str) -> None:
        self.users[user_id] = (user_name, self.users[user_id][1])

    def delete_user(self, user_id: str) -> None:
        del self.users[user_id]
        self.memberships = {(g, u) for g, u in self.memberships if u != user_id}

    def delete_group(self, name: str) -> None:
        gid = self.gid(name)
        del self.groups[gid]
        self.memberships = {(g, u) for g, u in self.memberships if g != gid}


# --------------------------------------------------------------------------------------------------
# One cluster: ConfigMaps, RoleBindings, ClusterRoles


@dataclass
class FakeConfigMapStore(FakeConfigMaps, FakePort):
    """The unit tests' FakeConfigMaps (resourceVersions, 409 on a stale update, ``interfere``), with
    faults, call counts and a 404 for an update of an object that no longer exists."""

    OPERATIONS: ClassVar[tuple[str, ...]] = ("read", "update", "create", "put", "delete")

    def read(self, namespace: str, name: str) -> ObservedConfigMap | None:
        self._enter("read", f"{namespace}/{name}")
        return super().read(namespace, name)

    def update(
        self,
        observed: ObservedConfigMap,
        data: Mapping[str, str],
        annotations: Mapping[str, str],
        dry_run: bool = False,
    ) -> ObservedConfigMap:
        # A server-side dry run is checked like the write itself, so it answers the same faults.
        self._enter("update", f"{observed.namespace}/{observed.name}")
        if (observed.namespace, observed.name) not in self.objects:
            raise NotFound(f'404 configmaps "{observed.name}" not found')
        return super().update(observed, data, annotations, dry_run)

    def create(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ObservedConfigMap:
        self._enter("create", f"{namespace}/{name}")
        return super().create(namespace, name, data, annotations, labels)

    def put(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        labels: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> None:
        self._enter("put", f"{namespace}/{name}")
        super().put(namespace, name, data, labels, fresh)

    def delete(self, observed: ObservedConfigMap) -> None:
        self._enter("delete", f"{observed.namespace}/{observed.name}")
        super().delete(observed)

    # Not the port: what others do to the cluster, neither counted nor logged as the service's writes.

    def seed(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ObservedConfigMap:
        return self._store(namespace, name, data, annotations or {}, labels)

    def get(self, namespace: str = AWS_AUTH_NAMESPACE, name: str = AWS_AUTH_NAME) -> ObservedConfigMap | None:
        return self.objects.get((namespace, name))

    def edit(self, data: Mapping[str, str], namespace: str = AWS_AUTH_NAMESPACE, name: str = AWS_AUTH_NAME) -> None:
        """Someone else (kubectl, eksctl) replaces data keys; the resourceVersion moves on."""
        current = self.objects[(namespace, name)]
        self._store(namespace, name, {**current.data, **data}, current.annotations, current.labels)


@dataclass
class StoredBinding:
    """A RoleBinding as the API server keeps it (only the fields the service reads or writes)."""

    namespace: str
    name: str
    cluster_role: str
    subjects: tuple[tuple[str, str], ...]
    labels: dict[str, str]
    annotations: dict[str, str]
    resource_version: str

    @property
    def owned(self) -> bool:
        return self.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE

    def observed(self) -> ObservedBinding:
        return ObservedBinding(
            namespace=self.namespace,
            name=self.name,
            cluster_role=self.cluster_role,
            subjects=self.subjects,
            source=self.annotations.get(SOURCE_ANNOTATION, ""),
            principal=self.annotations.get(PRINCIPAL_ANNOTATION),
            resource_version=self.resource_version,
            principal_label=self.labels.get(PRINCIPAL_LABEL),
            group_label=self.labels.get(GROUP_LABEL),
            instance=self.labels.get(INSTANCE_LABEL),
        )


@dataclass
class FakeBindings(FakePort):
    """The BindingStore: namespaces with labels, and every RoleBinding and ClusterRoleBinding (namespace
    ""); only labelled ones are listed as owned. Like the API server: 404 when the namespace (or the
    binding) is missing, 409 when it exists already or the resourceVersion is stale, 422 when roleRef
    would change."""

    OPERATIONS: ClassVar[tuple[str, ...]] = (
        "namespaces",
        "list_owned",
        "list_owned_of_groups",
        "list_owned_cluster",
        "create",
        "update",
        "delete",
    )

    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    objects: dict[tuple[str, str], StoredBinding] = field(default_factory=dict)
    version: int = 0
    writes: list[str] = field(default_factory=list)
    interfere: list[Callable[[FakeBindings], None]] = field(default_factory=list)  # runs before the next write

    # The port

    def namespaces(self, selector: str | None = None) -> dict[str, dict[str, str]]:
        self._enter("namespaces")
        return {
            name: dict(labels)
            for name, labels in self.namespace_labels.items()
            if selector is None or _selects(selector, labels)
        }

    def list_owned_of_groups(self, groups: Collection[str]) -> list[ObservedBinding]:
        self._enter("list_owned_of_groups")
        return [
            b.observed()
            for _, b in sorted(self.objects.items())
            if b.namespace and b.owned and b.labels.get(GROUP_LABEL) in groups
        ]

    def list_owned(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        self._enter("list_owned")
        return self._owned(True, principals)

    def list_owned_cluster(self, principals: Collection[str] | None = None) -> list[ObservedBinding]:
        self._enter("list_owned_cluster")
        return self._owned(False, principals)

    def _owned(self, namespaced: bool, principals: Collection[str] | None) -> list[ObservedBinding]:
        return [
            b.observed()
            for _, b in sorted(self.objects.items())
            if bool(b.namespace) == namespaced
            and b.owned
            and (principals is None or b.labels.get(PRINCIPAL_LABEL) in principals)
        ]

    def create(self, binding: DesiredBinding) -> None:
        self._enter("create", f"{binding.namespace}/{binding.name}")
        self._interference()
        if binding.namespace and binding.namespace not in self.namespace_labels:
            raise NotFound(f'404 namespaces "{binding.namespace}" not found')
        if binding.key in self.objects:
            raise WriteConflict(f'409 rolebindings "{binding.name}" already exists')
        self._store(binding)
        self.writes.append(f"create {binding.namespace}/{binding.name}")

    def update(self, binding: DesiredBinding, current: ObservedBinding) -> None:
        self._enter("update", f"{binding.namespace}/{binding.name}")
        self._interference()
        stored = self._current(current)
        if stored.cluster_role != binding.cluster_role:
            raise Rejected(f'422 rolebindings "{binding.name}" is invalid: roleRef: cannot change roleRef')
        self._store(binding)
        self.writes.append(f"update {binding.namespace}/{binding.name}")

    def delete(self, current: ObservedBinding) -> None:
        self._enter("delete", f"{current.namespace}/{current.name}")
        self._interference()
        self._current(current)
        del self.objects[current.key]
        self.writes.append(f"delete {current.namespace}/{current.name}")

    def _current(self, observed: ObservedBinding) -> StoredBinding:
        stored = self.objects.get(observed.key)
        if stored is None:
            raise NotFound(f'404 rolebindings "{observed.name}" not found')
        if stored.resource_version != observed.resource_version:
            raise WriteConflict(
                f'409 rolebindings "{observed.name}": the object has been modified (resourceVersion '
                f"{observed.resource_version} is stale, now {stored.resource_version})"
            )
        return stored

    def _store(self, binding: DesiredBinding) -> None:
        # The annotations the kubernetes adapter writes (chalicelib/adapters/rolebindings.py).
        annotations = {SOURCE_ANNOTATION: binding.source}
        if binding.principal:
            annotations[PRINCIPAL_ANNOTATION] = binding.principal
        if binding.event_id:
            annotations[EVENT_ID_ANNOTATION] = binding.event_id
        self.version += 1
        self.objects[binding.key] = StoredBinding(
            binding.namespace,
            binding.name,
            binding.cluster_role,
            ((binding.subject_kind, binding.subject_name),),
            binding_labels(binding),
            annotations,
            str(self.version),
        )

    def _interference(self) -> None:
        if self.interfere:
            self.interfere.pop(0)(self)

    # Not the port: what others do to the cluster.

    def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        self.namespace_labels[name] = dict(labels or {})

    def delete_namespace(self, name: str) -> None:
        self.namespace_labels.pop(name, None)
        for key in [k for k in self.objects if k[0] == name]:
            del self.objects[key]

    def put_binding(
        self,
        namespace: str,
        name: str,
        cluster_role: str,
        subjects: tuple[tuple[str, str], ...],
        *,
        owned: bool = False,
        annotations: Mapping[str, str] | None = None,
    ) -> StoredBinding:
        """A binding made by someone else (``owned``: labelled as ours, e.g. by hand or an old version)."""
        self.version += 1
        labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE} if owned else {"app.kubernetes.io/managed-by": "helm"}
        stored = StoredBinding(
            namespace, name, cluster_role, subjects, labels, dict(annotations or {}), str(self.version)
        )
        self.objects[(namespace, name)] = stored
        return stored

    def touch(self, namespace: str, name: str, subjects: tuple[tuple[str, str], ...] | None = None) -> None:
        """Someone else edits a binding: its resourceVersion moves on."""
        stored = self.objects[(namespace, name)]
        self.version += 1
        stored.resource_version = str(self.version)
        if subjects is not None:
            stored.subjects = subjects

    def remove(self, namespace: str, name: str) -> None:
        """Someone else deletes a binding."""
        del self.objects[(namespace, name)]

    def owned(self) -> dict[tuple[str, str], StoredBinding]:
        return {key: b for key, b in self.objects.items() if b.owned}


@dataclass
class FakeClusterRoles(FakePort):
    """The ClusterRoleReader: rules per ClusterRole, one line each; NotFound for a missing one."""

    OPERATIONS: ClassVar[tuple[str, ...]] = ("rules",)

    roles: dict[str, list[str]] = field(default_factory=dict)

    def rules(self, name: str) -> list[str]:
        self._enter("rules", name)
        if name not in self.roles:
            raise NotFound(f'404 clusterroles.rbac.authorization.k8s.io "{name}" not found')
        return list(self.roles[name])


@dataclass
class FakeAccessEntries(FakePort):
    """The AccessEntryStore: one cluster's EKS access entries, by principal ARN (case-insensitively).
    Like EKS: 409 (ResourceInUse) when the principal has an entry already, 404 when it has none."""

    OPERATIONS: ClassVar[tuple[str, ...]] = (
        "list_principals",
        "describe",
        "create",
        "update",
        "tag",
        "delete",
        "associated_policies",
        "associate",
        "disassociate",
        "offered_policies",
    )

    cluster: str = "cluster"
    region: str = "us-east-1"
    entries: dict[str, ObservedAccessEntry] = field(default_factory=dict)  # by lower-case principal ARN
    writes: list[str] = field(default_factory=list)
    policies: dict[str, list[AssociatedPolicy]] = field(default_factory=dict)  # by lower-case principal ARN
    # What ListAccessPolicies answers: the policies people are granted, unless a test says otherwise.
    offered: list[str] = field(
        default_factory=lambda: [
            f"AmazonEKS{n}Policy" for n in ("Admin", "AdminView", "ClusterAdmin", "Edit", "View", "AutoNode")
        ]
    )

    def offered_policies(self) -> list[str]:
        self._enter("offered_policies")
        return list(self.offered)

    def associated_policies(self, principal_arn: str) -> list[AssociatedPolicy]:
        """Like EKS: 404 without an entry, and an error for an entry that is not STANDARD."""
        self._enter("associated_policies", principal_arn)
        if self._existing(principal_arn).type != "STANDARD":
            raise Rejected(f"InvalidRequestException: {principal_arn}: access policies are for STANDARD entries only")
        return list(self.policies.get(principal_arn.lower(), []))

    def associate(self, principal_arn: str, policy_arn: str, namespaces: tuple[str, ...] = ()) -> None:
        """Like EKS: associating a policy again replaces its scope in this one call (cluster scope
        without namespaces); 404 without an entry."""
        self._enter("associate", principal_arn)
        self._associate(principal_arn, policy_arn, namespaces)
        self.writes.append(f"associate {principal_arn} {policy_arn.rsplit('/', 1)[-1]} {list(namespaces)}")

    def disassociate(self, principal_arn: str, policy_arn: str) -> None:
        self._enter("disassociate", principal_arn)
        self._existing(principal_arn)
        found = self.policies.get(principal_arn.lower(), [])
        if not any(p.policy_arn == policy_arn for p in found):
            raise NotFound(f"ResourceNotFoundException: {policy_arn} is not associated with {principal_arn}")
        self.policies[principal_arn.lower()] = [p for p in found if p.policy_arn != policy_arn]
        self.writes.append(f"disassociate {principal_arn} {policy_arn.rsplit('/', 1)[-1]}")

    def associate_by_hand(self, principal_arn: str, policy: str, namespaces: tuple[str, ...] = ()) -> None:
        """Someone else associates an access policy (by name, cluster scope without namespaces)."""
        self._associate(principal_arn, f"arn:aws:eks::aws:cluster-access-policy/{policy}", namespaces)

    def _associate(self, principal_arn: str, arn: str, namespaces: tuple[str, ...]) -> None:
        self._existing(principal_arn)
        kept = [p for p in self.policies.get(principal_arn.lower(), []) if p.policy_arn != arn]
        scope = "namespace" if namespaces else "cluster"
        self.policies[principal_arn.lower()] = [*kept, AssociatedPolicy(arn, scope, tuple(namespaces))]

    def list_principals(self) -> list[str]:
        self._enter("list_principals")
        return sorted(e.principal_arn for e in self.entries.values())

    def describe(self, principal_arn: str) -> ObservedAccessEntry | None:
        self._enter("describe", principal_arn)
        return self.entries.get(principal_arn.lower())

    def create(self, principal_arn: str, username: str, groups: tuple[str, ...], tags: Mapping[str, str]) -> None:
        self._enter("create", principal_arn)
        if principal_arn.lower() in self.entries:
            raise WriteConflict(f"ResourceInUseException: {principal_arn} already has an access entry")
        self.put(principal_arn, username, groups, tags)
        self.writes.append(f"create {principal_arn}")

    def update(self, principal_arn: str, username: str, groups: tuple[str, ...]) -> None:
        self._enter("update", principal_arn)
        current = self._existing(principal_arn)
        self.entries[principal_arn.lower()] = replace(current, username=username, kubernetes_groups=tuple(groups))
        self.writes.append(f"update {principal_arn}")

    def tag(self, entry_arn: str, tags: Mapping[str, str]) -> None:
        self._enter("tag", entry_arn)
        found = next((e for e in self.entries.values() if e.entry_arn == entry_arn), None)
        if found is None:
            raise NotFound(f"ResourceNotFoundException: no access entry {entry_arn}")
        self.entries[found.key] = replace(found, tags={**found.tags, **tags})
        self.writes.append(f"tag {found.principal_arn}")

    def delete(self, principal_arn: str) -> None:
        self._enter("delete", principal_arn)
        self._existing(principal_arn)
        del self.entries[principal_arn.lower()]
        self.policies.pop(principal_arn.lower(), None)  # EKS cascades the associations
        self.writes.append(f"delete {principal_arn}")

    def _existing(self, principal_arn: str) -> ObservedAccessEntry:
        found = self.entries.get(principal_arn.lower())
        if found is None:
            raise NotFound(f"ResourceNotFoundException: no access entry for {principal_arn}")
        return found

    # Not the port: entries made by others (EKS itself for node roles, the console, eksctl).

    def put(
        self,
        principal_arn: str,
        username: str,
        groups: tuple[str, ...] = (),
        tags: Mapping[str, str] | None = None,
        type: str = "STANDARD",
    ) -> ObservedAccessEntry:
        name = principal_arn.rsplit("/", 1)[-1]
        entry_arn = f"arn:aws:eks:{self.region}:{ACCOUNT}:access-entry/{self.cluster}/{name}/{len(self.entries)}"
        entry = ObservedAccessEntry(principal_arn, username, tuple(groups), type, dict(tags or {}), entry_arn)
        self.entries[principal_arn.lower()] = entry
        return entry


@dataclass
class FakeRbac(FakePort):
    """The RbacReader: every RoleBinding (those of ``bindings``, owned or not), and the
    ClusterRoleBindings, Roles and ClusterRoles others made. Each change moves a resourceVersion."""

    OPERATIONS: ClassVar[tuple[str, ...]] = ("snapshot", "custom_resources")

    bindings: FakeBindings = field(default_factory=FakeBindings)
    cluster_roles: dict[str, tuple[RbacRule, ...]] = field(default_factory=dict)
    roles: dict[tuple[str, str], tuple[RbacRule, ...]] = field(default_factory=dict)  # (namespace, name)
    cluster_role_bindings: dict[str, RbacBinding] = field(default_factory=dict)
    version: int = 0
    crds: list[str] = field(default_factory=list)  # CustomResourceDefinitions' names

    def custom_resources(self) -> list[str]:
        self._enter("custom_resources")
        return sorted(self.crds)

    def snapshot(self) -> RbacSnapshot:
        self._enter("snapshot")
        found = [
            RbacBinding(
                b.name,
                "Role" if b.cluster_role.startswith("Role/") else "ClusterRole",
                b.cluster_role.removeprefix("Role/"),
                b.subjects,
                b.namespace,
                dict(b.labels),
            )
            for _, b in sorted(self.bindings.objects.items())
        ]
        # ``bindings`` holds the service's ClusterRoleBindings too (namespace ""), beside those others made.
        wide = {b.name: b for b in found if not b.namespace} | self.cluster_role_bindings
        return RbacSnapshot(
            tuple(b for b in found if b.namespace),
            tuple(wide[k] for k in sorted(wide)),
            tuple(RbacRole(n, r, ns) for (ns, n), r in sorted(self.roles.items())),
            tuple(RbacRole(n, r) for n, r in sorted(self.cluster_roles.items())),
            {"rolebindings": str(self.bindings.version), "clusterrolebindings": str(self.version)},
        )

    # Not the port: what others do.

    def bind_cluster_wide(self, name: str, cluster_role: str, subjects: tuple[tuple[str, str], ...]) -> None:
        self.version += 1
        self.cluster_role_bindings[name] = RbacBinding(name, "ClusterRole", cluster_role, subjects)


@dataclass
class FakeCluster:
    """One cluster's fakes, and the ClusterPorts the shell hands out for them."""

    name: str
    config_maps: FakeConfigMapStore = field(default_factory=FakeConfigMapStore)
    bindings: FakeBindings = field(default_factory=FakeBindings)
    cluster_roles: FakeClusterRoles = field(default_factory=FakeClusterRoles)
    authentication_mode: str | None = None  # as DescribeCluster reports it; None: not described
    access_entries: FakeAccessEntries | None = None  # None: the EKS API is not reachable
    rbac: FakeRbac | None = None  # None: the report's RBAC reader is not offered

    def ports(self) -> ClusterPorts:
        return ClusterPorts(
            self.name,
            self.config_maps,
            self.bindings,
            self.cluster_roles,
            self.authentication_mode,
            self.access_entries,
            rbac=self.rbac,
            access_policies=self.access_entries,
        )

    def with_access_entries(self, mode: str = "API_AND_CONFIG_MAP", region: str = "us-east-1") -> FakeAccessEntries:
        """EKS reachable for this cluster, in ``mode``; the node role's entry, as EKS creates it."""
        self.authentication_mode = mode
        self.access_entries = FakeAccessEntries(cluster=self.name, region=region)
        self.access_entries.put(NODE_ROLE, "system:node:{{EC2PrivateDNSName}}", (), type="EC2_LINUX")
        return self.access_entries

    @property
    def aws_auth(self) -> ObservedConfigMap:
        found = self.config_maps.get()
        if found is None:
            raise AssertionError(f"cluster {self.name} has no aws-auth")
        return found

    def writes(self) -> list[str]:
        entries = self.access_entries.writes if self.access_entries else []
        return [*self.config_maps.writes, *self.bindings.writes, *entries]

    def calls(self) -> Counter[str]:
        entries = self.access_entries.calls if self.access_entries else Counter[str]()
        return self.config_maps.calls + self.bindings.calls + self.cluster_roles.calls + entries


# --------------------------------------------------------------------------------------------------
# The shell and the observer

SERVICE_ARN = role_arn("eks-iam-sync-dev")


@dataclass
class FakeShell(FakePort):
    """The Shell: hands out the IAM fake and each cluster's ports; ``fail("cluster", error,
    target=name, always=True)`` makes one cluster unreachable; ``fail("iam"|"own_arn", ...)`` the rest.

    Roles of other accounts (a cluster's ``roleArn``, ``iam.roleArn``) are assumed as STS would:
    only a role in ``trusted_roles`` with the external id its trust policy asks for; anything else is
    refused (Forbidden). A cluster reached as a role carries that role's canonical ARN as its caller;
    IAM read as a role is that role's account's (``iam_accounts``)."""

    OPERATIONS: ClassVar[tuple[str, ...]] = ("iam", "own_arn", "cluster", "identity_store")

    iam_port: FakeIam = field(default_factory=FakeIam)
    arn: str = SERVICE_ARN
    clusters: dict[str, FakeCluster] = field(default_factory=dict)
    trusted_roles: dict[str, str | None] = field(default_factory=dict)  # role ARN -> the external id it wants
    iam_accounts: dict[str, FakeIam] = field(default_factory=dict)  # role ARN -> IAM as seen through it
    assumed: list[tuple[str, str | None]] = field(default_factory=list)  # (role ARN, external id) as asked
    sso_store: FakeIdentityStore = field(default_factory=FakeIdentityStore)
    sso_settings: list[IdentityCenter] = field(default_factory=list)  # as each identity_store call asked

    def identity_store(self, settings: IdentityCenter) -> FakeIdentityStore:
        """The Identity Store; through identityCenter.roleArn only when STS would let the service in."""
        self._enter("identity_store", settings.identity_store_id)
        self.sso_settings.append(settings)
        role = settings.assumed_role
        if role is not None:
            self._assume(role, "reading the Identity Store (identityCenter.roleArn)")
        return self.sso_store

    def iam(self, role: RoleToAssume | None) -> FakeIam:
        self._enter("iam")
        if role is None:
            return self.iam_port
        self._assume(role, "reading IAM (iam.roleArn)")
        return self.iam_accounts.setdefault(role.role_arn, FakeIam())

    def own_arn(self) -> str:
        self._enter("own_arn")
        return self.arn

    def iam_activity(self, role: RoleToAssume | None) -> FakeIam:
        """IAM's last-used records, from the same fake IAM as ``iam``."""
        return self.iam(role)

    def cluster(self, cluster: Cluster) -> ClusterPorts:
        self._enter("cluster", cluster.name)
        role = cluster.assumed_role
        caller = self._assume(role, f"cluster {cluster.name}") if role is not None else None
        found = self.clusters.get(cluster.name)
        if found is None:
            raise TransientError(f"cluster {cluster.name} is unreachable (no such fake)")
        return replace(found.ports(), caller_arn=caller)

    def _assume(self, role: RoleToAssume, purpose: str) -> str:
        self.assumed.append((role.role_arn, role.external_id))
        if role.role_arn not in self.trusted_roles or self.trusted_roles[role.role_arn] != role.external_id:
            raise Forbidden(
                f"sts:AssumeRole {role.role_arn} (session eks-iam-sync) for {purpose}: AccessDenied: "
                f"User: {self.arn} is not authorized to perform: sts:AssumeRole on resource: {role.role_arn}"
            )
        return arns.unpathed(role.role_arn)

    def add_cluster(self, name: str) -> FakeCluster:
        self.clusters[name] = FakeCluster(name)
        return self.clusters[name]

    def writes(self) -> dict[str, list[str]]:
        """Every cluster's write log; IAM is only ever read."""
        return {name: cluster.writes() for name, cluster in self.clusters.items()}

    def port_calls(self) -> int:
        """Calls to any port of this shell: the shell itself, IAM, every cluster's stores."""
        total = self.calls + self.iam_port.calls
        for cluster in self.clusters.values():
            total += cluster.calls()
        return total.total()


@dataclass(frozen=True)
class LogLine:
    level: Literal["info", "warning", "error", "change"]
    message: str
    fields: dict[str, Any]


@dataclass
class RecordingObserver:
    """The Observer: counts (with and without dimensions) and log lines, in order."""

    counts: dict[str, float] = field(default_factory=dict)
    durations: list[tuple[str, float]] = field(default_factory=list)
    lines: list[LogLine] = field(default_factory=list)

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        for label in {name, _label(name, dimensions)}:
            self.counts[label] = self.counts.get(label, 0) + value

    def milliseconds(self, name: str, value: float) -> None:
        self.durations.append((name, value))

    def percent(self, name: str, value: float, **dimensions: str) -> None:
        self.count(name, value, **dimensions)

    def info(self, message: str, **fields: Any) -> None:
        self.lines.append(LogLine("info", message, fields))

    def warning(self, message: str, **fields: Any) -> None:
        self.lines.append(LogLine("warning", message, fields))

    def error(self, message: str, **fields: Any) -> None:
        self.lines.append(LogLine("error", message, fields))

    def change(self, message: str, **fields: Any) -> None:
        self.lines.append(LogLine("change", message, fields))

    def counted(self, name: str, **dimensions: str) -> float:
        return self.counts.get(_label(name, dimensions), 0)

    def messages(self, level: str | None = None) -> list[str]:
        return [line.message for line in self.lines if level in (None, line.level)]


def _label(name: str, dimensions: Mapping[str, str]) -> str:
    return name + "".join(f"[{k}={v}]" for k, v in sorted(dimensions.items()))


# --------------------------------------------------------------------------------------------------
# The seed world: the shipped configuration's IAM group, role and namespaces, in two clusters

SEED = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
GROUP: str = SEED["identities"]["groups"][0]["iamGroup"]
KUBERNETES_GROUP: str = SEED["identities"]["groups"][0]["kubernetesGroups"][0]
ROLE: str = SEED["identities"]["roles"][0]["iamRole"]
POD_READER: str = SEED["namespaceGrants"][0]["clusterRole"]
PROJECTS: tuple[str, ...] = tuple(SEED["namespaceGrants"][0]["namespaces"])
NS3 = "bttrm-web-proj-3-ns"  # not in any rule: reached by tag grants only
TAG_PREFIX: str = SEED["tagGrants"]["tagPrefix"]
PROFILE = next(iter(SEED["tagGrants"]["profiles"]))
CLUSTERS = {"fn-east": "us-east-2", "fn-west": "eu-west-1"}
POD_READER_RULES = ["pods: get, list, watch", "pods/log: get"]
# The same ClusterRoles as RBAC objects (what the report's RbacReader lists), and the aggregated ones.
STRUCTURED_ROLES: dict[str, tuple[RbacRule, ...]] = {
    POD_READER: (RbacRule(("get", "list", "watch"), ("",), ("pods",)), RbacRule(("get",), ("",), ("pods/log",))),
    "cluster-admin": (RbacRule(("*",), ("*",), ("*",)), RbacRule(("*",), non_resource_urls=("*",))),
}
NODE_ROLE = role_arn("eks-node-group")
NODE_ROLES = (
    f"- rolearn: {NODE_ROLE}\n"
    "  username: system:node:{{EC2PrivateDNSName}}\n"
    "  groups:\n"
    "    - system:bootstrappers\n"
    "    - system:nodes\n"
)


def config_text(
    clusters: Mapping[str, str] = CLUSTERS,
    *,
    cluster_settings: Mapping[str, Mapping[str, Any]] | None = None,
    **overrides: Any,
) -> str:
    """The shipped configuration with test clusters (name -> region, plus any per-cluster settings such
    as ``backend``) and top-level keys replaced by ``overrides``."""
    settings = cluster_settings or {}
    listed = [{"name": n, "region": r, **settings.get(n, {})} for n, r in clusters.items()]
    return yaml.safe_dump({**SEED, "clusters": listed, **overrides}, sort_keys=False)


def seed_cluster(cluster: FakeCluster) -> FakeCluster:
    """A cluster as EKS and the platform team leave it: aws-auth holding the node role, the
    project namespaces, kube-system, and the pod reader ClusterRole."""
    cluster.config_maps.seed(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME, {"mapRoles": NODE_ROLES})
    for namespace in ("default", "kube-system", *PROJECTS, NS3):
        cluster.bindings.add_namespace(namespace, {"kubernetes.io/metadata.name": namespace})
    cluster.cluster_roles.roles[POD_READER] = list(POD_READER_RULES)
    cluster.cluster_roles.roles["cluster-admin"] = ["*: *"]
    cluster.rbac = FakeRbac(bindings=cluster.bindings, cluster_roles=dict(STRUCTURED_ROLES))
    return cluster


def seed_world(clusters: Iterable[str] = CLUSTERS) -> FakeShell:
    """IAM with the configured group and role (no users yet), and every cluster seeded."""
    shell = FakeShell()
    shell.iam_port.add_group(GROUP)
    shell.iam_port.add_role(ROLE)
    for name in clusters:
        seed_cluster(shell.add_cluster(name))
    return shell


if TYPE_CHECKING:

    def _conforms(
        shell: FakeShell, cluster: FakeCluster, entries: FakeAccessEntries, observer: RecordingObserver
    ) -> None:
        """Never called: mypy proves here that each fake implements its port."""
        ports: tuple[
            Shell,
            IamPort,
            IdentityStorePort,
            ConfigMapStore,
            BindingStore,
            ClusterRoleReader,
            AccessEntryStore,
            Observer,
        ] = (
            shell,
            shell.iam_port,
            shell.sso_store,
            cluster.config_maps,
            cluster.bindings,
            cluster.cluster_roles,
            entries,
            observer,
        )
        del ports


def _selects(selector: str, labels: Mapping[str, str]) -> bool:
    """The API server's label-selector semantics (=, in, notin, exists, !exists), for the fake's
    namespace listing: an independent reading of the string the service sends."""
    terms = re.findall(r"[^,(]+(?:\([^)]*\))?", selector)
    for term in (t.strip() for t in terms):
        if not term:
            continue
        if match := re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", term):
            key, operator, values = match[1], match[2], {v.strip() for v in match[3].split(",")}
            if operator == "in" and labels.get(key) not in values:
                return False
            if operator == "notin" and key in labels and labels[key] in values:
                return False
        elif "=" in term:
            key, _, value = term.partition("=")
            if labels.get(key.rstrip("=!")) != value.lstrip("="):
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True
