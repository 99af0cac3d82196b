"""Merges the entries eks-iam-sync owns into an aws-auth document, leaving everything else alone.

Takes the current data, its reading, the ledger and the desired owned entries (for everyone, or
only for the principals a scoped reconcile concerns) and returns the new data, the new ledger, the
changes and the conflicts. Pure: no I/O. Rules:

- a foreign entry (not in the ledger) is never changed or removed; a desired entry for its ARN is a
  conflict, reported and not written;
- an owned entry is replaced in place by its desired form (repairing hand edits), or removed when it
  is no longer desired; owned entries outside the scope are left as they are;
- new entries are appended in ARN order, so the output does not depend on the order of ``desired``;
- a key whose entries do not change keeps its bytes; a changed key is rendered anew, foreign entries
  (and their unknown fields) included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass

from chalicelib.engine.awsauth.ledger import Ledger, LedgerRecord
from chalicelib.engine.awsauth.model import ENTRY_KEYS, Entry
from chalicelib.engine.awsauth.parse import Reading
from chalicelib.engine.awsauth.render import render_key
from chalicelib.model.identities import Change, Conflict, OwnedEntry


@dataclass(frozen=True)
class Merge:
    data: dict[str, str]
    ledger: Ledger
    changes: tuple[Change, ...]
    conflicts: tuple[Conflict, ...]


def merge(
    data: Mapping[str, str],
    reading: Reading,
    ledger: Ledger,
    desired: Iterable[OwnedEntry],
    scope: Container[str] | None = None,
) -> Merge:
    """``scope``: lower-case ARNs this run may touch; None means every owned entry (a full reconcile)."""
    if not reading.understood:
        raise ValueError("merge() needs a document both parser generations read alike: check_current() first")
    wanted = _dedupe(desired, scope)
    new_data = dict(data)
    records = dict(ledger.records)
    changes: list[Change] = []
    conflicts: list[Conflict] = []
    for key in ENTRY_KEYS:
        here = {arn: w for arn, w in wanted.items() if w.key == key}
        result = _merge_key(key, reading.entries(key), ledger, here, scope, changes, conflicts)
        for arn, record in ledger.records.items():
            if record.key == key and (scope is None or arn in scope) and arn not in here:
                records.pop(arn, None)
        for arn, owned in here.items():
            if any(c.wanted is owned for c in conflicts):
                continue
            records[arn] = LedgerRecord(owned.entry.arn, key, owned.source)
        if result != list(reading.entries(key)):
            new_data[key] = render_key(key, result)
    return Merge(new_data, Ledger(records), tuple(changes), tuple(conflicts))


def _merge_key(
    key: str,
    current: Iterable[Entry],
    ledger: Ledger,
    here: Mapping[str, OwnedEntry],
    scope: Container[str] | None,
    changes: list[Change],
    conflicts: list[Conflict],
) -> list[Entry]:
    """The new entry list of one key; appends to ``changes`` and ``conflicts``. An ARN with several
    entries (someone else's duplicates, which the consumer resolves) is written around, never touched."""
    result: list[Entry] = []
    placed: set[str] = set()
    entries = list(current)
    counts = Counter(e.key for e in entries)
    for entry in entries:
        arn = entry.key
        record = ledger.records.get(arn)
        if counts[arn] > 1:
            result.append(entry)
            if arn in here and arn not in placed:
                conflicts.append(Conflict(key, entry, here[arn]))
                placed.add(arn)
        elif record is None or record.key != key or (scope is not None and arn not in scope):
            result.append(entry)
            if arn in here and record is None:
                conflicts.append(Conflict(key, entry, here[arn]))
                placed.add(arn)
        elif arn in here and arn not in placed:
            result.append(here[arn].entry)
            placed.add(arn)
            if here[arn].entry != entry:
                changes.append(Change("update", key, entry, here[arn].entry, here[arn].source))
        else:
            changes.append(Change("remove", key, entry, None, record.source))
    for arn in sorted(set(here) - placed):
        result.append(here[arn].entry)
        changes.append(Change("add", key, None, here[arn].entry, here[arn].source))
    return result


def _dedupe(desired: Iterable[OwnedEntry], scope: Container[str] | None) -> dict[str, OwnedEntry]:
    wanted: dict[str, OwnedEntry] = {}
    for owned in desired:
        arn = owned.entry.key
        if scope is not None and arn not in scope:
            continue
        if arn in wanted and wanted[arn] != owned:
            raise ValueError(f"two desired entries for {owned.entry.arn}: {wanted[arn]} and {owned}")
        wanted[arn] = owned
    return wanted
