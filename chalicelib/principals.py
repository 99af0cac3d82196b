"""Which principals a run concerns. A scoped run touches only the aws-auth entries and RoleBindings
of these principals; ``None`` instead of a scope means everyone (a full reconcile).

Matching is by kind and name, not by ARN, so a deleted user (whose ARN and path can no longer be
read) still matches the entries and bindings recorded under its old ARN. IAM names are unique
case-insensitively, and so is the matching.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PrincipalScope:
    users: frozenset[str] = frozenset()  # lower-case IAM user names
    roles: frozenset[str] = frozenset()  # lower-case IAM role names

    @classmethod
    def of(cls, users: tuple[str, ...] | list[str] = (), roles: tuple[str, ...] | list[str] = ()) -> PrincipalScope:
        return cls(frozenset(u.lower() for u in users), frozenset(r.lower() for r in roles))

    def __contains__(self, arn: object) -> bool:
        if not isinstance(arn, str):
            return False
        resource = arn.split(":", 5)[-1]
        kind, _, rest = resource.partition("/")
        name = rest.rsplit("/", 1)[-1].lower()
        return (kind == "user" and name in self.users) or (kind == "role" and name in self.roles)

    def __bool__(self) -> bool:
        return bool(self.users or self.roles)

    def describe(self) -> str:
        return ", ".join([f"user {u}" for u in sorted(self.users)] + [f"role {r}" for r in sorted(self.roles)])


def canonical_arn(arn: str) -> str:
    """What aws-iam-authenticator matches: an assumed-role session becomes its role's ARN (no path)."""
    fields = arn.split(":", 5)
    if len(fields) == 6 and fields[2] == "sts" and fields[5].startswith("assumed-role/"):
        return f"arn:{fields[1]}:iam::{fields[4]}:role/{fields[5].split('/')[1]}"
    return arn
