"""The ``identityCenter`` key: IAM Identity Center groups granted namespace access per person, inside
one shared permission set. Each member of a granted group gets a RoleBinding whose subject is the
username the permission set's template renders for that person's session (``sso:{{SessionName}}``
for ``alice@example.com`` is ``sso:alice-example.com``), so people who share one
``AWSReservedSSO_<name>_<suffix>`` role still get their own namespaces."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StrictBool

from chalicelib.config.schema import (
    ExternalId,
    Namespace,
    NamespaceSelector,
    RbacName,
    RoleArn,
    RoleToAssume,
    _matches,
    _Model,
)
from chalicelib.config.usernames import printable

# The Identity Store's id: d-<10 hex> (an Identity Center instance's own store), or a directory's
# <10 hex>-<uuid> / <uuid> form (Identity Store API reference: IdentityStoreId's pattern).
_IDENTITY_STORE_ID = re.compile(
    r"^(d-[0-9a-f]{10}|([0-9a-f]{10}-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.ASCII
)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$", re.ASCII)
_PERMISSION_SET = re.compile(r"^[A-Za-z0-9_+=,.@-]{1,32}$", re.ASCII)


def _group_name(value: str) -> str:
    printable(value, "group DisplayName")
    if len(value) > 1024:
        raise ValueError("an Identity Store group DisplayName is at most 1024 characters")
    return value


class GroupGrant(_Model):
    """Members of ``group`` (its DisplayName), signed in through ``permissionSet``, get ``clusterRole``
    in ``namespaces`` (or the namespaces ``namespaceSelector`` selects)."""

    group: Annotated[str, AfterValidator(_group_name)]
    permission_set: Annotated[str, _matches(_PERMISSION_SET, "permission set name")] = Field(alias="permissionSet")
    cluster_role: RbacName = Field(alias="clusterRole")
    namespaces: tuple[Namespace, ...] | None = None
    namespace_selector: NamespaceSelector | None = Field(default=None, alias="namespaceSelector")
    allow_system_namespaces: StrictBool = Field(default=False, alias="allowSystemNamespaces")


class IdentityCenter(_Model):
    identity_store_id: Annotated[str, _matches(_IDENTITY_STORE_ID, "Identity Store id (d-1234567890)")] = Field(
        alias="identityStoreId"
    )
    region: Annotated[str, _matches(_REGION, "AWS region")]
    # Identity Center lives in the management or a delegated account: read it as this role.
    role_arn: RoleArn | None = Field(default=None, alias="roleArn")
    external_id: ExternalId | None = Field(default=None, alias="externalId")
    group_grants: tuple[GroupGrant, ...] = Field(default=(), alias="groupGrants")

    @property
    def assumed_role(self) -> RoleToAssume | None:
        """The role the Identity Store is read as; None: the service's own account."""
        return RoleToAssume(self.role_arn, self.external_id) if self.role_arn else None

    def groups(self) -> list[str]:
        """The granted groups' DisplayNames, each once, in the order first granted."""
        return list(dict.fromkeys(g.group for g in self.group_grants))


# What aws-iam-authenticator (and EKS, which runs it) substitutes in a mapping's username
# (kubernetes-sigs/aws-iam-authenticator, pkg/server/server.go, renderTemplate): {{SessionName}} is
# the role session name with every '@' replaced by '-'; {{SessionNameRaw}} is the session name as is.
# Identity Center names a permission set's session after the person's Identity Store UserName.
_TEMPLATE_VARIABLE = re.compile(r"\{\{(\w+)\}\}")
PER_PERSON_TEMPLATES = ("SessionName", "SessionNameRaw")


def session_username(template: str, session_name: str) -> str:
    """The username a session named ``session_name`` gets from ``template``, as the authenticator
    renders it (only the session templates; ``per_person_template_problem`` refuses any other)."""
    return template.replace("{{SessionNameRaw}}", session_name).replace(
        "{{SessionName}}", session_name.replace("@", "-")
    )


def per_person_template_problem(template: str) -> str | None:
    """Why ``template`` cannot name one person across every account of a permission set, or None."""
    variables = _TEMPLATE_VARIABLE.findall(template)
    if not any(v in PER_PERSON_TEMPLATES for v in variables):
        return (
            f"its username {template!r} is the same for every session, so a RoleBinding for it would reach everyone "
            "signed in through the permission set: set its username to a session template such as "
            "'sso:{{SessionName}}' (the default)"
        )
    others = sorted({v for v in variables if v not in PER_PERSON_TEMPLATES})
    if others:
        return (
            f"its username {template!r} also holds {', '.join('{{' + v + '}}' for v in others)}, which differs per "
            "account or per key, so one RoleBinding per person cannot name it: keep only {{SessionName}} or "
            "{{SessionNameRaw}} after a namespace of its own ('sso:{{SessionName}}')"
        )
    return None
