"""The access report's data: which principal reaches which namespace, through which chain, and what
is wrong or about to change. Pure: built from what the service layer read from IAM and each cluster,
and from the display-only reconcile of that cluster (the same desired state and plan as
``eks-iam-sync plan``; its drift is ``report.as_json`` of that plan).

Three states are compared, per cluster:

- **now**: the mappings the cluster holds (aws-auth entries, access entries; which of them EKS uses
  follows the authentication mode) and the owned RoleBindings as read;
- **after**: the same with the plan applied (identity changes when the step would write, RoleBinding
  actions, tag-grant deletions held back by the deletion breaker);
- a grant (principal, namespace, ClusterRole, RoleBinding, subject) in both is *active*, only after is
  *pending* (a reconcile adds it), only now is *removing* (a reconcile removes it).

Only RoleBindings eks-iam-sync owns are read (the service's RBAC lists nothing else): the matrix is
what eks-iam-sync grants, including to mappings it does not own that name its Kubernetes groups.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib import arns
from chalicelib.accessentries.plan import KEY as ACCESS_ENTRY_KEY
from chalicelib.accessentries.plan import QUOTA_WARNING_SHARE, owned
from chalicelib.accessreport import provenance, rbac
from chalicelib.awsauth.guardrails import (
    ANNOTATIONS_LIMIT_BYTES,
    DATA_LIMIT_BYTES,
    NODE_GROUPS,
    SIZE_WARNING_SHARE,
    size_shares,
)
from chalicelib.awsauth.ledger import Ledger, LedgerError
from chalicelib.awsauth.model import ENTRY_KEYS, Problem
from chalicelib.awsauth.parse import read_aws_auth
from chalicelib.config import Config
from chalicelib.ownership import (
    ACCESS_ENTRY_QUOTA,
    ENTRY_PRINCIPAL_ID_TAG,
    ENTRY_SOURCE_TAG,
    LEDGER_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVICE_GROUP,
    SERVICE_USERNAME,
)
from chalicelib.plan import DeleteBinding
from chalicelib.ports import (
    AssociatedPolicy,
    ObservedAccessEntry,
    ObservedBinding,
    ObservedConfigMap,
    RbacBinding,
    RbacRule,
    RbacSnapshot,
)
from chalicelib.reconcile import ClusterReport
from chalicelib.report import as_json as plan_json
from chalicelib.snapshot import IamSnapshot

SCHEMA = "eks-iam-sync/access-report/v2"
ACTIVE, PENDING, REMOVING = "active", "pending", "removing"
INEFFECTIVE = "ineffective"  # through an aws-auth entry the authenticator never matches
STATUS_ORDER = (ACTIVE, PENDING, REMOVING, INEFFECTIVE)  # a role reached several ways shows the first that applies
_NOT_IN_PLACE = (REMOVING, INEFFECTIVE)  # what a path's rules are not counted for (flags, verbs, risk)
AWS_AUTH, ACCESS_ENTRY, NOT_MANAGED = "aws-auth", "access entry", "not managed"
KINDS = ("user", "role", "permission set", "other")
FINDING_KINDS = {
    "cluster-failed": "Clusters not read",
    "incomplete": "Not read: access that may be missing here",
    "refusal": "Refusals",
    "conflict": "Conflicts",
    "cannot-authenticate": "In IAM, but cannot authenticate",
    "drift": "Drift: what a reconcile would change",
    "risk": "Risky access",
    "foreign": "Mappings eks-iam-sync does not manage",
    "size": "Size against limits",
    "aws-auth": "aws-auth as EKS reads it",
    "warning": "Warnings",
}
SEVERITIES = ("error", "warning", "info")
_SOURCES = re.compile(r"identities\.(groups|roles|permissionSets)\[([^\]]*)\]")
_CLUSTER_ADMIN_GROUP = "system:masters"
_EVERYONE = "system:authenticated"  # every authenticated principal is in it, whatever its mapping says
OUTSIDE = "granted outside eks-iam-sync"
ROLE_BINDING, CLUSTER_ROLE_BINDING = "RoleBinding", "ClusterRoleBinding"
MASTERS, ACCESS_POLICY = "system:masters", "access policy"
_MASTERS_RULES = (RbacRule(("*",), ("*",), ("*",)), RbacRule(("*",), non_resource_urls=("*",)))


# --------------------------------------------------------------------------------------------------
# What the service layer read


@dataclass(frozen=True)
class ClusterRead:
    """One cluster as read for the report, and its display-only reconcile."""

    name: str
    region: str
    authentication_mode: str | None
    run: ClusterReport  # reconcile_cluster(..., Options(dry_run=True)): desired state, plan, preview
    aws_auth: ObservedConfigMap | None = None  # None: absent, or not read (mode API)
    access_entries: tuple[ObservedAccessEntry, ...] | None = None  # None: not read (no API, CONFIG_MAP)
    bindings: tuple[ObservedBinding, ...] = ()  # the owned RoleBindings, as read
    rules: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # ClusterRole -> its rules
    rule_errors: Mapping[str, str] = field(default_factory=dict)  # ClusterRole -> why it was not read
    namespaces: int = 0  # namespaces in the cluster
    namespace_names: tuple[str, ...] = ()
    rbac: RbacSnapshot | None = None  # every RBAC object; None: not read (rbac_error says why)
    rbac_error: str = ""
    policies: Mapping[str, tuple[AssociatedPolicy, ...]] = field(default_factory=dict)  # lower-case ARN -> them
    policy_errors: Mapping[str, str] = field(default_factory=dict)  # lower-case ARN -> why not read


@dataclass(frozen=True)
class ClusterFailed:
    name: str
    region: str
    error: str
    kind: str  # transient | permanent


@dataclass(frozen=True)
class Meta:
    generated_at: str  # ISO 8601, UTC
    config_source: str
    config_sha256: str
    version: str
    read_by: str = ""  # the ARN that read IAM and the clusters
    iam_read_at: str = ""  # ISO 8601, UTC: when the IAM snapshot was taken


# --------------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class Path:
    """One way into one namespace, shared by every principal it applies to."""

    id: str
    cluster: str
    namespace: str
    cluster_role: str
    status: str  # active | pending | removing
    mechanism: str  # aws-auth | access entry
    mapping: str  # "aws-auth mapUsers entry", "access entry"
    managed: bool  # the mapping is eks-iam-sync's
    origin: str  # "IAM group X", "IAM tag eks-access/ns=profile", "IAM role X (identities.roles)", ...
    subject: str  # "Kubernetes group g" | "Kubernetes user u"
    binding: str  # namespace/name
    binding_source: str  # the configuration rule or tag behind the RoleBinding
    rules: tuple[str, ...]  # "pods: get, list, watch"
    principals: int = 0
    kind: str = ROLE_BINDING  # RoleBinding | ClusterRoleBinding | system:masters | access policy
    foreign: bool = False  # the mapping or the grant is not eks-iam-sync's: granted outside eks-iam-sync
    flags: tuple[str, ...] = ()  # rbac.FLAGS that the rules raise
    risk: str = "low"  # rbac.RISKS

    @property
    def cluster_wide(self) -> bool:
        return self.namespace == "*"

    @property
    def chain(self) -> tuple[tuple[str, str], ...]:
        """(step, what): IAM group or tag -> mapping -> Kubernetes subject -> binding -> ClusterRole -> verbs."""
        mapping = self.mapping + ("" if self.managed else " (not managed by eks-iam-sync)")
        grant = self.binding if self.kind in (MASTERS, ACCESS_POLICY) else f"{self.binding} ({self.binding_source})"
        return (
            ("granted by", self.origin),
            ("mapped through", mapping),
            ("as", self.subject),
            (self.kind, grant),
            ("ClusterRole", self.cluster_role),
            ("can", "; ".join(self.rules) or "(no rules)"),
        )


@dataclass(frozen=True)
class Cell:
    column: int
    roles: tuple[tuple[str, str], ...]  # (ClusterRole, status), by name
    paths: tuple[str, ...]  # Path ids
    flags: tuple[str, ...] = ()  # of the paths that are or will be in place
    foreign: bool = False  # some path is granted outside eks-iam-sync
    allowed: tuple[rbac.Allowed, ...] = ()  # verbs per resource, of the paths that are or will be in place

    @property
    def status(self) -> str:
        statuses = {status for _, status in self.roles}
        return next(s for s in STATUS_ORDER if s in statuses)


@dataclass(frozen=True)
class Principal:
    arn: str  # as IAM reports it (path included) when IAM has it, else as mapped
    name: str
    kind: str  # user | role | permission set | other
    in_iam: bool
    iam_groups: tuple[str, ...]  # the configured IAM groups it is in
    kubernetes_groups: tuple[str, ...]
    usernames: tuple[str, ...]
    mechanisms: tuple[str, ...]  # aws-auth | access entry | not managed
    cells: tuple[Cell, ...]  # only the namespaces it reaches (or will, or will no longer)
    cluster_wide: tuple[str, ...] = ()  # the clusters where it reaches every namespace
    flags: tuple[str, ...] = ()
    risk: str = "none"  # rbac.RISKS: of what it can do (or will), none when it reaches nothing


@dataclass(frozen=True)
class Column:
    cluster: str
    namespace: str
    principals: int


@dataclass(frozen=True)
class Finding:
    kind: str  # a key of FINDING_KINDS
    severity: str  # error | warning | info
    cluster: str
    reason: str  # stable, short
    message: str
    principal: str = ""


@dataclass(frozen=True)
class Measure:
    what: str  # "aws-auth data", "aws-auth annotations", "access entries"
    used: int
    limit: int
    unit: str  # bytes | entries

    @property
    def share(self) -> float:
        return self.used / self.limit


@dataclass(frozen=True)
class ClusterSummary:
    name: str
    region: str
    status: str  # read | failed
    authentication_mode: str | None = None
    backend: str = ""  # configMap | accessEntries
    error: str = ""
    namespaces: int = 0
    bindings: int = 0  # owned RoleBindings read
    mappings: int = 0  # mappings EKS uses now
    drift: int = 0  # changes a reconcile would make
    measures: tuple[Measure, ...] = ()
    provenance: tuple[tuple[str, str], ...] = ()  # (what, value): resourceVersions and digests as read


@dataclass(frozen=True)
class AccessReport:
    meta: Meta
    clusters: tuple[ClusterSummary, ...]
    columns: tuple[Column, ...]
    principals: tuple[Principal, ...]
    paths: tuple[Path, ...]
    findings: tuple[Finding, ...]
    accounts: tuple[str, ...] = ()  # of the principals IAM listed and of the reader
    iam_sha256: str = ""

    def findings_of(self, kind: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == kind)

    @property
    def failed(self) -> tuple[ClusterSummary, ...]:
        return tuple(c for c in self.clusters if c.status == "failed")


# --------------------------------------------------------------------------------------------------
# Building it


@dataclass(frozen=True)
class _Mapping:
    key: str
    arn: str
    username: str
    groups: tuple[str, ...]
    where: str  # mapUsers | mapRoles | accessEntry
    managed: bool
    source: str  # the rule or tag recorded for it (managed mappings)
    ineffective: str = ""  # why the authenticator never matches it (aws-auth), else empty

    @property
    def mechanism(self) -> str:
        return ACCESS_ENTRY if self.where == ACCESS_ENTRY_KEY else AWS_AUTH

    @property
    def label(self) -> str:
        return "access entry" if self.where == ACCESS_ENTRY_KEY else f"aws-auth {self.where} entry"

    def describe(self) -> str:
        return f"{self.label} {self.arn} -> username {self.username!r}, groups {list(self.groups)}"


@dataclass(frozen=True)
class _Binding:
    """A grant to subjects: a RoleBinding, a ClusterRoleBinding (``namespace`` empty: every namespace),
    system:masters, or an access policy of an access entry (subject ``("Entry", principal key)``)."""

    namespace: str
    name: str
    cluster_role: str
    subjects: tuple[tuple[str, str], ...]
    source: str
    kind: str = ROLE_BINDING
    owned: bool = True  # eks-iam-sync's (labelled): the plan may change it
    rules: tuple[RbacRule, ...] | None = None  # None: not read as objects (the ClusterRoleReader's lines then)

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True)
class _State:
    """Mappings (both kinds, by principal key) and owned RoleBindings at one moment."""

    aws_auth: Mapping[str, _Mapping]
    access: Mapping[str, _Mapping]
    stale: frozenset[str]  # access entries bound to an earlier principal of the same ARN
    bindings: Mapping[tuple[str, str], _Binding]
    problems: tuple[Problem, ...] = ()  # aws-auth as EKS reads it (read once: 5 000 entries take a second)

    def effective(self, mode: str | None) -> dict[str, _Mapping]:
        """The mapping EKS uses for each principal: aws-auth in CONFIG_MAP, access entries in API, an
        access entry before an aws-auth entry in API_AND_CONFIG_MAP. A stale entry authenticates nobody."""
        usable = {k: m for k, m in self.access.items() if k not in self.stale}
        if mode == "API":
            return usable
        if mode == "API_AND_CONFIG_MAP":
            return {**self.aws_auth, **usable}
        return dict(self.aws_auth)


# (principal key, mapping kind, namespace, ClusterRole, RoleBinding name, subject kind, subject name)
_GrantKey = tuple[str, str, str, str, str, str, str]
# (cluster, namespace, ClusterRole, status, where, managed, origin, subject, binding, its source, its kind,
# granted outside eks-iam-sync)
_PathKey = tuple[str, str, str, str, str, bool, str, str, str, str, str, bool]


def principal_key(arn: str) -> str:
    """How a principal is matched across IAM, aws-auth and access entries: lower case, and a role
    (or an assumed-role session) without its path, as STS reports it."""
    parsed = arns.parse(arn)
    if parsed is None:
        return arn.lower()
    if parsed.kind in ("role", "assumed-role"):
        return parsed.canonical().unpathed().text.lower()
    return parsed.text.lower()


def principal_kind(arn: str) -> str:
    parsed = arns.parse(arn)
    if parsed is None:
        return "other"
    if parsed.kind == "user":
        return "user"
    if parsed.kind in ("role", "assumed-role"):
        path = parsed.path if parsed.path not in ("", "/") else None
        return "permission set" if arns.permission_set_of(parsed.name, path) else "role"
    return "other"


def build_report(
    config: Config, snapshot: IamSnapshot, clusters: Sequence[ClusterRead | ClusterFailed], meta: Meta
) -> AccessReport:
    iam = _IamIndex(config, snapshot)
    builder = _Builder(config, iam, meta.read_by)
    for cluster in clusters:
        if isinstance(cluster, ClusterFailed):
            builder.failed(cluster)
        else:
            builder.cluster(cluster)
    return replace(
        builder.report(meta),
        accounts=provenance.accounts(snapshot, meta.read_by),
        iam_sha256=provenance.iam_digest(snapshot),
    )


class _IamIndex:
    def __init__(self, config: Config, snapshot: IamSnapshot) -> None:
        configured = {g.iam_group.lower() for g in config.identities.groups}
        self.arns: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self.groups: dict[str, tuple[str, ...]] = {}
        for user in snapshot.users:
            key = principal_key(user.arn)
            self.arns[key], self.ids[key] = user.arn, user.id
            self.groups[key] = tuple(sorted(g for g in user.groups if g.lower() in configured))
        for role in snapshot.roles:
            key = principal_key(role.arn)
            self.arns[key], self.ids[key] = role.arn, role.id


class _Builder:
    def __init__(self, config: Config, iam: _IamIndex, read_by: str = "") -> None:
        self.config = config
        self.iam = iam
        self.break_glass = {principal_key(arn) for arn in config.aws_auth.break_glass_arns}
        self.read_by = principal_key(read_by) if read_by else ""
        self.origins: dict[tuple[str, str, str, str], str] = {}
        self.summaries: list[ClusterSummary] = []
        self.findings: list[Finding] = []
        self.columns: set[tuple[str, str]] = set()
        # principal key -> column -> ClusterRole -> statuses; and the path keys behind each cell
        self.cells: dict[str, dict[tuple[str, str], dict[str, set[str]]]] = defaultdict(lambda: defaultdict(dict))
        self.cell_paths: dict[tuple[str, tuple[str, str]], set[_PathKey]] = defaultdict(set)
        self.path_principals: dict[_PathKey, set[str]] = defaultdict(set)
        self.path_rules: dict[_PathKey, tuple[str, ...]] = {}
        self.path_flags: dict[_PathKey, tuple[str, ...]] = {}
        self.path_rbac: dict[_PathKey, tuple[RbacRule, ...]] = {}
        self.allowed_of: dict[frozenset[_PathKey], tuple[rbac.Allowed, ...]] = {}
        self.mappings: dict[str, list[_Mapping]] = defaultdict(list)  # principal key -> its mappings (rows)
        self.mechanisms: dict[str, set[str]] = defaultdict(set)
        self.own: dict[tuple[str, str], str] = {}  # (cluster, principal key) of the service's identity -> its backend

    # One cluster

    def failed(self, cluster: ClusterFailed) -> None:
        self.summaries.append(ClusterSummary(cluster.name, cluster.region, "failed", error=cluster.error))
        self.findings.append(
            Finding("cluster-failed", "error", cluster.name, cluster.kind, f"{cluster.name}: {cluster.error}")
        )

    def cluster(self, read: ClusterRead) -> None:
        mode = read.authentication_mode
        now = self._now(read)
        after = _after(read, now)
        effective_now, effective_after = now.effective(mode), after.effective(mode)
        grants_now = _grants(effective_now, now.bindings)
        grants_after = _grants(effective_after, after.bindings)
        for key in grants_now.keys() | grants_after.keys():
            both = key in grants_now and key in grants_after
            status = ACTIVE if both else PENDING if key in grants_after else REMOVING
            mapping, binding, subject_kind, subject_name = grants_after.get(key) or grants_now[key]
            status = INEFFECTIVE if mapping.ineffective else status
            self._grant(read, status, mapping, binding, subject_kind, subject_name)
        for binding in (*now.bindings.values(), *after.bindings.values()):
            if binding.owned:
                self.columns.add((read.name, binding.namespace))
        for mapping in (*effective_now.values(), *effective_after.values()):
            self._row(mapping)  # every mapping EKS uses, whoever made it, is a row
        for mapping in effective_now.values():
            if SERVICE_GROUP in mapping.groups or mapping.username == SERVICE_USERNAME:
                self.own[(read.name, mapping.key)] = read.run.backend
        if read.rbac is None:
            message = f"RBAC objects not read ({read.rbac_error}): only the RoleBindings eks-iam-sync owns are shown"
            self._finding(read, "incomplete", "error", "rbac-unread", message)
        for arn, error in sorted(read.policy_errors.items()):
            self._finding(read, "incomplete", "error", "policies-unread", f"access policies of {arn}: {error}", arn)
        self._findings(read, now, effective_now)
        self.summaries.append(self._summary(read, now, effective_now))

    def _now(self, read: ClusterRead) -> _State:
        aws_auth: dict[str, _Mapping] = {}
        problems: tuple[Problem, ...] = ()
        if read.aws_auth is not None:
            try:
                ledger = Ledger.parse(read.aws_auth.annotations.get(LEDGER_ANNOTATION))
            except LedgerError as err:
                ledger = Ledger()
                self._finding(read, "aws-auth", "error", "ledger-unreadable", f"{err}: every entry shown as unmanaged")
            reading = read_aws_auth(read.aws_auth.data)
            problems = reading.problems
            for where in ENTRY_KEYS:
                for entry in reading.entries(where):  # what EKS loads; of duplicates, the last wins
                    record = ledger.records.get(entry.key)
                    key = principal_key(entry.arn)
                    source = record.source if record else ""
                    never = _never_matches(where, entry.arn, entry.username)
                    mapping = _Mapping(key, entry.arn, entry.username, entry.groups, where, bool(record), source, never)
                    aws_auth[key] = mapping
        access: dict[str, _Mapping] = {}
        stale: set[str] = set()
        for described in read.access_entries or ():
            key = principal_key(described.principal_arn)
            managed = owned(described)
            source = described.tags.get(ENTRY_SOURCE_TAG, "") if managed else ""
            arn, username, groups = described.principal_arn, described.username, tuple(described.kubernetes_groups)
            access[key] = _Mapping(key, arn, username, groups, ACCESS_ENTRY_KEY, managed, source)
            recorded, current = described.tags.get(ENTRY_PRINCIPAL_ID_TAG), self.iam.ids.get(key)
            if managed and recorded and current and recorded != current:
                stale.add(key)
        bindings = {
            b.key: _Binding(
                b.namespace,
                b.name,
                b.cluster_role,
                b.subjects,
                b.source,
                rules=_role_rules(read, b.cluster_role, b.namespace),
            )
            for b in read.bindings
        }
        bindings.update(_outside(read))
        bindings.update(_policies(read, access))
        return _State(aws_auth, access, frozenset(stale), bindings, problems)

    def _grant(
        self, read: ClusterRead, status: str, mapping: _Mapping, binding: _Binding, subject_kind: str, subject: str
    ) -> None:
        origin = self._origin(mapping, binding, subject_kind, subject)
        if subject_kind == "Entry":
            who = f"Kubernetes user {mapping.username} (the access entry's own)"
        else:
            who = f"Kubernetes {'group' if subject_kind == 'Group' else 'user'} {subject}"
        path: _PathKey = (
            read.name,
            binding.namespace or "*",
            binding.cluster_role,
            status,
            mapping.where,
            mapping.managed,
            origin,
            who,
            binding.name,
            binding.source,
            binding.kind,
            not (mapping.managed and binding.owned),
        )
        namespaces = (binding.namespace,) if binding.namespace else read.namespace_names
        for namespace in namespaces:
            column = (read.name, namespace)
            self.columns.add(column)
            self.cells[mapping.key][column].setdefault(binding.cluster_role, set()).add(status)
            self.cell_paths[(mapping.key, column)].add(path)
        self.path_principals[path].add(mapping.key)
        if path not in self.path_rules:
            self.path_rules[path] = _rules(read, binding)
            self.path_flags[path] = rbac.flags(binding.rules or (), binding.namespace)
            self.path_rbac[path] = binding.rules or ()
        self._row(mapping)

    def _row(self, mapping: _Mapping) -> None:
        if mapping not in self.mappings[mapping.key]:
            self.mappings[mapping.key].append(mapping)
        self.mechanisms[mapping.key].add(mapping.mechanism if mapping.managed else NOT_MANAGED)

    def _origin(self, mapping: _Mapping, binding: _Binding, subject_kind: str, subject: str) -> str:
        if not mapping.managed:
            return f"{mapping.label} for {mapping.arn}"
        key = (mapping.source, binding.source, subject_kind, subject)
        if key not in self.origins:
            self.origins[key] = self._managed_origin(mapping, binding, subject_kind, subject)
        return self.origins[key]

    def _managed_origin(self, mapping: _Mapping, binding: _Binding, subject_kind: str, subject: str) -> str:
        if not mapping.managed:
            return f"{mapping.label} for {mapping.arn}"
        if subject_kind == "User":
            tags = [s.strip() for s in binding.source.split(";") if s.strip().startswith("tag ")]
            return ", ".join(f"IAM {t}" for t in tags) or f"Kubernetes user {subject}"
        identities = self.config.identities
        found: list[str] = []
        for kind, name in _SOURCES.findall(mapping.source):
            if kind == "groups" and any(
                g.iam_group == name and subject in g.kubernetes_groups for g in identities.groups
            ):
                found.append(f"IAM group {name}")
            elif kind == "roles" and any(
                r.iam_role == name and subject in r.kubernetes_groups for r in identities.roles
            ):
                found.append(f"IAM role {name} (identities.roles)")
            elif kind == "permissionSets" and any(
                p.name == name and subject in p.kubernetes_groups for p in identities.permission_sets
            ):
                found.append(f"permission set {name} (identities.permissionSets)")
        return ", ".join(found) or mapping.source or "eks-iam-sync"

    # Findings of one cluster

    def _finding(
        self, read: ClusterRead, kind: str, severity: str, reason: str, message: str, principal: str = ""
    ) -> None:
        self.findings.append(Finding(kind, severity, read.name, reason, message, principal))

    def _findings(self, read: ClusterRead, now: _State, effective_now: Mapping[str, _Mapping]) -> None:
        run = read.run
        step = run.plan.identities
        for refusal in step.refusals:
            self._finding(read, "refusal", "error", refusal.reason, refusal.message, refusal.principal)
        for grant in run.desired.refusals:
            message = f"{grant.subject}: {grant.message}"
            self._finding(read, "refusal", "warning", grant.reason, message, grant.principal)
        for conflict in step.conflicts:
            self._finding(read, "conflict", "warning", "not-owned", conflict.describe(), conflict.wanted.iam_arn)
        self._cannot_authenticate(read, now, effective_now)
        self._drift(read)
        self._foreign(read, now)
        self._sizes(read)
        self._warnings(read, now)

    def _warnings(self, read: ClusterRead, now: _State) -> None:
        run = read.run
        step = run.plan.identities
        if read.aws_auth is not None:
            rendered = set()
            for problem in now.problems:
                rendered.add(problem.render())
                self._finding(read, "aws-auth", problem.severity, "parse", problem.render())
            for warning in step.warnings:
                if warning not in rendered:
                    self._finding(read, "warning", "warning", "identity-step", warning)
        else:
            for warning in step.warnings:
                self._finding(read, "warning", "warning", "identity-step", warning)
        for skipped in run.desired.skipped:
            self._finding(read, "warning", "warning", "namespace-missing", skipped)
        for role, error in sorted(read.rule_errors.items()):
            self._finding(read, "warning", "warning", "clusterrole-unread", f"ClusterRole {role}: {error}")
        if read.authentication_mode == "API_AND_CONFIG_MAP":
            usable = {k: m for k, m in now.access.items() if k not in now.stale}
            for key in sorted(usable.keys() & now.aws_auth.keys()):
                shadowed, entry = now.aws_auth[key], usable[key]
                if (shadowed.username, sorted(shadowed.groups)) != (entry.username, sorted(entry.groups)):
                    message = f"{shadowed.describe()}: EKS uses the access entry ({entry.describe()}) and ignores it"
                    self._finding(read, "warning", "info", "aws-auth-shadowed", message, entry.arn)

    def _cannot_authenticate(self, read: ClusterRead, now: _State, effective_now: Mapping[str, _Mapping]) -> None:
        step = read.run.plan.identities
        mechanism = "an access entry" if read.run.backend == "accessEntries" else "an aws-auth entry"
        for wanted in read.run.desired.identities:
            key = principal_key(wanted.iam_arn)
            if key in effective_now:
                continue
            refused = [r for r in step.refusals if r.principal and principal_key(r.principal) == key]
            if key in now.stale:
                reason, message = (
                    "stale-entry",
                    (
                        "its access entry was made for an earlier principal of the same ARN (the IAM unique id "
                        "differs), so it authenticates nobody; a reconcile deletes and recreates it"
                    ),
                )
            elif refused:
                reason, message = "refused", "; ".join(r.render() for r in refused)
            else:
                reason, message = "missing", f"no mapping in this cluster yet; a reconcile creates {mechanism}"
                if step.status == "refused":
                    message += f", once this is lifted: {'; '.join(r.render() for r in step.refusals)}"
            self._finding(read, "cannot-authenticate", "warning", reason, message, wanted.iam_arn)

    def _drift(self, read: ClusterRead) -> None:
        planned = plan_json(read.run)
        held = "held by a refusal: " if planned["identities"]["status"] == "refused" else ""
        for change in planned["identities"]["changes"]:
            self._finding(read, "drift", "info", f"identity-{change['action']}", held + change["text"], change["arn"])
        for action in planned["roleBindings"]:
            self._finding(read, "drift", "info", f"rolebinding-{action['action']}", action["text"])

    def _foreign(self, read: ClusterRead, now: _State) -> None:
        kinds = {e.principal_arn.lower(): e.type for e in read.access_entries or ()}
        for mapping in (*now.aws_auth.values(), *now.access.values()):
            if mapping.managed:
                continue
            node = bool(NODE_GROUPS.intersection(mapping.groups)) or kinds.get(mapping.arn.lower(), "STANDARD") not in (
                "STANDARD",
                "",
            )
            if mapping.key in self.break_glass:
                severity, reason, note = "info", "break-glass", " (awsAuth.breakGlassArns: never changed)"
            elif _CLUSTER_ADMIN_GROUP in mapping.groups:
                severity, reason, note = "warning", "cluster-admin", f" ({_CLUSTER_ADMIN_GROUP}: full cluster admin)"
            elif node:
                severity, reason, note = "info", "node", " (nodes)"
            elif mapping.key == self.read_by:
                severity, reason, note = "info", "reader", " (who read this report: never changed)"
            else:
                severity, reason, note = "info", "not-managed", ""
            self._finding(read, "foreign", severity, reason, mapping.describe() + note, mapping.arn)

    def _sizes(self, read: ClusterRead) -> None:
        for measure in _measures(read):
            share = measure.share
            severity = "error" if share > 1 else "warning" if share > _warning_share(measure) else "info"
            message = f"{measure.what}: {_amount(measure.used, measure.unit)} of {_amount(measure.limit, measure.unit)}"
            self._finding(read, "size", severity, measure.what.replace(" ", "-"), f"{message} ({share:.1%})")

    def _summary(self, read: ClusterRead, now: _State, effective_now: Mapping[str, _Mapping]) -> ClusterSummary:
        run = read.run
        drift = len(run.plan.identities.changes) + len(run.plan.bindings)
        return ClusterSummary(
            read.name,
            read.region,
            "read",
            read.authentication_mode,
            run.backend,
            namespaces=read.namespaces,
            bindings=len(now.bindings),
            mappings=len(effective_now),
            drift=drift,
            measures=_measures(read),
            provenance=provenance.cluster(read.aws_auth, read.rbac, read.access_entries, read.policies),
        )

    # The whole report

    def report(self, meta: Meta) -> AccessReport:
        columns = sorted(self.columns)
        index = {column: i for i, column in enumerate(columns)}
        path_ids = {key: f"p{i + 1}" for i, key in enumerate(sorted(self.path_principals))}
        principals = sorted((self._principal(key, index, path_ids) for key in self.mappings), key=_row_order)
        counts = [0] * len(columns)
        for principal in principals:
            for cell in principal.cells:
                counts[cell.column] += cell.status != INEFFECTIVE  # it reaches nobody
        paths = tuple(
            Path(
                path_ids[key],
                key[0],
                key[1],
                key[2],
                key[3],
                AWS_AUTH if key[4] != ACCESS_ENTRY_KEY else ACCESS_ENTRY,
                "access entry" if key[4] == ACCESS_ENTRY_KEY else f"aws-auth {key[4]} entry",
                key[5],
                key[6],
                key[7],
                f"{key[1]}/{key[8]}" if key[10] == ROLE_BINDING else key[8],
                key[9],
                self.path_rules[key],
                len(self.path_principals[key]),
                kind=key[10],
                foreign=key[11],
                flags=self.path_flags[key],
                risk=rbac.risk(self.path_flags[key]),
            )
            for key in sorted(self.path_principals)
        )
        order = {kind: i for i, kind in enumerate(FINDING_KINDS)}
        findings = sorted(
            [*self.findings, *self._risks()],
            key=lambda f: (order[f.kind], f.cluster, SEVERITIES.index(f.severity), f.principal),
        )
        return AccessReport(
            meta,
            tuple(self.summaries),
            tuple(Column(c, n, counts[index[(c, n)]]) for c, n in columns),
            tuple(principals),
            paths,
            tuple(findings),
        )

    def _allowed(self, paths: frozenset[_PathKey]) -> tuple[rbac.Allowed, ...]:
        """Thousands of cells share a few sets of paths: each set is merged once."""
        if paths not in self.allowed_of:
            self.allowed_of[paths] = rbac.effective(r for p in paths for r in self.path_rbac[p])
        return self.allowed_of[paths]

    def _own_flags(self, key: str, cluster: str) -> set[str]:
        """What the service's own identity can do beyond its RBAC: rewrite aws-auth (its Role in
        kube-system), or create access entries (its IAM policy, which the cluster does not show)."""
        backend = self.own.get((cluster, key))
        if backend is None:
            return set()
        return {rbac.ACCESS_ENTRY_WRITE if backend == "accessEntries" else rbac.AWS_AUTH_WRITE}

    def _risks(self) -> list[Finding]:
        """One finding per principal and cluster whose access is critical, and the service's own identity always."""
        flags: dict[tuple[str, str], set[str]] = defaultdict(set)
        foreign: dict[tuple[str, str], bool] = defaultdict(bool)
        for (key, column), behind in self.cell_paths.items():
            for path in behind:
                if path[3] not in _NOT_IN_PLACE:
                    flags[(column[0], key)].update(self.path_flags[path])
                    foreign[(column[0], key)] |= path[11]
        for cluster, key in self.own:
            flags[(cluster, key)] |= self._own_flags(key, cluster)
        found = []
        for (cluster, key), raised in sorted(flags.items()):
            arn = self.iam.arns.get(key) or self.mappings[key][0].arn
            named = ", ".join(f for f in rbac.FLAGS if f in raised)
            if (cluster, key) in self.own:
                message = f"eks-iam-sync's own identity can: {named}; it can therefore grant access to anyone"
                found.append(Finding("risk", "error", cluster, "service-identity", message, arn))
            elif rbac.risk(raised) == "critical":
                outside = f" ({OUTSIDE})" if foreign[(cluster, key)] else ""
                found.append(Finding("risk", "error", cluster, "critical", f"can: {named}{outside}", arn))
        return found

    def _principal(self, key: str, index: Mapping[tuple[str, str], int], path_ids: Mapping[_PathKey, str]) -> Principal:
        mappings = self.mappings[key]
        arn = self.iam.arns.get(key) or mappings[0].arn
        cells = []
        everywhere: set[str] = set()
        raised: set[str] = set()
        for column, roles in sorted(self.cells.get(key, {}).items(), key=lambda item: index[item[0]]):
            shown = tuple((role, _role_status(statuses)) for role, statuses in sorted(roles.items()))
            behind = self.cell_paths[(key, column)]
            paths = tuple(sorted((path_ids[p] for p in behind), key=lambda p: int(p[1:])))
            flags = {f for p in behind if p[3] not in _NOT_IN_PLACE for f in self.path_flags[p]}
            everywhere.update(p[0] for p in behind if p[1] == "*" and p[3] not in _NOT_IN_PLACE)
            flags |= self._own_flags(key, column[0])
            raised |= flags
            in_order = tuple(f for f in rbac.FLAGS if f in flags)
            allowed = self._allowed(frozenset(p for p in behind if p[3] not in _NOT_IN_PLACE))
            cells.append(Cell(index[column], shown, paths, in_order, any(p[11] for p in behind), allowed))
        for cluster, own in self.own:
            if own == key:
                raised |= self._own_flags(key, cluster)
        return Principal(
            arn=arn,
            name=arns.name_of(arn),
            kind=principal_kind(arn),
            in_iam=key in self.iam.arns,
            iam_groups=self.iam.groups.get(key, ()),
            kubernetes_groups=tuple(sorted({g for m in mappings for g in m.groups})),
            usernames=tuple(sorted({m.username for m in mappings})),
            mechanisms=tuple(m for m in (AWS_AUTH, ACCESS_ENTRY, NOT_MANAGED) if m in self.mechanisms[key]),
            cells=tuple(cells),
            cluster_wide=tuple(sorted(everywhere)),
            flags=tuple(f for f in rbac.FLAGS if f in raised),
            risk=rbac.risk(raised) if cells or raised else "none",
        )


