"""Every operation on IAM and STS ARNs, in one place. Pure.

``arn:<partition>:<service>::<account>:<resource>`` where, for the principals this service maps,
the resource is ``user/<path/>name``, ``role/<path/>name`` or ``assumed-role/<role>/<session>``.
IAM names are ASCII and unique per account case-insensitively, so comparisons fold ASCII case only (``fold``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str  # iam | sts
    account: str
    kind: str  # user | role | assumed-role | group | ... (the resource type)
    path: str  # "/" or "/a/b/" (IAM); "" for STS
    name: str  # the user, role or group name; the role's name for an assumed-role session
    session: str = ""  # assumed-role only

    @property
    def text(self) -> str:
        if self.kind == "assumed-role":
            return f"arn:{self.partition}:sts::{self.account}:assumed-role/{self.name}/{self.session}"
        return f"arn:{self.partition}:{self.service}::{self.account}:{self.kind}{self.path}{self.name}"

    def unpathed(self) -> Arn:
        """What STS reports and aws-iam-authenticator matches: the path dropped."""
        return Arn(self.partition, self.service, self.account, self.kind, "/" if self.path else "", self.name)

    def canonical(self) -> Arn:
        """An assumed-role session becomes its role's (path-free) ARN; anything else is unchanged."""
        if self.kind == "assumed-role":
            return Arn(self.partition, "iam", self.account, "role", "/", self.name)
        return self


def parse(text: str) -> Arn | None:
    """The ARN's parts, or None when ``text`` is not an IAM/STS principal ARN."""
    fields = text.split(":", 5)
    if len(fields) != 6 or fields[0] != "arn" or fields[3] != "":
        return None
    _, partition, service, _, account, resource = fields
    kind, slash, rest = resource.partition("/")
    if not slash or not rest:
        return None
    if kind == "assumed-role":
        role, _, session = rest.partition("/")
        return Arn(partition, service, account, kind, "", role, session) if role and session else None
    head, _, name = rest.rpartition("/")
    if not name:
        return None
    return Arn(partition, service, account, kind, f"/{head}/" if head else "/", name)


def canonical(text: str) -> str:
    """What aws-iam-authenticator matches: an assumed-role session becomes its role's ARN (no path)."""
    arn = parse(text)
    return arn.canonical().text if arn else text


def unpathed(text: str) -> str:
    arn = parse(text)
    return arn.unpathed().text if arn else text


def name_of(text: str) -> str:
    """The principal's name (the last path segment); the text itself when it is not an ARN."""
    arn = parse(text)
    return arn.name if arn else text


def kind_of(text: str) -> str:
    arn = parse(text)
    return arn.kind if arn else ""


def has_path(text: str) -> bool:
    arn = parse(text)
    return arn is not None and arn.path not in ("", "/")


def role_identity(text: str) -> str:
    """Account and role name, lower case: two roles alike here are indistinguishable to STS."""
    arn = parse(text)
    return fold(f"{arn.account}/{arn.name}") if arn else fold(text)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(name: str) -> str:
    """An IAM name as IAM compares it: ASCII letters lower-cased, nothing else touched. ``str.lower``
    would fold look-alikes into ASCII (the Kelvin sign U+212A to "k"), so a name IAM could never hold
    would equal one it does."""
    return name.translate(_ASCII_LOWER)


SSO_ROLE_PATH = "/aws-reserved/sso.amazonaws.com/"
_SSO_ROLE_NAME = re.compile(r"^AWSReservedSSO_(?P<permission_set>.+)_(?P<suffix>[0-9a-f]{16})$")


def permission_set_of(role_name: str, path: str | None = None) -> str | None:
    """The permission set an IAM Identity Center role was provisioned for, or None. ``path`` (when
    known; a DeleteRole event does not carry it) must be Identity Center's own."""
    if path is not None and not path.startswith(SSO_ROLE_PATH):
        return None
    found = _SSO_ROLE_NAME.match(role_name)
    return found.group("permission_set") if found else None
