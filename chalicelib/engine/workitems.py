"""The queued path's data: a batch of IAM events coalesced into one scope, and the per-cluster work
items that carry it to the workers. Pure: no boto3, no logging.

An item carries only *scope* (principals to re-read, or everyone), never desired state: a worker
reads IAM and its cluster again, so duplicated, reordered or redelivered items are harmless.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chalicelib.engine.events import Trigger
from chalicelib.errors import PermanentError
from chalicelib.model.principals import PrincipalScope
from chalicelib.model.sso import SsoScope

VERSION = 1
# One item stays far below SQS's 256 KiB message limit: an IAM name is at most 64 (user) or 64 (role)
# characters, so 1 000 of them are ~70 KB of JSON. A larger scope is split into several items.
MAX_PRINCIPALS_PER_ITEM = 1000
# Event ids kept on an item: for the logs and the RoleBinding annotation, not for correctness.
MAX_EVENT_IDS = 20
# send_message_batch: at most 10 entries and 256 KiB (262 144 bytes) in all; some room is left for
# the attributes SQS counts.
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 250_000


class BadWorkItem(PermanentError):
    """A work queue message that is not a work item this version reads: retrying will not help, the
    message goes to the work queue's DLQ after its receives."""


@dataclass(frozen=True)
class Coalesced:
    """The triggers of one batch as one: the union of their principals and groups, RoleBindings
    considered if any of them could change one. Level-triggered: reading the union once is what
    reading each in turn would have converged to."""

    scope: PrincipalScope
    deleted_groups: tuple[str, ...]
    groups_to_read: tuple[str, ...]
    rebinds: bool
    event_ids: tuple[str, ...]
    event_names: tuple[str, ...]
    sso: SsoScope = field(default_factory=SsoScope)

    def as_trigger(self) -> Trigger:
        """One Trigger for the in-process run: named by its first event (the RoleBinding annotation)."""
        names = sorted(set(self.event_names))
        return Trigger(
            event_id=self.event_ids[0],
            event_name=names[0] if len(names) == 1 else f"{len(self.event_ids)} events ({', '.join(names)})",
            actor=None,
            scope=self.scope,
            deleted_groups=self.deleted_groups,
            groups_to_read=self.groups_to_read,
            rebinds=self.rebinds,
            sso=self.sso,
        )


def coalesce(triggers: Sequence[Trigger]) -> Coalesced | None:
    """``None`` for no trigger. Renamed configured groups are refusals, not scope: they must be
    refused record by record before coalescing, so ``ValueError`` if one is given."""
    if not triggers:
        return None
    if renamed := [t.event_id for t in triggers if t.renamed_groups]:
        raise ValueError(f"renamed-group triggers are refused, not coalesced: {renamed}")
    users: set[str] = set()
    roles: set[str] = set()
    spelled: set[tuple[str, str]] = set()
    sso = SsoScope()
    for trigger in triggers:
        sso = sso.union(trigger.sso)
        users |= trigger.scope.users
        roles |= trigger.scope.roles
        spelled |= trigger.scope.spelled
    return Coalesced(
        scope=PrincipalScope(frozenset(users), frozenset(roles), frozenset(spelled)),
        deleted_groups=_unique(g for t in triggers for g in t.deleted_groups),
        groups_to_read=_unique(g for t in triggers for g in t.groups_to_read),
        rebinds=any(t.rebinds for t in triggers),
        event_ids=_unique(t.event_id for t in triggers),
        event_names=tuple(t.event_name for t in triggers),
        sso=sso,
    )


@dataclass(frozen=True)
class WorkItem:
    """One cluster's work: everyone (a full run), or these principals (an event run)."""

    cluster: str
    everyone: bool = False
    users: tuple[str, ...] = ()  # as spelled by the events (an IAM lookup by name may be case-sensitive)
    roles: tuple[str, ...] = ()
    deleted_groups: tuple[str, ...] = ()
    groups_to_read: tuple[str, ...] = ()
    rebinds: bool = True
    events: tuple[str, ...] = ()  # the event ids that asked for it (the first MAX_EVENT_IDS)
    run: str = ""  # the full run that issued it: two runs' items are never deduplicated into one
    sso: SsoScope = field(default_factory=SsoScope)  # Identity Center people or groups to re-read

    def trigger(self) -> Trigger:
        """What an event item asks the cluster's run to do (``everyone`` items are full runs)."""
        if self.everyone:
            raise ValueError("a full-run item has no trigger")
        first = self.events[0] if self.events else f"work item for {self.cluster}"
        return Trigger(
            event_id=first,
            event_name="queued events" if len(self.events) != 1 else "queued event",
            actor=None,
            scope=PrincipalScope.of(self.users, self.roles),
            deleted_groups=self.deleted_groups,
            groups_to_read=self.groups_to_read,
            rebinds=self.rebinds,
            sso=self.sso,
        )

    def describe(self) -> str:
        if self.everyone:
            return f"cluster {self.cluster}: everyone"
        return (
            f"cluster {self.cluster}: {len(self.users)} users, {len(self.roles)} roles"
            + (f", deleted groups {list(self.deleted_groups)}" if self.deleted_groups else "")
            + (f", {self.sso.describe()}" if self.sso else "")
        )


def full_run_items(clusters: Iterable[str], run: str) -> list[WorkItem]:
    return [WorkItem(cluster, everyone=True, run=run) for cluster in clusters]