def _role_status(statuses: set[str]) -> str:
    """A ClusterRole reached several ways: in place if one way is; a way removed while another is
    added (aws-auth -> access entry) keeps the access, so that is in place too."""
    if ACTIVE in statuses or {PENDING, REMOVING} <= statuses:
        return ACTIVE
    if statuses == {INEFFECTIVE}:
        return INEFFECTIVE
    return PENDING if PENDING in statuses else REMOVING


def _never_matches(where: str, arn: str, username: str) -> str:
    """Why aws-iam-authenticator never maps anyone through this aws-auth entry (the problems that
    read_aws_auth reports for it), or empty."""
    parsed = arns.parse(arn)
    if parsed is None:
        return "not an ARN"
    if where == "mapRoles" and parsed.kind == "role" and parsed.path not in ("", "/"):
        return "a role ARN with a path never matches (STS reports roles without their path)"
    if not username:
        return "an empty username: the authenticator rejects the caller"
    return ""


def _row_order(principal: Principal) -> tuple[bool, str, str]:
    """The cluster-wide band first (whoever reaches every namespace of a cluster), then by name."""
    return (not principal.cluster_wide, principal.name.lower(), principal.arn)


def _after(read: ClusterRead, now: _State) -> _State:
    """``now`` with the plan applied, as a reconcile would (nothing of a refused identity step)."""
    step = read.run.plan.identities
    aws_auth, access, stale = dict(now.aws_auth), dict(now.access), set(now.stale)
    if step.status == "write":
        for change in step.changes:
            target = access if change.key == ACCESS_ENTRY_KEY else aws_auth
            if change.action == "remove":
                if change.before is not None:
                    target.pop(principal_key(change.before.arn), None)
                continue
            if change.after is None:
                continue
            key = principal_key(change.after.arn)
            after = change.after
            target[key] = _Mapping(key, after.arn, after.username, after.groups, change.key, True, change.source)
            stale.discard(key)
    bindings = dict(now.bindings)
    held = any(r.reason == "deletion-breaker" for r in step.refusals)
    for action in read.run.plan.bindings:
        if isinstance(action, DeleteBinding):
            if not (held and action.observed.principal is not None):
                bindings.pop(action.key, None)
            continue
        wanted = action.desired
        subjects = ((wanted.subject_kind, wanted.subject_name),)
        rules = _role_rules(read, wanted.cluster_role, wanted.namespace)
        bindings[wanted.key] = _Binding(
            wanted.namespace, wanted.name, wanted.cluster_role, subjects, wanted.source, rules=rules
        )
    return _State(aws_auth, access, frozenset(stale), bindings, now.problems)


