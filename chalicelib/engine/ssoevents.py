"""Stage 1 for IAM Identity Center: an Identity Store CloudTrail record -> whom to re-read. Pure.

IAM Identity Center's CloudTrail documentation ("Logging IAM Identity Center API calls with AWS
CloudTrail") gives two event sources for changes to users, groups and memberships, both recorded in
the region of the Identity Center instance (``identityCenter.region``), in the account that holds it:

- ``identitystore.amazonaws.com`` (EventBridge source ``aws.identitystore``): the Identity Store
  API and the console. ``CreateGroupMembership`` names the group and the member's user id;
  ``UpdateUser`` and ``DeleteUser`` the user id: that person is re-read. ``DeleteGroupMembership``
  names only the membership, which no longer exists, and ``DeleteGroup``/``UpdateGroup`` a group
  id that says nothing until read: every granted group is re-read.
- ``identitystore-scim.amazonaws.com``: SCIM provisioning from an external identity provider. Its
  request parameters are ``HIDDEN_DUE_TO_SECURITY_REASONS``, so a SCIM change re-reads every
  granted group.

Events are hints, as for IAM: the Identity Store is read again, and the schedule repairs whatever
an event missed (a trail not recording that region, a SCIM token from before September 2024).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chalicelib.config import Config
from chalicelib.model.sso import SsoScope

IDENTITY_STORE_SOURCE = "identitystore.amazonaws.com"
SCIM_SOURCE = "identitystore-scim.amazonaws.com"
IDENTITY_STORE_EVENTS = (
    "CreateGroupMembership",
    "DeleteGroupMembership",
    "UpdateUser",
    "DeleteUser",
    "DeleteGroup",
    "UpdateGroup",
)
SCIM_EVENTS = ("PatchGroup", "DeleteGroup", "PatchUser", "PutUser", "DeleteUser")
EVENTS_BY_SOURCE: dict[str, tuple[str, ...]] = {IDENTITY_STORE_SOURCE: IDENTITY_STORE_EVENTS, SCIM_SOURCE: SCIM_EVENTS}

# Identity Store ids: a user's or group's is a UUID, optionally after a 10-hex directory prefix.
Id = Annotated[
    str, StringConstraints(strict=True, pattern=r"^([0-9a-f]{10}-)?[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")
]
StoreId = Annotated[str, StringConstraints(strict=True, max_length=64)]


class _Member(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    user_id: Id = Field(alias="userId")


class _Request(BaseModel):
    """requestParameters of an Identity Store API event: what the service reads, checked first."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    identity_store_id: StoreId | None = Field(default=None, alias="identityStoreId")
    user_id: Id | None = Field(default=None, alias="userId")
    member_id: _Member | None = Field(default=None, alias="memberId")


def sso_concerns(
    event_source: str, event_name: str, parameters: Mapping[str, Any] | None, config: Config
) -> SsoScope | str:
    """Whom an Identity Store event concerns, or why it concerns nothing configured (the reason
    starts with ``malformed:`` when its parameters cannot be read)."""
    settings = config.identity_center
    if settings is None or not settings.group_grants:
        return "no Identity Center group is granted (identityCenter.groupGrants)"
    if event_source == SCIM_SOURCE:
        return SsoScope(all_groups=True)
    try:
        request = _Request.model_validate(parameters or {})
    except ValidationError as err:
        first = err.errors()[0]
        return f"malformed: {event_name}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    if request.identity_store_id not in (None, settings.identity_store_id):
        return f"identity store {request.identity_store_id!r} is not {settings.identity_store_id!r}"
    person = request.member_id.user_id if request.member_id else request.user_id
    if event_name in ("CreateGroupMembership", "UpdateUser", "DeleteUser") and person:
        return SsoScope(users=frozenset({person}))
    return SsoScope(all_groups=True)
