"""Builders for aws-auth tests: entries, documents and desired sets."""

from __future__ import annotations

import yaml

from chalicelib.engine.awsauth.ledger import Ledger, LedgerRecord
from chalicelib.engine.awsauth.model import MAP_ROLES, MAP_USERS, Entry
from chalicelib.model import sources
from chalicelib.model.identities import OwnedEntry

ACCOUNT = "111122223333"
NODE = Entry(
    f"arn:aws:iam::{ACCOUNT}:role/eks-node",
    "system:node:{{EC2PrivateDNSName}}",
    ("system:bootstrappers", "system:nodes"),
)


def user(name: str, *groups: str, path: str = "/") -> Entry:
    return Entry(f"arn:aws:iam::{ACCOUNT}:user{path}{name}", name, groups)


def role(name: str, *groups: str, username: str | None = None) -> Entry:
    return Entry(f"arn:aws:iam::{ACCOUNT}:role/{name}", username or name, groups)


def owned_user(entry: Entry, source: str = "identities.groups[devs]") -> OwnedEntry:
    """``source``: as written (the ledger's form)."""
    return OwnedEntry(MAP_USERS, entry, sources.parse(source))


def owned_role(entry: Entry, source: str = "identities.roles[dev]") -> OwnedEntry:
    return OwnedEntry(MAP_ROLES, entry, sources.parse(source))


def document(roles: list[Entry] = (), users: list[Entry] = ()) -> dict[str, str]:  # type: ignore[assignment]
    """A document as another writer (eksctl, kubectl) would leave it: PyYAML block style."""

    def dump(arn_field: str, entries: list[Entry]) -> str:
        items = []
        for e in entries:
            item: dict[str, object] = {arn_field: e.arn, "username": e.username}
            if e.groups:
                item["groups"] = list(e.groups)
            item.update(dict(e.extra))
            items.append(item)
        return yaml.safe_dump(items, default_flow_style=False, sort_keys=False, allow_unicode=True)

    return {"mapRoles": dump("rolearn", list(roles)), "mapUsers": dump("userarn", list(users))}


def ledger_of(*owned: OwnedEntry) -> Ledger:
    return Ledger.of(LedgerRecord(o.entry.arn, o.key, o.source) for o in owned)
