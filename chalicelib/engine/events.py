"""Stage 1: a CloudTrail record (delivered by EventBridge) -> which principals to re-read, or why not.
IAM's records here; the Identity Store's (IAM Identity Center) in ``ssoevents``.

Events are hints: they decide only *who* to look at again; the truth is read from IAM afterwards,
so duplicated or out-of-order delivery is harmless. Pure: no boto3, no kubernetes, no logging.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chalicelib.config import Config
from chalicelib.engine.ssoevents import EVENTS_BY_SOURCE, sso_concerns
from chalicelib.model import arns
from chalicelib.model.principals import PrincipalScope
from chalicelib.model.sso import SsoScope

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

IAM_EVENT_PATTERN: dict[str, Any] = {
    "source": ["aws.iam"],
    "detail-type": ["AWS API Call via CloudTrail"],
    "detail": {
        "eventSource": ["iam.amazonaws.com"],
        "eventName": list(EVENT_NAMES),
        "errorCode": [{"exists": False}],
    },
}
# The Identity Store's records (ssoevents), matched by their CloudTrail event source alone: SCIM's
# EventBridge source is not documented, the eventSource is.
IDENTITY_STORE_EVENT_PATTERNS: list[dict[str, Any]] = [
    {
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": [source], "eventName": list(names), "errorCode": [{"exists": False}]},
    }
    for source, names in EVENTS_BY_SOURCE.items()
]
# The EventBridge rule of on_iam_event (and of the event queue's and the forwarding rules in infra/).
EVENT_PATTERN: dict[str, Any] = {"$or": [IAM_EVENT_PATTERN, *IDENTITY_STORE_EVENT_PATTERNS]}


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
    sso: SsoScope = field(
        default_factory=SsoScope
    )  # IAM Identity Center people or groups to re-read (an Identity Store event)


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
    if detail.event_source in EVENTS_BY_SOURCE and event.source.startswith("aws.identitystore"):
        return _identity_store_event(detail, config)
    if event.source != "aws.iam" or detail.event_source != "iam.amazonaws.com":
        return Ignored(detail.event_id, "not-iam", f"{event.source}/{detail.event_source}")
    return _iam_event(detail, config)


def _iam_event(detail: _Detail, config: Config) -> Trigger | Ignored:
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


@dataclass(frozen=True)
class _Configured:
    """What the configuration says about which events matter; names folded as IAM compares them."""

    groups: frozenset[str]
    roles: frozenset[str]
    permission_sets: frozenset[str]
    prefix: str  # tagGrants.tagPrefix

    @classmethod
    def of(cls, config: Config) -> _Configured:
        return cls(
            frozenset(arns.fold(g.iam_group) for g in config.identities.groups),
            frozenset(arns.fold(r.iam_role) for r in config.identities.roles),
            frozenset(p.name for p in config.identities.permission_sets),
            config.tag_grants.tag_prefix,
        )

    def group(self, name: str) -> bool:
        return arns.fold(name) in self.groups

    def role(self, name: str, path: str | None = None) -> bool:
        return arns.fold(name) in self.roles or arns.permission_set_of(name, path) in self.permission_sets

    def grants(self, keys: Iterable[str]) -> bool:
        return any(key.startswith(self.prefix) for key in keys)


@dataclass(frozen=True)
class _Concerns:
    """The principals an event names: to re-read, or (a deleted group) to find in the ledgers."""

    users: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    deleted_groups: tuple[str, ...] = ()


class _Parameters(BaseModel):
    """requestParameters of one event type: every field the service reads, checked before use. Each
    event family says whom it concerns, or why it concerns nothing configured. Each is built when an
    event of its type first comes (``defer_build``): a cold start builds the one its event needs."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        return f"{event_name} carries nothing the service reads"


class _Tag(_Parameters):
    key: TagKey
    value: Annotated[str, StringConstraints(strict=True, max_length=256)] = ""


class _Membership(_Parameters):
    group_name: IamName = Field(alias="groupName")
    user_name: IamName = Field(alias="userName")

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        if not configured.group(self.group_name):
            return f"group {self.group_name!r} is not configured"
        return _Concerns(users=(self.user_name,))


class _Group(_Parameters):
    group_name: IamName = Field(alias="groupName")

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        if not configured.group(self.group_name):
            return f"group {self.group_name!r} is not configured"
        return _Concerns(deleted_groups=(self.group_name,))


class _User(_Parameters):
    user_name: IamName = Field(alias="userName")

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        return _Concerns(users=(self.user_name,))