def _grants(
    mappings: Mapping[str, _Mapping], bindings: Mapping[tuple[str, str], _Binding]
) -> dict[_GrantKey, tuple[_Mapping, _Binding, str, str]]:
    holders_of: dict[str, dict[str, list[_Mapping]]] = {"Group": defaultdict(list), "User": defaultdict(list)}
    holders_of["Entry"] = defaultdict(list)
    for mapping in mappings.values():
        for group in {*mapping.groups, _EVERYONE}:
            holders_of["Group"][group].append(mapping)
        holders_of["User"][mapping.username].append(mapping)
        if mapping.where == ACCESS_ENTRY_KEY:
            holders_of["Entry"][mapping.key].append(mapping)
    found: dict[_GrantKey, tuple[_Mapping, _Binding, str, str]] = {}
    for binding in bindings.values():
        for kind, name in binding.subjects:
            holders: Iterable[_Mapping] = holders_of[kind].get(name, ()) if kind in holders_of else ()
            for mapping in holders:
                key = (mapping.key, mapping.where, binding.namespace, binding.cluster_role, binding.name, kind, name)
                found[key] = (mapping, binding, kind, name)
    return found


def _rules(read: ClusterRead, binding: _Binding) -> tuple[str, ...]:
    if binding.rules is not None:
        return tuple(rbac.describe(rule) for rule in binding.rules)
    role = binding.cluster_role
    if role in read.rules:
        return tuple(read.rules[role])
    return (f"(rules not read: {read.rule_errors.get(role, 'unknown')})",)


