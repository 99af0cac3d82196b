"""Why can (or can't) this principal reach that namespace? Pure: answers from the desired state,
whether the cluster's identity backend maps each owned entry as desired (the caller asks the backend,
``IdentityBackend.mapping_of``) and the rules of the ClusterRoles involved."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from chalicelib.config import Config, session_username
from chalicelib.engine.desired import DesiredState, Refusal, configured_source
from chalicelib.model import arns, sources
from chalicelib.model.bindings import DesiredBinding
from chalicelib.model.identities import OwnedEntry, PolicyGrant


@dataclass(frozen=True)
class Grant:
    binding: DesiredBinding
    via: str  # "group rbac-x (namespaceGrants[0])" or "tag eks-access/ns=p"
    can: tuple[str, ...] = ()  # "pods: get, list, watch"

    def describe(self) -> str:
        """Where and why; a ClusterRoleBinding (an access policy at cluster scope on an aws-auth cluster)
        link by link: rule -> policy -> ClusterRoleBinding -> ClusterRole."""
        b = self.binding
        if b.cluster_wide:
            rules = [
                f"{sources.render(s.via)} -> access policy {s.name}" for s in b.sources if s.kind == "accessPolicy"
            ]
            via = ", ".join(rules) or self.via
            return f"every namespace: {via} -> ClusterRoleBinding {b.name} -> ClusterRole {b.cluster_role}"
        return f"namespace {b.namespace}: ClusterRole {b.cluster_role} via {self.via}"


# EKS authorizes access policies in an authorizer of its own, beside RBAC: no RoleBinding shows them, and
# `kubectl auth can-i --list` (rules reviews: RBAC only), `kubectl auth can-i --as` and impersonating
# proxies (the impersonated user has no access entry) never see them.
INVISIBLE = (
    "invisible to kubectl auth can-i (--list, --as) and to impersonating proxies: EKS authorizes it outside RBAC"
)


@dataclass(frozen=True)
class PolicyAccess:
    """Access from an EKS access policy: the rule behind it -> the access entry -> the policy -> its
    scope; ``associated``: the scope EKS holds now ("cluster", the namespaces), None when not associated."""

    grant: PolicyGrant
    associated: str | None = None

    @property
    def in_place(self) -> bool:
        return self.associated == scope_text(self.grant.namespaces)


@dataclass(frozen=True)
class Explanation:
    owned: OwnedEntry
    in_place: bool  # the cluster maps the principal exactly as desired (aws-auth entry or access entry)
    grants: tuple[Grant, ...] = ()
    refusals: tuple[Refusal, ...] = field(default=())
    policies: tuple[PolicyAccess, ...] = ()  # access-entry clusters only (aws-auth: RBAC equivalents in grants)


def scope_text(namespaces: Sequence[str]) -> str:
    return "cluster" if not namespaces else ", ".join(sorted(namespaces))


def policy_access(owned: OwnedEntry, associated: Mapping[str, str]) -> tuple[PolicyAccess, ...]:
    """``associated``: the entry's associations now, policy name -> scope text."""
    return tuple(PolicyAccess(g, associated.get(g.policy)) for g in owned.access_policies)


def explain(
    query: str,
    desired: DesiredState,
    in_place: Callable[[OwnedEntry], bool],
    rules: Mapping[str, Sequence[str]] | None = None,
) -> list[Explanation]:
    """``query``: an IAM ARN (a role session ARN too), an IAM user or role name, or a Kubernetes username.
    ``in_place`` tells whether the cluster maps an owned entry as desired (the backend knows how)."""
    rules = rules or {}
    found = []
    for owned in desired.identities:
        if not _matches(query, owned):
            continue
        entry = owned.entry
        grants = []
        for binding in desired.bindings:
            if binding.subject_kind == "Group" and binding.subject_name in entry.groups:
                via = f"group {binding.subject_name} ({binding.source})"
            elif binding.subject_kind == "User" and binding.subject_name == entry.username:
                via = binding.source
            else:
                continue
            grants.append(Grant(binding, via, tuple(rules.get(binding.cluster_role, ()))))
        refusals = tuple(r for r in desired.refusals if arns.fold(r.principal) == arns.fold(owned.iam_arn))
        found.append(Explanation(owned, in_place(owned), tuple(grants), refusals))
    return found


def refusals_for(query: str, desired: DesiredState) -> list[Refusal]:
    wanted = arns.fold(query)
    return [r for r in desired.refusals if wanted in (arns.fold(r.principal), arns.fold(arns.name_of(r.principal)))]


def _matches(query: str, owned: OwnedEntry) -> bool:
    """IAM ARNs and names as IAM compares them (ASCII case folded); a Kubernetes username exactly,
    as the API server compares it."""
    wanted = arns.fold(arns.canonical(query))
    entry = owned.entry
    return wanted in (arns.fold(entry.arn), arns.fold(owned.iam_arn), arns.fold(owned.name)) or query == entry.username


@dataclass(frozen=True)
class PersonGrant:
    """An IAM Identity Center person's access, link by link: the person (their Identity Store user)
    -> the granted group -> the permission set -> its role entries (shared by everyone it is
    assigned to) -> the User RoleBinding for their session's username -> the ClusterRole."""

    user_id: str
    group: str
    grant: str  # identityCenter.groupGrants[i]
    permission_set: str
    roles: tuple[OwnedEntry, ...]
    binding: DesiredBinding
    can: tuple[str, ...] = ()


def explain_person(
    query: str, config: Config, desired: DesiredState, rules: Mapping[str, Sequence[str]] | None = None
) -> list[PersonGrant]:
    """``query``: a person's Identity Store UserName (their session name), the Kubernetes username their
    session gets, or the ARN of their session (``assumed-role/AWSReservedSSO_<set>_<suffix>/<name>``)."""
    settings = config.identity_center
    if settings is None:
        return []
    parsed = arns.parse(query)
    session = parsed.session if parsed is not None and parsed.kind == "assumed-role" else query
    sets = {p.name: p for p in config.identities.permission_sets}
    found = []
    for binding in desired.bindings:
        if binding.sso_user is None:
            continue
        for index, grant in enumerate(settings.group_grants):
            permission_set = sets.get(grant.permission_set)
            if grant.group != binding.sso_group or grant.cluster_role != binding.cluster_role or not permission_set:
                continue
            rendered = session_username(permission_set.effective_username, session)
            if binding.subject_name not in (query, rendered):
                continue
            source = configured_source(permission_set)
            roles = tuple(o for o in desired.identities if source in o.sources)
            can = tuple((rules or {}).get(binding.cluster_role, ()))
            found.append(
                PersonGrant(
                    binding.sso_user,
                    grant.group,
                    f"identityCenter.groupGrants[{index}]",
                    grant.permission_set,
                    roles,
                    binding,
                    can,
                )
            )
            break
    return found
