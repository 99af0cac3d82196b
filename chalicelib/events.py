"""Stage 1: a CloudTrail record (delivered by EventBridge) -> which principals to re-read, or why not.

Events are hints: they decide only *who* to look at again; the truth is read from IAM afterwards,
so duplicated or out-of-order delivery is harmless. Pure: no boto3, no kubernetes, no logging.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chalicelib import arns
from chalicelib.config import Config
from chalicelib.principals import PrincipalScope

# Only events that can change a mapping are subscribed.
USER_EVENTS = (
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "CreateUser",
    "DeleteUser",
    "UpdateUser",
    "TagUser",
    "UntagUser",
)
ROLE_EVENTS = ("TagRole", "UntagRole", "DeleteRole", "CreateRole", "UpdateRole")
GROUP_EVENTS = ("DeleteGroup", "UpdateGroup")
MEMBERSHIP_EVENTS = ("AddUserToGroup", "RemoveUserFromGroup", "DeleteGroup")
EVENT_NAMES = USER_EVENTS + GROUP_EVENTS + ROLE_EVENTS

# The EventBridge rule of on_iam_event (and of the us-east-1 forwarding rule in infra/).
EVENT_PATTERN: dict[str, Any] = {
    "source": ["aws.iam"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {
        "eventSource": ["iam.amazonaws.com"],
        "eventName": list(EVENT_NAMES),
        "errorCode": [{"exists": False}],
    },
}


class _Identity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    arn: str | None = None


class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    event_id: str = Field(alias="eventID", min_length=1)
    event_name: str = Field(alias="eventName")
    event_source: str = Field(alias="eventSource")
    error_code: str | None = Field(default=None, alias="errorCode")
    request_parameters: dict[str, Any] | None = Field(default=None, alias="requestParameters")
    user_identity: _Identity = Field(default_factory=_Identity, alias="userIdentity")


class CloudTrailEvent(BaseModel):
    """The EventBridge envelope of an IAM CloudTrail record (Powertools Parser has no model for it)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    id: str
    source: str
    detail_type: str = Field(alias="detail-type")
    detail: _Detail


@dataclass(frozen=True)
class Trigger:
    event_id: str
    event_name: str
    actor: str | None  # who made the change (userIdentity.arn)
    scope: PrincipalScope
    deleted_groups: tuple[str, ...] = ()  # their former members are found in the ownership ledger
    renamed_groups: tuple[tuple[str, str], ...] = ()  # (configured name, new name): a refusal, never a revocation
    groups_to_read: tuple[str, ...] = ()  # groups whose members are to be re-read (renamed to a configured name)
    # Group membership changes only identities; tags, renames and deletions change RoleBindings too.
    rebinds: bool = True


@dataclass(frozen=True)
class Ignored:
    event_id: str | None
    reason: str  # malformed | not-iam | error-code | unsupported-event | not-configured
    detail: str = ""


def read_event(raw: Mapping[str, Any], config: Config) -> Trigger | Ignored:
    try:
        event = CloudTrailEvent.model_validate(raw)
    except ValidationError as err:
        event_id = raw.get("detail", {}).get("eventID") if isinstance(raw.get("detail"), Mapping) else None
        return Ignored(event_id or _str(raw.get("id")), "malformed", _first_error(err))
    detail = event.detail
    if event.source != "aws.iam" or detail.event_source != "iam.amazonaws.com":
        return Ignored(detail.event_id, "not-iam", f"{event.source}/{detail.event_source}")
    if detail.error_code:
        return Ignored(detail.event_id, "error-code", f"{detail.event_name} failed: {detail.error_code}")
    if detail.event_name not in EVENT_NAMES:
        return Ignored(detail.event_id, "unsupported-event", detail.event_name)
    try:
        params = _PARAMETERS[detail.event_name].model_validate(detail.request_parameters or {})
    except ValidationError as err:
        return Ignored(detail.event_id, "malformed", f"{detail.event_name}: {_first_error(err)}")
    return _trigger(detail, params, config)


# IAM names are ASCII. pydantic's pattern is Unicode-aware (\w matches the Kelvin sign, U+212A, which
# folds into "k"), so the characters are spelled out.
IamName = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_+=,.@-]{1,128}$")]
TagKey = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]