def _role_rules(read: ClusterRead, role: str, namespace: str) -> tuple[RbacRule, ...] | None:
    """The rules of a RoleBinding's role (``Role/<name>`` for a Role) from the RBAC objects read; None
    when they were not read or the role does not exist."""
    if read.rbac is None:
        return None
    if role.startswith("Role/"):
        name = role.removeprefix("Role/")
        return next((r.rules for r in read.rbac.roles if r.name == name and r.namespace == namespace), None)
    return next((r.rules for r in read.rbac.cluster_roles if r.name == role), None)


def _role_name(binding: RbacBinding) -> str:
    return binding.role_name if binding.role_kind == "ClusterRole" else f"{binding.role_kind}/{binding.role_name}"


def _outside(read: ClusterRead) -> dict[tuple[str, str], _Binding]:
    """What grants access besides the owned RoleBindings: system:masters (the API server lets it do
    anything, RBAC unasked), RoleBindings eks-iam-sync does not own, and ClusterRoleBindings whose
    rules reach inside namespaces (each then reaches every namespace)."""
    masters = "the API server allows system:masters everything; RBAC is not consulted"
    found = {
        ("", "#system:masters"): _Binding(
            "", masters, MASTERS, (("Group", MASTERS),), "built in", MASTERS, owned=False, rules=_MASTERS_RULES
        )
    }
    if read.rbac is None:
        return found
    for binding in read.rbac.role_bindings:
        if binding.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE:
            continue  # owned: read as such (read.bindings), and changed by the plan
        role = _role_name(binding)
        rules = _role_rules(read, role, binding.namespace)
        found[(binding.namespace, binding.name)] = _Binding(
            binding.namespace, binding.name, role, binding.subjects, OUTSIDE, owned=False, rules=rules
        )
    for binding in read.rbac.cluster_role_bindings:
        rules = _role_rules(read, binding.role_name, "")
        if rules is None or not rbac.reaches_namespaces(rules):
            continue
        found[("", "#crb " + binding.name)] = _Binding(
            "", binding.name, binding.role_name, binding.subjects, OUTSIDE, CLUSTER_ROLE_BINDING, False, rules
        )
    return found


