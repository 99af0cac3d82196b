"""The ownership ledger: which aws-auth entries eks-iam-sync created, and why.

It lives in an annotation of the aws-auth ConfigMap, not inside the entries (tools that re-marshal
the lists strip in-band marks) and not in another object (so one update with one resourceVersion
changes entries and ledger together). Tools that rewrite ``data`` keep annotations.

Each instance of the service keeps its own section (``instances``: name -> packed records); ``zlib``
holds the default instance's, which is also where every version before instances kept the whole
ledger. A named instance adopts those unmarked records (they are its own, and its next write moves them
into its section); another instance's section is kept as read, and its entries are foreign.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.engine.awsauth.model import ENTRY_KEYS, MAP_ROLES, MAP_USERS
from chalicelib.errors import CorruptState
from chalicelib.model import arns, sources
from chalicelib.model.identities import user_mapped_for
from chalicelib.model.ownership import DEFAULT_INSTANCE, instance_marker

LEDGER_VERSION = 2
MAX_LEDGER_BYTES = 32 * 1024 * 1024  # inflated; aws-auth itself is at most 1 MiB


class LedgerError(CorruptState):
    """The ledger annotation exists but cannot be read: nothing may be written until it is fixed."""


@dataclass(frozen=True)
class LedgerRecord:
    arn: str
    key: str  # mapRoles | mapUsers
    source: str  # the configuration rule or IAM tag that produced the entry

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"arn": self.arn, "key": self.key, "source": self.source}
        return record


@dataclass(frozen=True)
class Ledger:
    records: Mapping[str, LedgerRecord] = field(default_factory=dict)  # by lower-case ARN: this instance's
    instance: str = DEFAULT_INSTANCE
    others: Mapping[str, str] = field(default_factory=dict)  # the other instances' sections, packed, as read
    owners: Mapping[str, str] = field(default_factory=dict)  # lower-case ARN -> the other instance owning it
    adopted: bool = False  # unmarked records this (named) instance took over: its next write marks them

    @classmethod
    def of(cls, records: Iterable[LedgerRecord]) -> Ledger:
        return cls({r.arn.lower(): r for r in records})

    def owns(self, arn: str) -> bool:
        return arn.lower() in self.records

    def members_of(self, groups: Iterable[str]) -> set[str]:
        """Names of the users mapped because they were in one of these IAM groups, as their ARNs spell them."""
        groups = tuple(groups)
        return {name for r in self.records.values() if (name := user_mapped_for(r.arn, r.source, groups))}

    def answers_like(self, other: Ledger) -> bool:
        """Whether both ledgers answer alike what the ledger is read for: which entries the service
        owns (ARN as spelled, key) and, for ``members_of``, the configured IAM groups each was mapped
        for. The rest of a source (a tag grant, a configured role) is informational: a change there
        alone does not justify a write of aws-auth (and a backup, and a resourceVersion)."""
        return self._answers() == other._answers()

    def _answers(self) -> dict[str, tuple[str, str, frozenset[str]]]:
        return {arn: (r.arn, r.key, sources.groups_named(r.source)) for arn, r in self.records.items()}

    def serialize(self) -> str:
        """Version 2: ARNs and an index into the distinct sources, zlib-compressed and base64-encoded,
        so that the ledger of 5 000 entries stays far below the 256 KiB Kubernetes allows for all
        annotations together (version 1 passed it at ~2 200 entries). CloudTrail event ids are not
        kept here (they are incompressible): each change's log line and RoleBinding carry them. This
        instance's records go to its section (the default instance's to ``zlib``), the others' as read."""
        marker = instance_marker(self.instance)
        sections = {name: packed for name, packed in self.others.items() if name != marker}
        if marker and self.records:
            sections[marker] = _pack(self.records)
        document: dict[str, Any] = {"version": LEDGER_VERSION, "zlib": _pack({} if marker else self.records)}
        if sections:
            document["instances"] = dict(sorted(sections.items()))
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str | None, instance: str | None = DEFAULT_INSTANCE) -> Ledger:
        """Reads version 2 and the uncompressed version 1 (upgraded in place by the next write), as
        ``instance`` owns it (None: every instance's records together, as the report reads them)."""
        if not text:
            return cls(instance=instance or DEFAULT_INSTANCE)
        try:
            legacy, sections = _sections(json.loads(text))
            unpacked = {name: _unpack(packed) for name, packed in sections.items()}
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, zlib.error) as err:
            raise LedgerError(f"the ownership ledger is unreadable: {err}") from err
        for record in [*legacy, *(r for records in unpacked.values() for r in records)]:
            if record.key not in ENTRY_KEYS:
                raise LedgerError(f"the ownership ledger names an unknown key {record.key!r}")
        if instance is None:
            return cls.of([*legacy, *(r for records in unpacked.values() for r in records)])
        marker = instance_marker(instance)
        own = [*unpacked.pop(marker, []), *legacy] if marker else legacy
        owners = {r.arn.lower(): name for name, records in unpacked.items() for r in records}
        others = {name: packed for name, packed in sections.items() if name != marker}
        return cls({r.arn.lower(): r for r in own}, instance, others, owners, bool(marker and legacy))


def _sections(document: Any) -> tuple[list[LedgerRecord], dict[str, str]]:
    """The unmarked records (version 1, or version 2's ``zlib``) and every instance's packed section."""
    version = document.get("version")
    if version == 1:
        return [_record(r["arn"], r["source"], r["key"]) for r in document["entries"]], {}
    if version != LEDGER_VERSION:
        raise LedgerError(f"unsupported ledger version {version!r}")
    sections = document.get("instances", {})
    if not isinstance(sections, dict) or not all(isinstance(v, str) for v in sections.values()):
        raise LedgerError("the ownership ledger's instances are not a map of packed sections")
    return _unpack(document["zlib"]), sections


def _pack(records: Mapping[str, LedgerRecord]) -> str:
    ordered = [records[k] for k in sorted(records)]
    sources = sorted({r.source for r in ordered})
    source_index = {source: i for i, source in enumerate(sources)}
    rows = [[r.arn, source_index[r.source]] for r in ordered]
    inner = json.dumps({"sources": sources, "entries": rows}, separators=(",", ":"))
    return base64.b64encode(zlib.compress(inner.encode(), 9)).decode()


def _unpack(packed: str) -> list[LedgerRecord]:
    inflater = zlib.decompressobj()
    inner = inflater.decompress(base64.b64decode(packed, validate=True), MAX_LEDGER_BYTES)
    if inflater.unconsumed_tail:
        raise LedgerError(f"the ownership ledger inflates beyond {MAX_LEDGER_BYTES} bytes")
    document = json.loads(inner)
    sources = document["sources"]
    return [_record(arn, sources[source], key_for(str(arn))) for arn, source in document["entries"]]


def _record(arn: object, source: object, key: object) -> LedgerRecord:
    if not all(isinstance(v, str) for v in (arn, source, key)):
        raise LedgerError("the ownership ledger has a record of the wrong shape")
    return LedgerRecord(str(arn), str(key), str(source))


def key_for(arn: str) -> str:
    """Where aws-auth keeps a principal's entry: roles in mapRoles, users in mapUsers."""
    return MAP_ROLES if arns.kind_of(arn) == "role" else MAP_USERS