class _Parameters(BaseModel):
    """requestParameters of one event type: every field the service reads, checked before use."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Tag(_Parameters):
    key: TagKey
    value: Annotated[str, StringConstraints(strict=True, max_length=256)] = ""


class _Membership(_Parameters):
    group_name: IamName = Field(alias="groupName")
    user_name: IamName = Field(alias="userName")


class _Group(_Parameters):
    group_name: IamName = Field(alias="groupName")


class _User(_Parameters):
    user_name: IamName = Field(alias="userName")


class _Rename(_User):
    new_user_name: IamName | None = Field(default=None, alias="newUserName")


class _UserTags(_User):
    tags: list[_Tag] = Field(min_length=1)


class _UserTagKeys(_User):
    tag_keys: list[TagKey] = Field(alias="tagKeys", min_length=1)


class _Role(_Parameters):
    role_name: IamName = Field(alias="roleName")


class _NewUser(_User):
    tags: list[_Tag] = []


class _NewRole(_Role):
    path: Annotated[str, StringConstraints(strict=True, max_length=512)] = "/"
    tags: list[_Tag] = []


class _GroupUpdate(_Group):
    new_group_name: IamName | None = Field(default=None, alias="newGroupName")


class _RoleTags(_Role):
    tags: list[_Tag] = Field(min_length=1)


class _RoleTagKeys(_Role):
    tag_keys: list[TagKey] = Field(alias="tagKeys", min_length=1)


_PARAMETERS: dict[str, type[_Parameters]] = {
    "AddUserToGroup": _Membership,
    "RemoveUserFromGroup": _Membership,
    "DeleteGroup": _Group,
    "UpdateGroup": _GroupUpdate,
    "CreateUser": _NewUser,
    "DeleteUser": _User,
    "UpdateUser": _Rename,
    "TagUser": _UserTags,
    "UntagUser": _UserTagKeys,
    "TagRole": _RoleTags,
    "UntagRole": _RoleTagKeys,
    "DeleteRole": _Role,
    "CreateRole": _NewRole,
    "UpdateRole": _Role,
}


def _trigger(detail: _Detail, params: _Parameters, config: Config) -> Trigger | Ignored:  # noqa: PLR0911 - one branch per event family
    name = detail.event_name
    groups = {arns.fold(g.iam_group) for g in config.identities.groups}
    roles = {arns.fold(r.iam_role) for r in config.identities.roles}
    prefix = config.tag_grants.tag_prefix

    def trigger(
        users: tuple[str, ...] = (), role_names: tuple[str, ...] = (), deleted: tuple[str, ...] = ()
    ) -> Trigger:
        scope = PrincipalScope.of(list(users), list(role_names))
        actor = detail.user_identity.arn
        return Trigger(detail.event_id, name, actor, scope, deleted, rebinds=name not in MEMBERSHIP_EVENTS)

    def ignored(why: str) -> Ignored:
        return Ignored(detail.event_id, "not-configured", why)

    permission_sets = {p.name for p in config.identities.permission_sets}

    def ours(role: str, path: str | None = None) -> bool:
        return arns.fold(role) in roles or arns.permission_set_of(role, path) in permission_sets

    match params:
        case _GroupUpdate():
            return _group_update(detail, params, groups)
        case _NewUser(user_name=user, tags=tags):
            return trigger(users=(user,)) if any(t.key.startswith(prefix) for t in tags) else ignored("no tag grant")
        case _NewRole(role_name=role, path=path, tags=tags):
            if ours(role, path) or any(t.key.startswith(prefix) for t in tags):
                return trigger(role_names=(role,))
            return ignored(f"role {role!r} is not configured and carries no tag grant")
        case _Membership(group_name=group, user_name=user):
            return (
                trigger(users=(user,)) if arns.fold(group) in groups else ignored(f"group {group!r} is not configured")
            )
        case _Group(group_name=group):
            return (
                trigger(deleted=(group,))
                if arns.fold(group) in groups
                else ignored(f"group {group!r} is not configured")
            )
        case _UserTags(tags=tags) | _RoleTags(tags=tags) if not any(t.key.startswith(prefix) for t in tags):
            return ignored(f"no tag starts with {prefix!r}")
        case _UserTagKeys(tag_keys=keys) | _RoleTagKeys(tag_keys=keys) if not any(k.startswith(prefix) for k in keys):
            return ignored(f"no tag key starts with {prefix!r}")
        case _Rename(user_name=user, new_user_name=renamed):
            return trigger(users=(user, *([renamed] if renamed else [])))
        case _User(user_name=user):
            return trigger(users=(user,))
        case _Role(role_name=role) if name == "UpdateRole" and not ours(role):
            return ignored(f"role {role!r} is not configured")
        case _Role(role_name=role):
            return trigger(role_names=(role,))
    return ignored(f"{name} carries nothing the service reads")


def _group_update(detail: _Detail, params: _GroupUpdate, configured: set[str]) -> Trigger | Ignored:
    """A configured group renamed away is refused loudly (never a silent mass revocation); a group
    renamed to a configured name has its members read."""
    old, new = params.group_name, params.new_group_name
    actor = detail.user_identity.arn
    if not new or new == old:
        return Ignored(detail.event_id, "not-configured", f"UpdateGroup of {old!r} changes no name")
    if arns.fold(old) in configured:
        return Trigger(detail.event_id, detail.event_name, actor, PrincipalScope(), renamed_groups=((old, new),))
    if arns.fold(new) in configured:
        return Trigger(detail.event_id, detail.event_name, actor, PrincipalScope(), groups_to_read=(new,))
    return Ignored(detail.event_id, "not-configured", f"neither {old!r} nor {new!r} is a configured group")


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
