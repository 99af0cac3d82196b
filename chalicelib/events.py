"""Stage 1: a CloudTrail record (delivered by EventBridge) -> which principals to re-read, or why not.

Events are hints: they decide only *who* to look at again; the truth is read from IAM afterwards,
so duplicated or out-of-order delivery is harmless. Pure: no boto3, no kubernetes, no logging.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.config import Config
from chalicelib.principals import PrincipalScope

USER_EVENTS = ("AddUserToGroup", "RemoveUserFromGroup", "DeleteUser", "UpdateUser", "TagUser", "UntagUser")
ROLE_EVENTS = ("TagRole", "UntagRole", "DeleteRole", "CreateRole", "UpdateRole")
GROUP_EVENTS = ("DeleteGroup",)
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
        return _trigger(detail, detail.request_parameters or {}, config)
    except (KeyError, TypeError, AttributeError) as err:
        return Ignored(detail.event_id, "malformed", f"{detail.event_name} without {err}")


def _trigger(detail: _Detail, params: Mapping[str, Any], config: Config) -> Trigger | Ignored:  # noqa: PLR0911 - one branch per event family
    name = detail.event_name
    groups = {g.iam_group.lower() for g in config.identities.groups}
    roles = {r.iam_role.lower() for r in config.identities.roles}
    prefix = config.tag_grants.tag_prefix

    def trigger(
        users: tuple[str, ...] = (), role_names: tuple[str, ...] = (), deleted: tuple[str, ...] = ()
    ) -> Trigger:
        scope = PrincipalScope.of(list(users), list(role_names))
        return Trigger(detail.event_id, name, detail.user_identity.arn, scope, deleted)

    def ignored(why: str) -> Ignored:
        return Ignored(detail.event_id, "not-configured", why)

    if name in ("AddUserToGroup", "RemoveUserFromGroup"):
        if _name(params, "groupName").lower() not in groups:
            return ignored(f"group {params['groupName']!r} is not configured")
        return trigger(users=(_name(params, "userName"),))
    if name == "DeleteGroup":
        group = _name(params, "groupName")
        return trigger(deleted=(group,)) if group.lower() in groups else ignored(f"group {group!r} is not configured")
    if name in ("TagUser", "TagRole") and not any(_str(t["key"]).startswith(prefix) for t in params["tags"]):
        return ignored(f"no tag starts with {prefix!r}")
    if name in ("UntagUser", "UntagRole") and not any(_str(k).startswith(prefix) for k in params["tagKeys"]):
        return ignored(f"no tag key starts with {prefix!r}")
    if name in ("CreateRole", "UpdateRole") and _name(params, "roleName").lower() not in roles:
        return ignored(f"role {params['roleName']!r} is not configured")
    if name == "UpdateUser":
        renamed = params.get("newUserName")
        return trigger(users=(_name(params, "userName"), *([_str(renamed)] if renamed else [])))
    if name in USER_EVENTS:
        return trigger(users=(_name(params, "userName"),))
    return trigger(role_names=(_name(params, "roleName"),))


def _name(params: Mapping[str, Any], key: str) -> str:
    value = params[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"a valid {key}")
    return value


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
