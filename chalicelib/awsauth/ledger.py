"""The ownership ledger: which aws-auth entries eks-iam-sync created, and why.

It lives in an annotation of the aws-auth ConfigMap, not inside the entries (tools that re-marshal
the lists strip in-band marks) and not in another object (so one update with one resourceVersion
changes entries and ledger together). Tools that rewrite ``data`` keep annotations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib import arns
from chalicelib.awsauth.model import ENTRY_KEYS
from chalicelib.errors import CorruptState

LEDGER_VERSION = 1


class LedgerError(CorruptState):
    """The ledger annotation exists but cannot be read: nothing may be written until it is fixed."""


@dataclass(frozen=True)
class LedgerRecord:
    arn: str
    key: str  # mapRoles | mapUsers
    source: str  # the configuration rule or IAM tag that produced the entry
    event_id: str | None = None  # the CloudTrail eventID that last changed it

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"arn": self.arn, "key": self.key, "source": self.source}
        if self.event_id:
            record["eventId"] = self.event_id
        return record


@dataclass(frozen=True)
class Ledger:
    records: Mapping[str, LedgerRecord] = field(default_factory=dict)  # by lower-case ARN

    @classmethod
    def of(cls, records: Iterable[LedgerRecord]) -> Ledger:
        return cls({r.arn.lower(): r for r in records})

    def owns(self, arn: str) -> bool:
        return arn.lower() in self.records

    def members_of(self, groups: Iterable[str]) -> set[str]:
        """Lower-case names of the users mapped because they were in one of these IAM groups."""
        wanted = {f"identities.groups[{g}]".lower() for g in groups}
        return {
            arns.name_of(r.arn).lower()
            for r in self.records.values()
            if arns.kind_of(r.arn) == "user" and any(w in r.source.lower() for w in wanted)
        }

    def serialize(self) -> str:
        ordered = [self.records[k].to_json() for k in sorted(self.records)]
        return json.dumps({"version": LEDGER_VERSION, "entries": ordered}, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str | None) -> Ledger:
        if not text:
            return cls()
        try:
            document = json.loads(text)
            if document.get("version") != LEDGER_VERSION:
                raise LedgerError(f"unsupported ledger version {document.get('version')!r}")
            records = [
                LedgerRecord(arn=str(r["arn"]), key=str(r["key"]), source=str(r["source"]), event_id=r.get("eventId"))
                for r in document["entries"]
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise LedgerError(f"the ownership ledger is unreadable: {err}") from err
        for record in records:
            if record.key not in ENTRY_KEYS:
                raise LedgerError(f"the ownership ledger names an unknown key {record.key!r}")
        return cls.of(records)
