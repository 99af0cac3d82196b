"""The vocabulary of identity mapping, shared by every identity backend (aws-auth, access entries):
an IAM principal mapped to a Kubernetes username and groups, the entries the service wants, the
changes and conflicts a plan holds, refusals, and what carrying a step out achieved. Plain data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from chalicelib.model import arns, sources
from chalicelib.model.sources import Source

# Where aws-auth keeps an identity of each kind (``OwnedEntry.key``): desired state names the kind
# in these terms for both backends, so they live here, below both.
MAP_ROLES = "mapRoles"
MAP_USERS = "mapUsers"


@dataclass(frozen=True)
class Entry:
    """One mapping as the consumer loads it. ``extra`` keeps fields the consumer ignores (foreign
    aws-auth entries only) in their original order, so rewriting a key never drops them."""

    arn: str
    username: str
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=True, hash=False)

    @property
    def key(self) -> str:
        return self.arn.lower()

    def core(self) -> Entry:
        """What the consumer uses: the entry without the fields it ignores."""
        return Entry(self.arn, self.username, self.groups)

    def describe(self) -> str:
        return f"{self.arn} -> {self.username!r} {list(self.groups)}"


def user_mapped_for(arn: str, source: str, groups: Iterable[str]) -> str | None:
    """The user's name when this record (its ARN and written source) was made for one of ``groups``."""
    if arns.kind_of(arn) != "user" or not sources.groups_named(source) & {g.lower() for g in groups}:
        return None
    return arns.name_of(arn)


# The key of an access-policy association's change (access entries only).
POLICY_KEY = "accessPolicy"


@dataclass(frozen=True)
class PolicyGrant:
    """An EKS access policy an identity holds, by name: cluster scope when ``namespaces`` is empty,
    else those namespaces (a name, or a prefix ending in '*'), sorted. ``source``: the rules behind it."""

    policy: str
    namespaces: tuple[str, ...] = ()
    source: str = field(default="", compare=False)

    @property
    def cluster_scope(self) -> bool:
        return not self.namespaces

    def describe(self) -> str:
        return f"{self.policy} " + ("cluster" if self.cluster_scope else f"namespaces {list(self.namespaces)}")


def merged_grants(grants: Iterable[PolicyGrant]) -> tuple[PolicyGrant, ...]:
    """One grant per policy: namespaces merged, cluster scope wins; sources joined; sorted by policy."""
    by_policy: dict[str, list[PolicyGrant]] = {}
    for grant in grants:
        by_policy.setdefault(grant.policy, []).append(grant)
    merged = []
    for policy, found in sorted(by_policy.items()):
        sources = ", ".join(dict.fromkeys(g.source for g in found if g.source))
        wide = any(g.cluster_scope for g in found)
        namespaces = () if wide else tuple(sorted({n for g in found for n in g.namespaces}))
        merged.append(PolicyGrant(policy, namespaces, sources))
    return tuple(merged)


@dataclass(frozen=True)
class OwnedEntry:
    """An entry eks-iam-sync wants, and the rule or tag behind it.

    ``key`` is where aws-auth keeps it (mapRoles | mapUsers). ``principal_arn`` is the IAM ARN as IAM
    reports it, path included (access entries need it; aws-auth needs roles path-free, ``entry.arn``),
    and ``principal_id`` its unique id (AIDA…/AROA…) when known.
    """

    key: str
    entry: Entry
    sources: tuple[Source, ...]
    principal_arn: str = ""
    principal_id: str = ""
    # EKS access policies the identity holds (access entries associate them; aws-auth clusters bind
    # their RBAC equivalents instead, see DesiredState.policy_bindings).
    access_policies: tuple[PolicyGrant, ...] = ()

    @property
    def source(self) -> str:
        """The written form (the ledger's record, the access entry's tag, logs)."""
        return sources.render(self.sources, sources.IDENTITY_SEPARATOR)

    @property
    def iam_arn(self) -> str:
        return self.principal_arn or self.entry.arn

    @property
    def name(self) -> str:
        return arns.name_of(self.entry.arn)


