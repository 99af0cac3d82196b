"""Plain data for the aws-auth engine: entries, problems and the names the consumer reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

MAP_ROLES = "mapRoles"
MAP_USERS = "mapUsers"
MAP_ACCOUNTS = "mapAccounts"
ARN_FIELD = {MAP_ROLES: "rolearn", MAP_USERS: "userarn"}
ENTRY_KEYS = (MAP_ROLES, MAP_USERS)
KNOWN_FIELDS = frozenset({"rolearn", "userarn", "username", "groups"})

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Entry:
    """One mapping as the consumer loads it. ``extra`` keeps fields the consumer ignores (foreign
    entries only) in their original order, so rewriting a key never drops them."""

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


@dataclass(frozen=True)
class Problem:
    key: str  # the data key ("mapRoles", ...) or "" for the whole object
    severity: Severity
    message: str
    line: int | None = None

    def render(self) -> str:
        where = f"{self.key}:{self.line}" if self.line else (self.key or "aws-auth")
        return f"{self.severity}: {where}: {self.message}"
