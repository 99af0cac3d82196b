"""Which principals a run concerns. A scoped run touches only the identity entries and RoleBindings
of these principals; ``None`` instead of a scope means everyone (a full reconcile).

Matching is by kind and name, not by ARN, so a deleted user (whose ARN and path can no longer be
read) still matches the entries and bindings recorded under its old ARN. IAM names are ASCII and
unique case-insensitively, and so is the matching: ASCII case only (``arns.fold``), so a look-alike
such as the Kelvin sign never scopes the ASCII name it resembles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from chalicelib.model import arns
from chalicelib.model.ownership import principal_label


@dataclass(frozen=True)
class PrincipalScope:
    users: frozenset[str] = frozenset()  # lower-case IAM user names
    roles: frozenset[str] = frozenset()  # lower-case IAM role names
    # The names as the event or the ledger spelled them, to read IAM with.
    spelled: frozenset[tuple[str, str]] = field(default=frozenset(), compare=False)

    @classmethod
    def of(cls, users: Iterable[str] = (), roles: Iterable[str] = ()) -> PrincipalScope:
        users, roles = tuple(users), tuple(roles)
        spelled = frozenset({("user", u) for u in users} | {("role", r) for r in roles})
        return cls(frozenset(arns.fold(u) for u in users), frozenset(arns.fold(r) for r in roles), spelled)

    def with_users(self, users: Iterable[str]) -> PrincipalScope:
        more = PrincipalScope.of(users)
        return PrincipalScope(self.users | more.users, self.roles, self.spelled | more.spelled)

    def names(self, kind: str) -> list[str]:
        """The names to read IAM with: as spelled where known (a lookup by name may be case-sensitive)."""
        wanted = self.users if kind == "user" else self.roles
        spelled = sorted(name for k, name in self.spelled if k == kind and arns.fold(name) in wanted)
        known = {arns.fold(name) for name in spelled}
        return spelled + sorted(name for name in wanted if name not in known)

    def __contains__(self, arn: object) -> bool:
        parsed = arns.parse(arn) if isinstance(arn, str) else None
        if parsed is None:
            return False
        name = arns.fold(parsed.name)
        return (parsed.kind == "user" and name in self.users) or (parsed.kind == "role" and name in self.roles)

    def __bool__(self) -> bool:
        return bool(self.users or self.roles)

    def labels(self) -> frozenset[str]:
        """PRINCIPAL_LABEL values of everyone in scope: their RoleBindings, and only theirs."""
        return frozenset(
            {principal_label("user", u) for u in self.users} | {principal_label("role", r) for r in self.roles}
        )

    def without(self, users: frozenset[str]) -> PrincipalScope:
        kept = frozenset((k, n) for k, n in self.spelled if k != "user" or arns.fold(n) not in users)
        return PrincipalScope(self.users - users, self.roles, kept)

    def describe(self) -> str:
        return ", ".join([f"user {u}" for u in sorted(self.users)] + [f"role {r}" for r in sorted(self.roles)])


@dataclass(frozen=True)
class EveryoneBut:
    """A full run's scope less some users (lower-case names): their entries are left as they are."""

    users: frozenset[str]

    def __contains__(self, arn: object) -> bool:
        parsed = arns.parse(arn) if isinstance(arn, str) else None
        return parsed is None or parsed.kind != "user" or arns.fold(parsed.name) not in self.users
