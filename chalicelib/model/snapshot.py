"""Stage 2's output, the IAM snapshot: the facts about principals that desired state is computed
from. Plain data. A full snapshot holds every user and role of the account; a scoped one only the
principals an event concerns that still exist (a principal that does not is simply absent, so its
entries and bindings are revoked; a read that failed raises instead, so nothing is revoked)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.model import arns


@dataclass(frozen=True)
class IamUser:
    name: str
    arn: str  # exactly as IAM reports it, path included
    groups: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    id: str = ""  # IAM's unique id (AIDA…): a user recreated under the same name gets a new one


@dataclass(frozen=True)
class IamRole:
    name: str
    arn: str  # as IAM reports it; aws-auth needs it without the path
    tags: Mapping[str, str] = field(default_factory=dict)
    id: str = ""  # IAM's unique id (AROA…)

    @property
    def unpathed_arn(self) -> str:
        return arns.unpathed(self.arn)


@dataclass(frozen=True)
class IamSnapshot:
    users: tuple[IamUser, ...] = ()
    roles: tuple[IamRole, ...] = ()
    groups: frozenset[str] | None = None  # every group's lower-case name (full snapshots); None: not read
