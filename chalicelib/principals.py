"""Which principals a run concerns. A scoped run touches only the identity entries and RoleBindings
of these principals; ``None`` instead of a scope means everyone (a full reconcile).

Matching is by kind and name, not by ARN, so a deleted user (whose ARN and path can no longer be
read) still matches the entries and bindings recorded under its old ARN. IAM names are unique
case-insensitively, and so is the matching.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib import arns
from chalicelib.ownership import principal_label


@dataclass(frozen=True)
class PrincipalScope:
    users: frozenset[str] = frozenset()  # lower-case IAM user names
    roles: frozenset[str] = frozenset()  # lower-case IAM role names

    @classmethod
    def of(cls, users: tuple[str, ...] | list[str] = (), roles: tuple[str, ...] | list[str] = ()) -> PrincipalScope:
        return cls(frozenset(u.lower() for u in users), frozenset(r.lower() for r in roles))

    def __contains__(self, arn: object) -> bool:
        parsed = arns.parse(arn) if isinstance(arn, str) else None
        if parsed is None:
            return False
        name = parsed.name.lower()
        return (parsed.kind == "user" and name in self.users) or (parsed.kind == "role" and name in self.roles)

    def __bool__(self) -> bool:
        return bool(self.users or self.roles)

    def labels(self) -> frozenset[str]:
        """PRINCIPAL_LABEL values of everyone in scope: their RoleBindings, and only theirs."""
        return frozenset(
            {principal_label("user", u) for u in self.users} | {principal_label("role", r) for r in self.roles}
        )

    def without(self, users: frozenset[str]) -> PrincipalScope:
        return PrincipalScope(self.users - users, self.roles)

    def describe(self) -> str:
        return ", ".join([f"user {u}" for u in sorted(self.users)] + [f"role {r}" for r in sorted(self.roles)])


@dataclass(frozen=True)
class EveryoneBut:
    """A full run's scope less some users (lower-case names): their entries are left as they are."""

    users: frozenset[str]

    def __contains__(self, arn: object) -> bool:
        parsed = arns.parse(arn) if isinstance(arn, str) else None
        return parsed is None or parsed.kind != "user" or parsed.name.lower() not in self.users
