"""Grants, per cluster, at one moment: the mappings (aws-auth entries, access entries; which of them
EKS uses follows the authentication mode) and everything that grants to them: RoleBindings (owned or
not), ClusterRoleBindings, system:masters and access policies; and the same with the plan applied. Pure."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

from chalicelib.engine.accessentries.plan import KEY as ACCESS_ENTRY_KEY
from chalicelib.engine.awsauth.model import Problem
from chalicelib.engine.explain import INVISIBLE
from chalicelib.engine.plan import DeleteBinding
from chalicelib.entry.accessreport import rbac
from chalicelib.entry.accessreport.data import (
    ACCESS_ENTRY,
    ACCESS_POLICY,
    AWS_AUTH,
    CLUSTER_ROLE_BINDING,
    EVERYONE,
    MASTERS,
    MASTERS_RULES,
    OUTSIDE,
    ROLE_BINDING,
    ClusterRead,
    principal_key,
)
from chalicelib.model import arns
from chalicelib.model.ownership import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
)
from chalicelib.model.ports import (
    RbacBinding,
    RbacRule,
)

# --------------------------------------------------------------------------------------------------
# Building it


@dataclass(frozen=True)
class Mapped:
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
class Grant:
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
class State:
    """Mappings (both kinds, by principal key) and owned RoleBindings at one moment."""

    aws_auth: Mapping[str, Mapped]
    access: Mapping[str, Mapped]
    stale: frozenset[str]  # access entries bound to an earlier principal of the same ARN
    bindings: Mapping[tuple[str, str], Grant]
    problems: tuple[Problem, ...] = ()  # aws-auth as EKS reads it (read once: 5 000 entries take a second)

    def effective(self, mode: str | None) -> dict[str, Mapped]:
        """The mapping EKS uses for each principal: aws-auth in CONFIG_MAP, access entries in API, an
        access entry before an aws-auth entry in API_AND_CONFIG_MAP. A stale entry authenticates nobody."""
        usable = {k: m for k, m in self.access.items() if k not in self.stale}
        if mode == "API":
            return usable
        if mode == "API_AND_CONFIG_MAP":
            return {**self.aws_auth, **usable}
        return dict(self.aws_auth)


# (principal key, mapping kind, namespace, ClusterRole, RoleBinding name, subject kind, subject name)
GrantKey = tuple[str, str, str, str, str, str, str]
# (cluster, namespace, ClusterRole, status, where, managed, origin, subject, binding, its source, its kind,
# granted outside eks-iam-sync)
PathKey = tuple[str, str, str, str, str, bool, str, str, str, str, str, bool]


def never_matches(where: str, arn: str, username: str) -> str:
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


def state_after(read: ClusterRead, now: State) -> State:
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
            target[key] = Mapped(key, after.arn, after.username, after.groups, change.key, True, change.source)
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
        rules = role_rules(read, wanted.cluster_role, wanted.namespace)
        bindings[wanted.key] = Grant(
            wanted.namespace, wanted.name, wanted.cluster_role, subjects, wanted.source, wanted.kind, rules=rules
        )
    return State(aws_auth, access, frozenset(stale), bindings, now.problems)


def grants_in(
    mappings: Mapping[str, Mapped], bindings: Mapping[tuple[str, str], Grant]
) -> dict[GrantKey, tuple[Mapped, Grant, str, str]]:
    holders_of: dict[str, dict[str, list[Mapped]]] = {"Group": defaultdict(list), "User": defaultdict(list)}
    holders_of["Entry"] = defaultdict(list)
    for mapping in mappings.values():
        for group in {*mapping.groups, EVERYONE}:
            holders_of["Group"][group].append(mapping)
        holders_of["User"][mapping.username].append(mapping)
        if mapping.where == ACCESS_ENTRY_KEY:
            holders_of["Entry"][mapping.key].append(mapping)
    per_session = [m for m in mappings.values() if _session_pattern(m.username) is not None]
    found: dict[GrantKey, tuple[Mapped, Grant, str, str]] = {}
    for binding in bindings.values():
        for kind, name in binding.subjects:
            holders: Iterable[Mapped] = holders_of[kind].get(name, ()) if kind in holders_of else ()
            if kind == "User":
                holders = [*holders, *(m for m in per_session if _renders(m.username, name))]
            for mapping in holders:
                key = (mapping.key, mapping.where, binding.namespace, binding.cluster_role, binding.name, kind, name)
                found[key] = (mapping, binding, kind, name)
    return found


@cache
def _session_pattern(username: str) -> re.Pattern[str] | None:
    """What a per-session username renders to (aws-iam-authenticator's renderTemplate): {{SessionName}}
    is the session name with '@' replaced by '-', {{SessionNameRaw}} the session name. None: the
    username has no session template (it is matched as written)."""
    parts = re.split(r"(\{\{SessionName(?:Raw)?\}\})", username)
    if len(parts) == 1:
        return None
    pieces = {"{{SessionName}}": "[^@]+", "{{SessionNameRaw}}": ".+"}
    return re.compile("".join(pieces.get(part, re.escape(part)) for part in parts))


def _renders(template: str, username: str) -> bool:
    """Whether a session of a mapping with this username template can be ``username`` (an Identity
    Center person's User RoleBinding reaches them through their permission set's role)."""
    pattern = _session_pattern(template)
    return pattern is not None and pattern.fullmatch(username) is not None


def rule_lines(read: ClusterRead, binding: Grant) -> tuple[str, ...]:
    if binding.rules is not None:
        return tuple(rbac.describe(rule) for rule in binding.rules)
    role = binding.cluster_role
    if role in read.rules:
        return tuple(read.rules[role])
    return (f"(rules not read: {read.rule_errors.get(role, 'unknown')})",)


def role_rules(read: ClusterRead, role: str, namespace: str) -> tuple[RbacRule, ...] | None:
    """The rules of a RoleBinding's role (``Role/<name>`` for a Role) from the RBAC objects read; None
    when they were not read or the role does not exist."""
    if read.rbac is None:
        return None
    if role.startswith("Role/"):
        name = role.removeprefix("Role/")
        return next((r.rules for r in read.rbac.roles if r.name == name and r.namespace == namespace), None)
    return next((r.rules for r in read.rbac.cluster_roles if r.name == role), None)


def role_name(binding: RbacBinding) -> str:
    return binding.role_name if binding.role_kind == "ClusterRole" else f"{binding.role_kind}/{binding.role_name}"


def outside_grants(read: ClusterRead) -> dict[tuple[str, str], Grant]:
    """What grants access besides the owned bindings: system:masters (the API server lets it do
    anything, RBAC unasked), RoleBindings eks-iam-sync does not own, and ClusterRoleBindings it does
    not own whose rules reach inside namespaces (each then reaches every namespace)."""
    masters = "the API server allows system:masters everything; RBAC is not consulted"
    found = {
        ("", "#system:masters"): Grant(
            "", masters, MASTERS, (("Group", MASTERS),), "built in", MASTERS, owned=False, rules=MASTERS_RULES
        )
    }
    if read.rbac is None:
        return found
    for binding in read.rbac.role_bindings:
        if binding.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE:
            continue  # owned: read as such (read.bindings), and changed by the plan
        role = role_name(binding)
        rules = role_rules(read, role, binding.namespace)
        found[(binding.namespace, binding.name)] = Grant(
            binding.namespace, binding.name, role, binding.subjects, OUTSIDE, owned=False, rules=rules
        )
    for binding in read.rbac.cluster_role_bindings:
        if binding.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE:
            continue  # owned (an access policy's equivalent at cluster scope): read as such, like RoleBindings
        rules = role_rules(read, binding.role_name, "")
        if rules is None or not rbac.reaches_namespaces(rules):
            continue
        found[("", "#crb " + binding.name)] = Grant(
            "", binding.name, binding.role_name, binding.subjects, OUTSIDE, CLUSTER_ROLE_BINDING, False, rules
        )
    return found


def policy_grants(read: ClusterRead, access: Mapping[str, Mapped]) -> dict[tuple[str, str], Grant]:
    """The access policies of the access entries, as grants to the entry itself: cluster scope reaches
    every namespace, namespace scope the namespaces it names (a trailing * a prefix). One the service
    associated (its entry's rule grants that policy) names the rule; any other is EKS's, outside it.
    Each is marked invisible to RBAC tools: EKS authorizes it outside RBAC."""
    cluster_roles = {r.name: r.rules for r in read.rbac.cluster_roles} if read.rbac is not None else {}
    wanted = {o.iam_arn.lower(): {g.policy: g for g in o.access_policies} for o in read.run.desired.identities}
    found: dict[tuple[str, str], Grant] = {}
    for key, mapping in access.items():
        for policy in read.policies.get(mapping.arn.lower(), ()):
            name = rbac.policy_name(policy.policy_arn)
            known = rbac.ACCESS_POLICIES.get(name)
            equivalent = f"; rules as ClusterRole {known.equivalent}, its documented equivalent" if known else ""
            rules = rbac.policy_rules(name, cluster_roles)
            subjects = (("Entry", key),)
            grant = wanted.get(mapping.arn.lower(), {}).get(name) if mapping.managed else None
            source, owned = (grant.source, True) if grant is not None else ("EKS", False)
            if policy.scope == "cluster":
                text = f"{name}, cluster scope (EKS{equivalent}; {INVISIBLE})"
                found[("", f"#policy {key} {name}")] = Grant(
                    "", text, name, subjects, source, ACCESS_POLICY, owned=owned, rules=rules
                )
                continue
            shown = ", ".join(policy.namespaces)
            text = f"{name}, namespace scope [{shown}] (EKS{equivalent}; {INVISIBLE})"
            for namespace in read.namespace_names:
                if rbac.scope_covers(policy.namespaces, namespace):
                    found[(namespace, f"#policy {key} {name}")] = Grant(
                        namespace, text, name, subjects, source, ACCESS_POLICY, owned=owned, rules=rules
                    )
    return found
