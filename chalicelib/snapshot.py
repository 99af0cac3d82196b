"""The IAM snapshot: the facts about principals that desired state is computed from. Plain data.

A full snapshot holds every user and role of the account. A scoped one holds only the principals an
event concerns, and says which of them no longer exist (``absent_*``), so that "deleted" revokes
while "could not read" aborts (the reader raises; a partial snapshot is never built).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class IamUser:
    name: str
    arn: str  # exactly as IAM reports it, path included
    groups: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IamRole:
    name: str
    arn: str  # as IAM reports it; aws-auth needs it without the path
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def unpathed_arn(self) -> str:
        prefix, _, rest = self.arn.partition(":role/")
        return f"{prefix}:role/{rest.rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class IamSnapshot:
    users: tuple[IamUser, ...] = ()
    roles: tuple[IamRole, ...] = ()
    complete: bool = True  # False: a scoped snapshot, only about the principals below
    absent_users: frozenset[str] = frozenset()  # names asked for that do not exist
    absent_roles: frozenset[str] = frozenset()