@dataclass(frozen=True)
class Change:
    action: Literal["add", "update", "remove", "recreate"]
    key: str  # mapRoles | mapUsers | accessEntry
    before: Entry | None
    after: Entry | None
    source: str

    @property
    def arn(self) -> str:
        entry = self.after or self.before
        if entry is None:
            raise ValueError("a change without an entry")
        return entry.arn

    def describe(self) -> str:
        if self.key == POLICY_KEY:
            return self._describe_policy()
        if self.action == "add" and self.after:
            return f"+ {self.key} {self.after.describe()}  ({self.source})"
        if self.action == "remove" and self.before:
            return f"- {self.key} {self.before.describe()}  ({self.source})"
        before = self.before.describe() if self.before else "?"
        after = self.after.describe() if self.after else "?"
        verb = " (recreated: the IAM principal was recreated)" if self.action == "recreate" else ""
        return f"~ {self.key} {before}  =>  {after}  ({self.source}){verb}"

    def _describe_policy(self) -> str:
        """An association: ``before``/``after`` carry the policy as username and the namespaces as groups."""
        sign = {"add": "+", "remove": "-"}.get(self.action, "~")
        scopes = [e for e in (self.before, self.after) if e is not None]
        shown = "  =>  ".join(("cluster" if not e.groups else f"namespaces {list(e.groups)}") for e in scopes)
        return f"{sign} {self.key} {self.arn}: {scopes[-1].username} {shown}  ({self.source})"


@dataclass(frozen=True)
class Conflict:
    key: str
    foreign: Entry
    wanted: OwnedEntry
    owner: str = ""  # who owns the foreign entry, when known (another instance of the service)

    def describe(self) -> str:
        return (
            f"! {self.key} {self.foreign.arn} is mapped by {self.owner or 'someone else'} ({self.foreign.describe()}); "
            f"{self.wanted.source} wants {self.wanted.entry.describe()}: left as it is"
        )


@dataclass(frozen=True)
class Refusal:
    """A write the service will not make; ``reason`` is stable (a metric dimension)."""

    reason: str
    message: str
    principal: str = ""  # the IAM ARN it concerns, when it concerns one

    def render(self) -> str:
        return f"refused ({self.reason}): {self.message}"


class IdentityStep(Protocol):
    """One backend's part of a plan: what it observed led to this."""

    @property
    def status(self) -> Literal["unchanged", "refused", "write"]: ...
    @property
    def changes(self) -> tuple[Change, ...]: ...
    @property
    def conflicts(self) -> tuple[Conflict, ...]: ...
    @property
    def refusals(self) -> tuple[Refusal, ...]: ...
    @property
    def warnings(self) -> tuple[str, ...]: ...
    @property
    def instances(self) -> frozenset[str]: ...  # the instance marks read of the service's objects (named only)


@dataclass(frozen=True)
class Outcome:
    """What became of an identity step: written, left unchanged, refused, or (display only) planned."""

    status: Literal["unchanged", "written", "planned", "refused"]
    changes: tuple[Change, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    warnings: tuple[str, ...] = ()
    attempts: int = 1
    backup_sequence: int | None = None

    @classmethod
    def of(cls, step: IdentityStep, status: Literal["unchanged", "written", "planned", "refused"]) -> Outcome:
        return cls(status, step.changes, step.conflicts, step.refusals, step.warnings)


@dataclass(frozen=True)
class CurrentMapping:
    """How an identity backend maps one principal now (``IdentityBackend.mapping_of``): the mapping
    as that backend holds it, and whether it is exactly the one the service wants."""

    entry: Entry
    as_desired: bool


def preview(step: IdentityStep) -> Outcome:
    """What applying ``step`` would report, without applying it (the display-only path)."""
    return Outcome.of(step, "planned" if step.status == "write" else step.status)
