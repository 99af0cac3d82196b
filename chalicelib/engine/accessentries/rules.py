"""What EKS accepts in an access entry (shared/docs/access-entries.md), checked before asking. Pure."""

from __future__ import annotations

import re

from chalicelib.model import arns
from chalicelib.model.identities import OwnedEntry, Refusal

RESERVED_USERNAME_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")
_SESSION_NAME = re.compile(r"\{\{SessionName(Raw)?\}\}")


def refusal_for(owned: OwnedEntry) -> Refusal | None:
    """Why EKS would refuse this entry, or None."""
    arn = arns.parse(owned.iam_arn)
    if arn is None or arn.service != "iam" or arn.kind not in ("user", "role"):
        return Refusal("invalid-principal", f"{owned.iam_arn} is not an IAM user or role ARN", owned.iam_arn)
    if arn.kind == "role" and arn.path.startswith("/aws-service-role/"):
        return Refusal("invalid-principal", f"{owned.iam_arn} is a service-linked role: EKS refuses it", owned.iam_arn)
    entry = owned.entry
    system = [g for g in entry.groups if g.lower().startswith("system:")]
    if system:
        return Refusal(
            "system-group", f"{owned.iam_arn} would map to {system}: EKS refuses system: groups", owned.iam_arn
        )
    if entry.username.lower().startswith(RESERVED_USERNAME_PREFIXES):
        return Refusal(
            "reserved-username",
            f"{owned.iam_arn}: username {entry.username!r} starts with one of {list(RESERVED_USERNAME_PREFIXES)}",
            owned.iam_arn,
        )
    template = _SESSION_NAME.search(entry.username)
    if template and ":" not in entry.username[: template.start()]:
        return Refusal(
            "session-name-template",
            f"{owned.iam_arn}: username {entry.username!r} needs a ':' somewhere before {template.group(0)}",
            owned.iam_arn,
        )
    return None