def _policies(read: ClusterRead, access: Mapping[str, _Mapping]) -> dict[tuple[str, str], _Binding]:
    """The access policies of the access entries, as grants to the entry itself: cluster scope reaches
    every namespace, namespace scope the namespaces it names (a trailing * a prefix)."""
    cluster_roles = {r.name: r.rules for r in read.rbac.cluster_roles} if read.rbac is not None else {}
    found: dict[tuple[str, str], _Binding] = {}
    for key, mapping in access.items():
        for policy in read.policies.get(mapping.arn.lower(), ()):
            name = rbac.policy_name(policy.policy_arn)
            known = rbac.ACCESS_POLICIES.get(name)
            equivalent = f"; rules as ClusterRole {known.equivalent}, its documented equivalent" if known else ""
            rules = rbac.policy_rules(name, cluster_roles)
            subjects = (("Entry", key),)
            if policy.scope == "cluster":
                text = f"{name}, cluster scope (EKS{equivalent})"
                found[("", f"#policy {key} {name}")] = _Binding(
                    "", text, name, subjects, "EKS", ACCESS_POLICY, owned=False, rules=rules
                )
                continue
            shown = ", ".join(policy.namespaces)
            text = f"{name}, namespace scope [{shown}] (EKS{equivalent})"
            for namespace in read.namespace_names:
                if rbac.scope_covers(policy.namespaces, namespace):
                    found[(namespace, f"#policy {key} {name}")] = _Binding(
                        namespace, text, name, subjects, "EKS", ACCESS_POLICY, owned=False, rules=rules
                    )
    return found


