"""The findings of one cluster: refusals, conflicts, who cannot authenticate, drift, mappings
eks-iam-sync does not manage, sizes against limits, warnings. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from chalicelib.engine.accessentries.plan import QUOTA_WARNING_SHARE
from chalicelib.engine.awsauth.guardrails import (
    ANNOTATIONS_LIMIT_BYTES,
    DATA_LIMIT_BYTES,
    NODE_GROUPS,
    SIZE_WARNING_SHARE,
    size_shares,
)
from chalicelib.entry.accessreport import rbac
from chalicelib.entry.accessreport.data import (
    CLUSTER_ADMIN_GROUP,
    NOT_IN_PLACE,
    OUTSIDE,
    ClusterRead,
    Finding,
    Measure,
    principal_key,
)
from chalicelib.entry.accessreport.grants import (
    Mapped,
    PathKey,
    State,
)
from chalicelib.model.ownership import (
    ACCESS_ENTRY_QUOTA,
)
from chalicelib.run.results import as_json as plan_json


def measures(read: ClusterRead) -> tuple[Measure, ...]:
    found = []
    if read.aws_auth is not None:
        shares = dict(size_shares(read.aws_auth.data, read.aws_auth.annotations))
        found.append(Measure("aws-auth data", round(shares["data"] * DATA_LIMIT_BYTES), DATA_LIMIT_BYTES, "bytes"))
        used = round(shares["annotations"] * ANNOTATIONS_LIMIT_BYTES)
        found.append(Measure("aws-auth annotations", used, ANNOTATIONS_LIMIT_BYTES, "bytes"))
    if read.access_entries is not None:
        found.append(Measure("access entries", len(read.access_entries), ACCESS_ENTRY_QUOTA, "entries"))
    return tuple(found)


def warning_share(measure: Measure) -> float:
    return QUOTA_WARNING_SHARE if measure.unit == "entries" else SIZE_WARNING_SHARE


def amount(value: int, unit: str) -> str:
    if unit != "bytes":
        return f"{value} {unit}"
    if value >= 1024 * 1024:
        return f"{value / (1024 * 1024):.2f} MiB"
    if value >= 1024:
        return f"{value / 1024:.1f} KiB"
    return f"{value} B"


class FindingsOf:
    """What ``_Builder`` finds per cluster (a mixin: the builder holds the findings)."""

    findings: list[Finding]
    break_glass: set[str]
    read_by: str
    iam: Any  # the builder's IAM index: .arns, principal key -> ARN as IAM reports it
    mappings: Mapping[str, list[Mapped]]
    cell_paths: Mapping[tuple[str, tuple[str, str]], set[PathKey]]
    path_flags: Mapping[PathKey, tuple[str, ...]]
    own: Mapping[tuple[str, str], str]

    def _finding(
        self, read: ClusterRead, kind: str, severity: str, reason: str, message: str, principal: str = ""
    ) -> None:
        self.findings.append(Finding(kind, severity, read.name, reason, message, principal))

    def _findings(self, read: ClusterRead, now: State, effective_now: Mapping[str, Mapped]) -> None:
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
        self._edit_without_crds(read)

    def _edit_without_crds(self, read: ClusterRead) -> None:
        """AmazonEKSEditPolicy lists Kubernetes' own resources only: in a cluster with CRDs, who holds it
        by policy cannot edit custom resources (the `edit` ClusterRole aggregates them; the policy does not)."""
        if not read.custom_resources:
            return
        shown = ", ".join(read.custom_resources[:3]) + (", ..." if len(read.custom_resources) > 3 else "")
        for arn, found in sorted(read.policies.items()):
            if any(p.policy_arn.endswith("/AmazonEKSEditPolicy") for p in found):
                message = (
                    f"AmazonEKSEditPolicy grants no custom resources and this cluster has {len(read.custom_resources)} "
                    f"CRDs ({shown}): grant those through RBAC (kubernetesGroups)"
                )
                self._finding(read, "warning", "warning", "edit-policy-without-crds", message, arn)

    def _warnings(self, read: ClusterRead, now: State) -> None:
        run = read.run
        rendered = set()
        if read.aws_auth is not None:
            for problem in now.problems:
                rendered.add(problem.render())
                self._finding(read, "aws-auth", problem.severity, "parse", problem.render())
        for warning in run.plan.identities.warnings:
            if warning not in rendered:  # the identity step repeats aws-auth's problems
                self._finding(read, "warning", "warning", "identity-step", warning)
        for skipped in run.desired.skipped:
            self._finding(read, "warning", "warning", "namespace-missing", skipped)
        for role, error in sorted(read.rule_errors.items()):
            self._finding(read, "warning", "warning", "clusterrole-unread", f"ClusterRole {role}: {error}")
        if read.authentication_mode == "API_AND_CONFIG_MAP":
            self._shadowed(read, now)

    def _shadowed(self, read: ClusterRead, now: State) -> None:
        usable = {k: m for k, m in now.access.items() if k not in now.stale}
        for key in sorted(usable.keys() & now.aws_auth.keys()):
            shadowed, entry = now.aws_auth[key], usable[key]
            if (shadowed.username, sorted(shadowed.groups)) != (entry.username, sorted(entry.groups)):
                message = f"{shadowed.describe()}: EKS uses the access entry ({entry.describe()}) and ignores it"
                self._finding(read, "warning", "info", "aws-auth-shadowed", message, entry.arn)

    def _cannot_authenticate(self, read: ClusterRead, now: State, effective_now: Mapping[str, Mapped]) -> None:
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

    def _foreign(self, read: ClusterRead, now: State) -> None:
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
            elif CLUSTER_ADMIN_GROUP in mapping.groups:
                severity, reason, note = "warning", "cluster-admin", f" ({CLUSTER_ADMIN_GROUP}: full cluster admin)"
            elif node:
                severity, reason, note = "info", "node", " (nodes)"
            elif mapping.key == self.read_by:
                severity, reason, note = "info", "reader", " (who read this report: never changed)"
            else:
                severity, reason, note = "info", "not-managed", ""
            self._finding(read, "foreign", severity, reason, mapping.describe() + note, mapping.arn)

    def _sizes(self, read: ClusterRead) -> None:
        for measure in measures(read):
            share = measure.share
            severity = "error" if share > 1 else "warning" if share > warning_share(measure) else "info"
            message = f"{measure.what}: {amount(measure.used, measure.unit)} of {amount(measure.limit, measure.unit)}"
            self._finding(read, "size", severity, measure.what.replace(" ", "-"), f"{message} ({share:.1%})")

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
                if path[3] not in NOT_IN_PLACE:
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
