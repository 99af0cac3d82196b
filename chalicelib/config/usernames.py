"""Kubernetes usernames the configuration may give, and the ones the service makes: reserved prefixes,
the service's own prefix, the generated forms and session templates. Pure."""

from __future__ import annotations

import re

RESERVED_USERNAME_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")

# The namespace of Kubernetes usernames the service owns: every username it writes is under it (or a
# per-session template), so no foreign RoleBinding or ClusterRoleBinding can name it by accident or
# by design. Valid for access entries (no reserved prefix) and aws-auth (no template).
DEFAULT_USERNAME_PREFIX = "eks-iam-sync:"
# What follows the prefix in a username the service makes from an IAM name: <prefix>user:<name>,
# <prefix>role:<name>. An explicit username must not take this form, or it could be another's.
GENERATED_USERNAME_KINDS = ("user", "role")
SESSION_TEMPLATES = re.compile(r"\{\{SessionName(Raw)?\}\}")
_USERNAME_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,62}:$", re.ASCII)
DEFAULT_PERMISSION_SET_USERNAME = "sso:{{SessionName}}"


def printable(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"a {what} must not be empty")
    if value != value.strip():
        raise ValueError(f"{value!r}: a {what} must not start or end with whitespace")
    if any(not char.isprintable() for char in value):
        raise ValueError(f"{value!r}: a {what} must not contain control or invisible characters")
    return value


def valid_username(value: str) -> str:
    printable(value, "username")
    if value.lower().startswith(RESERVED_USERNAME_PREFIXES):
        raise ValueError(f"{value!r} starts with a reserved prefix {RESERVED_USERNAME_PREFIXES}")
    return value


def valid_username_prefix(value: str) -> str:
    if not _USERNAME_PREFIX.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a username prefix: 1 to 64 of A-Z a-z 0-9 . _ @ : -, ending in ':' "
            f"(the default is {DEFAULT_USERNAME_PREFIX!r})"
        )
    if value.lower().startswith(RESERVED_USERNAME_PREFIXES):
        raise ValueError(f"{value!r} starts with a prefix EKS reserves {RESERVED_USERNAME_PREFIXES}")
    return value


def generated_username(prefix: str, kind: str, name: str) -> str:
    """The username of an IAM user or role mapped by name: under the service's prefix, with its kind,
    so neither a foreign subject nor a user and a role of the same name can share it."""
    return f"{prefix}{kind}:{name}"


def username_problem(username: str, prefix: str) -> str | None:
    """Why an explicit username could equal a subject the service does not own, or None.

    Allowed: a name under the service's prefix that is not of a generated form (those name the
    principals the service maps by name), or a per-session template after a literal namespace
    (``sso:{{SessionName}}``: each session its own name, never a fixed subject).
    """
    if username.startswith(prefix):
        rest = username[len(prefix) :]
        if rest.startswith(tuple(f"{kind}:" for kind in GENERATED_USERNAME_KINDS)):
            return (
                f"{username!r}: {prefix}user:<name> and {prefix}role:<name> are the usernames of the principals "
                "the service maps by name; another principal given one would hold their grants"
            )
        return None
    template = SESSION_TEMPLATES.search(username)
    if template and ":" in username[: template.start()]:
        return None
    return (
        f"{username!r} could be a subject the service does not own (a RoleBinding or ClusterRoleBinding made by "
        f"someone else would then apply to these sessions): start it with usernamePrefix {prefix!r}, use a "
        "session template after a namespace of its own ('sso:{{SessionName}}'), or leave it out"
    )