def _measures(read: ClusterRead) -> tuple[Measure, ...]:
    found = []
    if read.aws_auth is not None:
        shares = dict(size_shares(read.aws_auth.data, read.aws_auth.annotations))
        found.append(Measure("aws-auth data", round(shares["data"] * DATA_LIMIT_BYTES), DATA_LIMIT_BYTES, "bytes"))
        used = round(shares["annotations"] * ANNOTATIONS_LIMIT_BYTES)
        found.append(Measure("aws-auth annotations", used, ANNOTATIONS_LIMIT_BYTES, "bytes"))
    if read.access_entries is not None:
        found.append(Measure("access entries", len(read.access_entries), ACCESS_ENTRY_QUOTA, "entries"))
    return tuple(found)


def _warning_share(measure: Measure) -> float:
    return QUOTA_WARNING_SHARE if measure.unit == "entries" else SIZE_WARNING_SHARE


def _amount(value: int, unit: str) -> str:
    if unit != "bytes":
        return f"{value} {unit}"
    if value >= 1024 * 1024:
        return f"{value / (1024 * 1024):.2f} MiB"
    if value >= 1024:
        return f"{value / 1024:.1f} KiB"
    return f"{value} B"


# --------------------------------------------------------------------------------------------------
# JSON (``--format json``): the same model