def event_items(batch: Coalesced, clusters: Iterable[str]) -> list[WorkItem]:
    """One item per cluster (more when the scope exceeds MAX_PRINCIPALS_PER_ITEM); the groups to read
    or whose former members to find go with the first."""
    principals = [("user", n) for n in batch.scope.names("user")] + [("role", n) for n in batch.scope.names("role")]
    chunks = [principals[i : i + MAX_PRINCIPALS_PER_ITEM] for i in range(0, len(principals), MAX_PRINCIPALS_PER_ITEM)]
    items: list[WorkItem] = []
    for cluster in clusters:
        for index, chunk in enumerate(chunks or [[]]):
            items.append(
                WorkItem(
                    cluster=cluster,
                    users=tuple(n for k, n in chunk if k == "user"),
                    roles=tuple(n for k, n in chunk if k == "role"),
                    deleted_groups=batch.deleted_groups if index == 0 else (),
                    groups_to_read=batch.groups_to_read if index == 0 else (),
                    rebinds=batch.rebinds,
                    events=batch.event_ids[:MAX_EVENT_IDS],
                    sso=batch.sso if index == 0 else SsoScope(),
                )
            )
    return items


# ---- the message body -----------------------------------------------------------------------

IamName = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_+=,.@-]{1,128}$")]
ClusterName = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")]
Text = Annotated[str, StringConstraints(strict=True, max_length=256)]
SsoId = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9a-f-]{36,47}$")]


class _Principals(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    users: list[IamName] = Field(default_factory=list, max_length=MAX_PRINCIPALS_PER_ITEM)
    roles: list[IamName] = Field(default_factory=list, max_length=MAX_PRINCIPALS_PER_ITEM)
    deleted_groups: list[IamName] = Field(default_factory=list, alias="deletedGroups", max_length=100)
    groups_to_read: list[IamName] = Field(default_factory=list, alias="groupsToRead", max_length=100)
    sso_users: list[SsoId] = Field(default_factory=list, alias="ssoUsers", max_length=MAX_PRINCIPALS_PER_ITEM)
    sso_all_groups: bool = Field(default=False, alias="ssoAllGroups")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    cluster: ClusterName
    scope: Literal["everyone"] | _Principals
    rebinds: bool = True
    events: list[Text] = Field(default_factory=list, max_length=MAX_EVENT_IDS)
    run: Text = ""


def body(item: WorkItem) -> str:
    scope: object = (
        "everyone"
        if item.everyone
        else {
            "users": list(item.users),
            "roles": list(item.roles),
            "deletedGroups": list(item.deleted_groups),
            "groupsToRead": list(item.groups_to_read),
            **({"ssoUsers": sorted(item.sso.users)} if item.sso.users else {}),
            **({"ssoAllGroups": True} if item.sso.all_groups else {}),
        }
    )
    document = {
        "version": VERSION,
        "cluster": item.cluster,
        "scope": scope,
        "rebinds": item.rebinds,
        "events": list(item.events),
        "run": item.run,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def parse(text: str) -> WorkItem:
    """A message body back into its item; BadWorkItem naming the first problem otherwise."""
    try:
        parsed = _Body.model_validate_json(text)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadWorkItem(f"not a work item: {where}: {first['msg']} (body {text[:200]!r})") from None
    if parsed.scope == "everyone":
        return WorkItem(parsed.cluster, everyone=True, events=tuple(parsed.events), run=parsed.run)
    scope = parsed.scope
    return WorkItem(
        cluster=parsed.cluster,
        users=tuple(scope.users),
        roles=tuple(scope.roles),
        deleted_groups=tuple(scope.deleted_groups),
        groups_to_read=tuple(scope.groups_to_read),
        rebinds=parsed.rebinds,
        events=tuple(parsed.events),
        run=parsed.run,
        sso=SsoScope(frozenset(scope.sso_users), scope.sso_all_groups),
    )


@dataclass(frozen=True)
class Message:
    """One send_message_batch entry. ``group`` keeps one cluster's items one at a time on a FIFO
    queue; ``dedup`` (the body's digest) makes a redelivered batch's items count once there."""

    id: str
    body: str
    group: str
    dedup: str


class WorkQueue(Protocol):
    def send(self, messages: Sequence[Message]) -> None:
        """Every message sent, or a SyncError naming those that were not."""


def messages(items: Sequence[WorkItem]) -> list[Message]:
    out: list[Message] = []
    for index, item in enumerate(items):
        text = body(item)
        out.append(Message(str(index), text, item.cluster, hashlib.sha256(text.encode()).hexdigest()))
    return out


def batches(
    queued: Sequence[Message], max_entries: int = MAX_BATCH_ENTRIES, max_bytes: int = MAX_BATCH_BYTES
) -> list[list[Message]]:
    """send_message_batch calls: each at most ``max_entries`` messages and ``max_bytes`` of bodies."""
    out: list[list[Message]] = []
    size = 0
    for message in queued:
        length = len(message.body.encode())
        if length > max_bytes:
            raise ValueError(f"work item {message.id} is {length} bytes, above {max_bytes}")
        if not out or len(out[-1]) >= max_entries or size + length > max_bytes:
            out.append([])
            size = 0
        out[-1].append(message)
        size += length
    return out


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