class _Rename(_User):
    new_user_name: IamName | None = Field(default=None, alias="newUserName")

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        return _Concerns(users=(self.user_name, *([self.new_user_name] if self.new_user_name else [])))


class _UserTags(_User):
    tags: list[_Tag] = Field(min_length=1)

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        if not configured.grants(t.key for t in self.tags):
            return f"no tag starts with {configured.prefix!r}"
        return super().concerns(configured, event_name)


class _UserTagKeys(_User):
    tag_keys: list[TagKey] = Field(alias="tagKeys", min_length=1)

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        if not configured.grants(self.tag_keys):
            return f"no tag key starts with {configured.prefix!r}"
        return super().concerns(configured, event_name)


class _Role(_Parameters):
    role_name: IamName = Field(alias="roleName")

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        if event_name == "UpdateRole" and not configured.role(self.role_name):
            return f"role {self.role_name!r} is not configured"
        return _Concerns(roles=(self.role_name,))


class _NewUser(_User):
    tags: list[_Tag] = []

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        if not configured.grants(t.key for t in self.tags):
            return "no tag grant"
        return super().concerns(configured, event_name)


class _NewRole(_Role):
    path: Annotated[str, StringConstraints(strict=True, max_length=512)] = "/"
    tags: list[_Tag] = []

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        if not configured.role(self.role_name, self.path) and not configured.grants(t.key for t in self.tags):
            return f"role {self.role_name!r} is not configured and carries no tag grant"
        return _Concerns(roles=(self.role_name,))


class _GroupUpdate(_Group):
    new_group_name: IamName | None = Field(default=None, alias="newGroupName")


class _RoleTags(_Role):
    tags: list[_Tag] = Field(min_length=1)

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        if not configured.grants(t.key for t in self.tags):
            return f"no tag starts with {configured.prefix!r}"
        return super().concerns(configured, event_name)


class _RoleTagKeys(_Role):
    tag_keys: list[TagKey] = Field(alias="tagKeys", min_length=1)

    def concerns(self, configured: _Configured, event_name: str) -> _Concerns | str:
        if not configured.grants(self.tag_keys):
            return f"no tag key starts with {configured.prefix!r}"
        return super().concerns(configured, event_name)


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


def _trigger(detail: _Detail, params: _Parameters, config: Config) -> Trigger | Ignored:
    configured = _Configured.of(config)
    if isinstance(params, _GroupUpdate):
        return _group_update(detail, params, configured)
    concerns = params.concerns(configured, detail.event_name)
    if isinstance(concerns, str):
        return Ignored(detail.event_id, "not-configured", concerns)
    return Trigger(
        detail.event_id,
        detail.event_name,
        detail.user_identity.arn,
        PrincipalScope.of(concerns.users, concerns.roles),
        concerns.deleted_groups,
        rebinds=detail.event_name not in MEMBERSHIP_EVENTS,
    )


def _identity_store_event(detail: _Detail, config: Config) -> Trigger | Ignored:
    if detail.error_code:
        return Ignored(detail.event_id, "error-code", f"{detail.event_name} failed: {detail.error_code}")
    if detail.event_name not in EVENTS_BY_SOURCE[detail.event_source]:
        return Ignored(detail.event_id, "unsupported-event", f"{detail.event_source} {detail.event_name}")
    concerns = sso_concerns(detail.event_source, detail.event_name, detail.request_parameters, config)
    if isinstance(concerns, str):
        reason = "malformed" if concerns.startswith("malformed: ") else "not-configured"
        return Ignored(detail.event_id, reason, concerns.removeprefix("malformed: "))
    actor = detail.user_identity.arn
    return Trigger(detail.event_id, detail.event_name, actor, PrincipalScope(), rebinds=False, sso=concerns)


def _group_update(detail: _Detail, params: _GroupUpdate, configured: _Configured) -> Trigger | Ignored:
    """A configured group renamed away is refused loudly (never a silent mass revocation); a group
    renamed to a configured name has its members read."""
    old, new = params.group_name, params.new_group_name
    actor = detail.user_identity.arn
    if not new or new == old:
        return Ignored(detail.event_id, "not-configured", f"UpdateGroup of {old!r} changes no name")
    if configured.group(old):
        return Trigger(detail.event_id, detail.event_name, actor, PrincipalScope(), renamed_groups=((old, new),))
    if configured.group(new):
        return Trigger(detail.event_id, detail.event_name, actor, PrincipalScope(), groups_to_read=(new,))
    return Ignored(detail.event_id, "not-configured", f"neither {old!r} nor {new!r} is a configured group")


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