def as_json(report: AccessReport) -> dict[str, Any]:
    """The model; its last key, ``modelSha256``, the SHA-256 of all the others (provenance.model_digest)."""
    document = _document(report)
    document[provenance.MODEL_DIGEST_KEY] = provenance.model_digest(document)
    return document


def _document(report: AccessReport) -> dict[str, Any]:
    meta = report.meta
    columns = report.columns
    return {
        "schema": SCHEMA,
        "generatedAt": meta.generated_at,
        "configuration": {"source": meta.config_source, "sha256": meta.config_sha256},
        "version": meta.version,
        "readBy": meta.read_by,
        "provenance": {
            "accounts": list(report.accounts),
            "iamReadAt": meta.iam_read_at,
            "iamSha256": report.iam_sha256,
            "clusters": {c.name: dict(c.provenance) for c in report.clusters if c.status == "read"},
        },
        "clusters": [_cluster_json(c) for c in report.clusters],
        "namespaces": [{"cluster": c.cluster, "namespace": c.namespace, "principals": c.principals} for c in columns],
        "principals": [
            {
                "arn": p.arn,
                "name": p.name,
                "kind": p.kind,
                "inIam": p.in_iam,
                "iamGroups": list(p.iam_groups),
                "kubernetesGroups": list(p.kubernetes_groups),
                "usernames": list(p.usernames),
                "mechanisms": list(p.mechanisms),
                "clusterWide": list(p.cluster_wide),
                "risk": p.risk,
                "flags": list(p.flags),
                "access": [
                    {
                        "cluster": columns[cell.column].cluster,
                        "namespace": columns[cell.column].namespace,
                        "status": cell.status,
                        "clusterRoles": [{"name": role, "status": status} for role, status in cell.roles],
                        "paths": list(cell.paths),
                        "flags": list(cell.flags),
                        "grantedOutside": cell.foreign,
                        "allowed": [
                            {"apiGroup": g, "resource": r, "verbs": list(v), "resourceNames": list(n)}
                            for g, r, v, n in cell.allowed
                        ],
                    }
                    for cell in p.cells
                ],
            }
            for p in report.principals
        ],
        "paths": [
            {
                "id": p.id,
                "cluster": p.cluster,
                "namespace": p.namespace,
                "clusterRole": p.cluster_role,
                "status": p.status,
                "mechanism": p.mechanism,
                "mapping": p.mapping,
                "managed": p.managed,
                "origin": p.origin,
                "subject": p.subject,
                "grant": p.kind,
                "roleBinding": p.binding,
                "roleBindingSource": p.binding_source,
                "grantedOutside": p.foreign,
                "rules": list(p.rules),
                "flags": list(p.flags),
                "risk": p.risk,
                "principals": p.principals,
                "chain": [{"step": step, "what": what} for step, what in p.chain],
            }
            for p in report.paths
        ],
        "findings": [
            {
                "kind": f.kind,
                "severity": f.severity,
                "cluster": f.cluster,
                "reason": f.reason,
                "principal": f.principal,
                "message": f.message,
            }
            for f in report.findings
        ],
    }


def _cluster_json(cluster: ClusterSummary) -> dict[str, Any]:
    found: dict[str, Any] = {"name": cluster.name, "region": cluster.region, "status": cluster.status}
    if cluster.status == "failed":
        return {**found, "error": cluster.error}
    return {
        **found,
        "authenticationMode": cluster.authentication_mode,
        "backend": cluster.backend,
        "namespaces": cluster.namespaces,
        "roleBindings": cluster.bindings,
        "mappings": cluster.mappings,
        "drift": cluster.drift,
        "limits": [{"what": m.what, "used": m.used, "limit": m.limit, "unit": m.unit} for m in cluster.measures],
    }
