"""The access report's builder: which principal reaches which namespace, through which chain, and
what is wrong or about to change. Pure: built from what the service layer read from IAM and each
cluster, and from the display-only reconcile of that cluster (the same desired state and plan as
``eks-iam-sync plan``; its drift is ``report.as_json`` of that plan).

Three states are compared, per cluster (``observed``: now; ``grants``: after, and the grants of each):

- **now**: the mappings the cluster holds (aws-auth entries, access entries; which of them EKS uses
  follows the authentication mode) and everything that grants to them: the owned RoleBindings as
  read, RoleBindings others made, ClusterRoleBindings whose rules reach into namespaces,
  system:masters, and the access entries' EKS access policies with their scopes;
- **after**: the same with the plan applied (identity changes when the step would write, RoleBinding
  actions, tag-grant deletions held back by the deletion breaker); the plan changes only what
  eks-iam-sync owns;
- a grant (principal, namespace, ClusterRole, binding, subject) in both is *active*, only after is
  *pending* (a reconcile adds it), only now is *removing* (a reconcile removes it); through an
  aws-auth entry the authenticator never matches it is *ineffective*.

A grant from a ClusterRoleBinding, system:masters or a cluster-scoped access policy reaches every
namespace of its cluster (the cluster-wide band); a grant whose mapping or binding eks-iam-sync did
not make is marked as granted outside it. When the reader may not list RBAC objects, only the owned
RoleBindings (and system:masters) are known, and a finding says so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from chalicelib.config import Config
from chalicelib.engine.accessentries.plan import KEY as ACCESS_ENTRY_KEY
from chalicelib.entry.accessreport import provenance, rbac
from chalicelib.entry.accessreport.data import (
    ACCESS_ENTRY,
    ACTIVE,
    AWS_AUTH,
    FINDING_KINDS,
    INEFFECTIVE,
    NOT_IN_PLACE,
    NOT_MANAGED,
    PENDING,
    REMOVING,
    ROLE_BINDING,
    SEVERITIES,
    AccessReport,
    Cell,
    ClusterFailed,
    ClusterRead,
    ClusterSummary,
    Column,
    Finding,
    Meta,
    Path,
    Principal,
    principal_key,
    principal_kind,
)
from chalicelib.entry.accessreport.findings import (
    FindingsOf,
    measures,
)
from chalicelib.entry.accessreport.grants import (
    Grant,
    Mapped,
    PathKey,
    State,
    grants_in,
    rule_lines,
    state_after,
)
from chalicelib.entry.accessreport.observed import state_now
from chalicelib.entry.accessreport.origins import managed_origin
from chalicelib.model import arns
from chalicelib.model.ownership import (
    SERVICE_GROUP,
    SERVICE_USERNAME,
)
from chalicelib.model.ports import (
    RbacRule,
)
from chalicelib.model.snapshot import IamSnapshot


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


class _Builder(FindingsOf):
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
        self.cell_paths: dict[tuple[str, tuple[str, str]], set[PathKey]] = defaultdict(set)
        self.path_principals: dict[PathKey, set[str]] = defaultdict(set)
        self.path_rules: dict[PathKey, tuple[str, ...]] = {}
        self.path_flags: dict[PathKey, tuple[str, ...]] = {}
        self.path_rbac: dict[PathKey, tuple[RbacRule, ...]] = {}
        self.allowed_of: dict[frozenset[PathKey], tuple[rbac.Allowed, ...]] = {}
        self.mappings: dict[str, list[Mapped]] = defaultdict(list)  # principal key -> its mappings (rows)
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
        after = state_after(read, now)
        effective_now, effective_after = now.effective(mode), after.effective(mode)
        grants_now = grants_in(effective_now, now.bindings)
        grants_after = grants_in(effective_after, after.bindings)
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
            whose = f"of {arn}" if arn else "of every access entry"
            self._finding(read, "incomplete", "error", "policies-unread", f"access policies {whose}: {error}", arn)
        self._findings(read, now, effective_now)
        self.summaries.append(self._summary(read, now, effective_now))

    def _now(self, read: ClusterRead) -> State:
        now, ledger_error = state_now(read, self.iam.ids)
        if ledger_error is not None:
            self._finding(
                read, "aws-auth", "error", "ledger-unreadable", f"{ledger_error}: every entry shown as unmanaged"
            )
        return now

    def _grant(
        self, read: ClusterRead, status: str, mapping: Mapped, binding: Grant, subject_kind: str, subject: str
    ) -> None:
        origin = self._origin(mapping, binding, subject_kind, subject)
        if subject_kind == "Entry":
            who = f"Kubernetes user {mapping.username} (the access entry's own)"
        else:
            who = f"Kubernetes {'group' if subject_kind == 'Group' else 'user'} {subject}"
        path: PathKey = (
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
            self.path_rules[path] = rule_lines(read, binding)
            self.path_flags[path] = rbac.flags(binding.rules or (), binding.namespace)
            self.path_rbac[path] = binding.rules or ()
        self._row(mapping)

    def _row(self, mapping: Mapped) -> None:
        if mapping not in self.mappings[mapping.key]:
            self.mappings[mapping.key].append(mapping)
        self.mechanisms[mapping.key].add(mapping.mechanism if mapping.managed else NOT_MANAGED)

    def _origin(self, mapping: Mapped, binding: Grant, subject_kind: str, subject: str) -> str:
        if not mapping.managed:
            return f"{mapping.label} for {mapping.arn}"
        key = (mapping.source, binding.source, subject_kind, subject)
        if key not in self.origins:
            self.origins[key] = managed_origin(self.config, mapping, binding, subject_kind, subject)
        return self.origins[key]

    # Findings of one cluster

    def _summary(self, read: ClusterRead, now: State, effective_now: Mapping[str, Mapped]) -> ClusterSummary:
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
            measures=measures(read),
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

    def _allowed(self, paths: frozenset[PathKey]) -> tuple[rbac.Allowed, ...]:
        """Thousands of cells share a few sets of paths: each set is merged once."""
        if paths not in self.allowed_of:
            self.allowed_of[paths] = rbac.effective(r for p in paths for r in self.path_rbac[p])
        return self.allowed_of[paths]

    def _principal(self, key: str, index: Mapping[tuple[str, str], int], path_ids: Mapping[PathKey, str]) -> Principal:
        mappings = self.mappings[key]
        arn = self.iam.arns.get(key) or mappings[0].arn
        cells = []
        everywhere: set[str] = set()
        raised: set[str] = set()
        for column, roles in sorted(self.cells.get(key, {}).items(), key=lambda item: index[item[0]]):
            shown = tuple((role, _role_status(statuses)) for role, statuses in sorted(roles.items()))
            behind = self.cell_paths[(key, column)]
            paths = tuple(sorted((path_ids[p] for p in behind), key=lambda p: int(p[1:])))
            flags = {f for p in behind if p[3] not in NOT_IN_PLACE for f in self.path_flags[p]}
            everywhere.update(p[0] for p in behind if p[1] == "*" and p[3] not in NOT_IN_PLACE)
            flags |= self._own_flags(key, column[0])
            raised |= flags
            in_order = tuple(f for f in rbac.FLAGS if f in flags)
            allowed = self._allowed(frozenset(p for p in behind if p[3] not in NOT_IN_PLACE))
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


def _row_order(principal: Principal) -> tuple[bool, str, str]:
    """The cluster-wide band first (whoever reaches every namespace of a cluster), then by name."""
    return (not principal.cluster_wide, principal.name.lower(), principal.arn)
