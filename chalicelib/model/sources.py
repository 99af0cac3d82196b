"""Where a mapping or a RoleBinding comes from: the configured rule or IAM tag behind it, typed, and
its one written form, rendered and parsed here alone. The written form is stored on the clusters
(the aws-auth ledger's records, the access entries' source tag, the RoleBindings' source
annotation) and shown in logs, plans and reports:

    identities.groups[devs]   identities.roles[Deployer]   identities.permissionSets[Admin]
    tagGrants                 namespaceGrants[0]           tag eks-access/team-a=developer
    accessPolicy AmazonEKSViewPolicy (identities.groups[devs], tag eks-access/b=viewer)

An identity's sources are joined with ", ", a RoleBinding's with "; " (the forms every version
wrote); ``parse`` reads either, and a part it does not know is kept as written (kind ``unknown``,
rendered back unchanged), so nothing older versions stored is lost or misread. The separators
cannot occur inside a part: IAM names and tags hold no space before a comma, and tags no ";"; an
access policy's own sources are in parentheses, where nothing is split at the top level.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Kind = Literal["group", "role", "permissionSet", "tagGrants", "namespaceGrant", "tag", "accessPolicy", "unknown"]

IDENTITY_SEPARATOR = ", "
BINDING_SEPARATOR = "; "

_CONFIGURED = {"group": "groups", "role": "roles", "permissionSet": "permissionSets"}
# The configuration's key case-insensitively, as the ledger's readers always matched it.
_IDENTITY = re.compile(r"identities\.(groups|roles|permissionsets)\[([^\]]*)\]", re.IGNORECASE)
_KIND_OF_KEY = {"groups": "group", "roles": "role", "permissionsets": "permissionSet"}
_NAMESPACE_GRANT = re.compile(r"namespaceGrants\[(\d+)\]")
_ACCESS_POLICY = re.compile(r"accessPolicy (\S+) \((.*)\)")


@dataclass(frozen=True)
class Source:
    """``name``: the IAM group, IAM role or permission set (as configured), a tag's ``key=value``,
    an access policy's name, or, for ``unknown``, the part as written; ``index``: a namespaceGrants
    rule's position; ``via``: the rules or tags that grant an access policy (its RBAC equivalent's
    RoleBinding on an aws-auth cluster)."""

    kind: Kind
    name: str = ""
    index: int | None = None
    via: tuple[Source, ...] = ()

    @classmethod
    def group(cls, name: str) -> Source:
        return cls("group", name)

    @classmethod
    def role(cls, name: str) -> Source:
        return cls("role", name)

    @classmethod
    def permission_set(cls, name: str) -> Source:
        return cls("permissionSet", name)

    @classmethod
    def tag_grants(cls) -> Source:
        return cls("tagGrants")

    @classmethod
    def namespace_grant(cls, index: int) -> Source:
        return cls("namespaceGrant", index=index)

    @classmethod
    def tag(cls, subject: str) -> Source:
        """An IAM tag granting a namespace: ``subject`` is ``<key>=<profile>``."""
        return cls("tag", subject)

    @classmethod
    def access_policy(cls, policy: str, via: tuple[Source, ...]) -> Source:
        return cls("accessPolicy", policy, via=via)

    def render(self) -> str:
        if self.kind in _CONFIGURED:
            return f"identities.{_CONFIGURED[self.kind]}[{self.name}]"
        if self.kind == "tagGrants":
            return "tagGrants"
        if self.kind == "namespaceGrant":
            return f"namespaceGrants[{self.index}]"
        if self.kind == "tag":
            return f"tag {self.name}"
        if self.kind == "accessPolicy":
            return f"accessPolicy {self.name} ({render(self.via)})"
        return self.name


def render(sources: Iterable[Source], separator: str = IDENTITY_SEPARATOR) -> str:
    return separator.join(source.render() for source in sources)


def parse(text: str) -> tuple[Source, ...]:
    """Every source a written form names, in order (either separator)."""
    return tuple(_part(part) for part in _parts(text.strip()) if part)


def _parts(text: str) -> list[str]:
    """``text`` split at each "; " or ", " outside parentheses."""
    parts, depth, start = [], 0, 0
    for at, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if depth == 0 and char in ";," and text[at + 1 : at + 2] == " ":
            parts.append(text[start:at])
            start = at + 2
    return [*parts, text[start:]]


def _part(text: str) -> Source:
    if found := _IDENTITY.fullmatch(text):
        return Source(_KIND_OF_KEY[found.group(1).lower()], found.group(2))  # type: ignore[arg-type]
    if text == "tagGrants":
        return Source.tag_grants()
    if found := _NAMESPACE_GRANT.fullmatch(text):
        return Source.namespace_grant(int(found.group(1)))
    if text.startswith("tag ") and len(text) > len("tag "):
        return Source.tag(text.removeprefix("tag "))
    if found := _ACCESS_POLICY.fullmatch(text):
        return Source.access_policy(found.group(1), parse(found.group(2)))
    return Source("unknown", text)


def groups_named(text: str) -> frozenset[str]:
    """The configured IAM groups (lower case) a written form names."""
    return frozenset(s.name.lower() for s in parse(text) if s.kind == "group")
