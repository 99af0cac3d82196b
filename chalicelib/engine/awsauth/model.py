"""Plain data for the aws-auth engine: entries, problems and the names the consumer reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chalicelib.model.identities import MAP_ROLES, MAP_USERS, Entry

__all__ = ["ARN_FIELD", "ENTRY_KEYS", "KNOWN_FIELDS", "MAP_ACCOUNTS", "MAP_ROLES", "MAP_USERS", "Entry", "Problem"]

MAP_ACCOUNTS = "mapAccounts"
ARN_FIELD = {MAP_ROLES: "rolearn", MAP_USERS: "userarn"}
ENTRY_KEYS = (MAP_ROLES, MAP_USERS)
KNOWN_FIELDS = frozenset({"rolearn", "userarn", "username", "groups"})

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    key: str  # the data key ("mapRoles", ...) or "" for the whole object
    severity: Severity
    message: str
    line: int | None = None

    def render(self) -> str:
        where = f"{self.key}:{self.line}" if self.line else (self.key or "aws-auth")
        return f"{self.severity}: {where}: {self.message}"
