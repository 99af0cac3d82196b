"""IAM Identity Center's side of a run, as plain data: which people and groups an event concerns
(``SsoScope``) and what the Identity Store said about the granted groups (``SsoSnapshot``).

A group whose read failed carries its error and no members: its people's RoleBindings are kept as
they are (an error is never an empty group). A group the store does not have (deleted, or renamed)
has ``group_id`` None and no members: its RoleBindings go.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SsoScope:
    """Whom an Identity Store event concerns: some people (by Identity Store user id), or every
    granted group (an event that does not say whom: a deleted membership, a SCIM request)."""

    users: frozenset[str] = frozenset()
    all_groups: bool = False

    def __bool__(self) -> bool:
        return self.all_groups or bool(self.users)

    def union(self, other: SsoScope) -> SsoScope:
        return SsoScope(self.users | other.users, self.all_groups or other.all_groups)

    def describe(self) -> str:
        if self.all_groups:
            return "every Identity Center group granted"
        return ", ".join(f"Identity Center user {u}" for u in sorted(self.users))


@dataclass(frozen=True)
class SsoMember:
    user_id: str
    user_name: str  # the Identity Store UserName: the session name Identity Center gives the person


@dataclass(frozen=True)
class SsoGroup:
    name: str  # the DisplayName, as configured
    group_id: str | None = None  # None: the store has no such group (deleted or renamed)
    members: tuple[SsoMember, ...] = ()
    error: str | None = None  # the read failed: nothing about this group is known

    @property
    def read(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class SsoSnapshot:
    """The granted groups as read. ``users`` None: every member (a full run, or every group);
    else only these people's memberships were asked (a person's event)."""

    groups: tuple[SsoGroup, ...] = ()
    users: frozenset[str] | None = None

    def group(self, name: str) -> SsoGroup | None:
        return next((g for g in self.groups if g.name == name), None)

    def failed(self) -> list[SsoGroup]:
        return [g for g in self.groups if not g.read]

    def missing(self) -> list[SsoGroup]:
        return [g for g in self.groups if g.read and g.group_id is None]
