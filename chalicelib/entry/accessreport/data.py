"""The access report's data: the model (what ``build_report`` returns and every format renders) and
the facts read for it. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.entry.accessreport import rbac
from chalicelib.model import arns
from chalicelib.model.ports import (
    AssociatedPolicy,
    ObservedAccessEntry,
    ObservedBinding,
    ObservedConfigMap,
    RbacRule,
    RbacSnapshot,
)
from chalicelib.run.reconcile import ClusterReport

SCHEMA = "eks-iam-sync/access-report/v2"
ACTIVE, PENDING, REMOVING = "active", "pending", "removing"
INEFFECTIVE = "ineffective"  # through an aws-auth entry the authenticator never matches
STATUS_ORDER = (ACTIVE, PENDING, REMOVING, INEFFECTIVE)  # a role reached several ways shows the first that applies
NOT_IN_PLACE = (REMOVING, INEFFECTIVE)  # what a path's rules are not counted for (flags, verbs, risk)
AWS_AUTH, ACCESS_ENTRY, NOT_MANAGED = "aws-auth", "access entry", "not managed"
KINDS = ("user", "role", "permission set", "other")
NEVER = "never"  # Principal.last_used when IAM has no record of a use
FINDING_KINDS = {
    "cluster-failed": "Clusters not read",
    "incomplete": "Not read: access that may be missing here",
    "refusal": "Refusals",
    "conflict": "Conflicts",
    "cannot-authenticate": "In IAM, but cannot authenticate",
    "drift": "Drift: what a reconcile would change",
    "risk": "Risky access",
    "dormant": "Dormant: access not used",
    "foreign": "Mappings eks-iam-sync does not manage",
    "size": "Size against limits",
    "aws-auth": "aws-auth as EKS reads it",
    "warning": "Warnings",
}
SEVERITIES = ("error", "warning", "info")
CLUSTER_ADMIN_GROUP = "system:masters"
EVERYONE = "system:authenticated"  # every authenticated principal is in it, whatever its mapping says
OUTSIDE = "granted outside eks-iam-sync"
ROLE_BINDING, CLUSTER_ROLE_BINDING = "RoleBinding", "ClusterRoleBinding"
MASTERS, ACCESS_POLICY = "system:masters", "access policy"
MASTERS_RULES = (RbacRule(("*",), ("*",), ("*",)), RbacRule(("*",), non_resource_urls=("*",)))


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
    policy_errors: Mapping[str, str] = field(default_factory=dict)  # lower-case ARN ("": all) -> why not read
    custom_resources: tuple[str, ...] = ()  # CRD names, read when an entry holds AmazonEKSEditPolicy


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
    last_used: str = ""  # ISO 8601 when IAM recorded a use, NEVER when it has no record, "" when not read
    last_used_how: str = ""  # role | console | access key AKIA…
    dormant: bool = False  # has access, and no use recorded within the report's dormant days
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
