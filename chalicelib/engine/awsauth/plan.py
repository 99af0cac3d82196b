"""Stage 4 for aws-auth: (aws-auth as observed, what to achieve, guardrail policy) -> one step. Pure.

The intent is either a sync (merge the desired owned entries, for everyone or for a scope) or a
restore (bring back a backup). The step says whether to write and carries the exact post-image, so
the writer only writes what was checked, and re-plans from a fresh read after a conflict.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, replace
from typing import Literal

from chalicelib.engine.awsauth import reading as readings
from chalicelib.engine.awsauth.backups import Backup
from chalicelib.engine.awsauth.guardrails import check_current, check_post_image
from chalicelib.engine.awsauth.ledger import Ledger, LedgerError
from chalicelib.engine.awsauth.merge import merge
from chalicelib.engine.awsauth.model import ENTRY_KEYS
from chalicelib.engine.awsauth.parse import Reading
from chalicelib.engine.guardrails import Policy
from chalicelib.model.identities import Change, Conflict, OwnedEntry, Refusal
from chalicelib.model.ownership import (
    BACKUP_HOUR_ANNOTATION,
    BACKUP_SEQUENCE_ANNOTATION,
    LEDGER_ANNOTATION,
    WRITTEN_DIGEST_ANNOTATION,
    owner,
)
from chalicelib.model.ports import ObservedConfigMap

# The other annotations a write sets (backup sequence and hour, the digest of its data), at their longest.
OUR_OTHER_ANNOTATIONS = {
    BACKUP_SEQUENCE_ANNOTATION: "9" * 12,
    BACKUP_HOUR_ANNOTATION: "2026-11-30T11",
    WRITTEN_DIGEST_ANNOTATION: "sha256:" + "0" * 64,
}


@dataclass(frozen=True)
class SyncIntent:
    desired: tuple[OwnedEntry, ...]
    scope: Container[str] | None = None  # lower-case ARNs this run may touch; None: every owned entry


@dataclass(frozen=True)
class RestoreIntent:
    backup: Backup
    force: bool = False  # restore even over a document EKS cannot read


@dataclass(frozen=True)
class AwsAuthStep:
    intent: SyncIntent | RestoreIntent
    status: Literal["unchanged", "refused", "write"]
    observed: ObservedConfigMap | None  # what the step was computed from (its resourceVersion)
    data: dict[str, str] | None = None  # the post-image, when status == "write"
    ledger: str = ""
    changes: tuple[Change, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    warnings: tuple[str, ...] = ()
    sizes: tuple[tuple[str, float], ...] = ()  # (limit, share) of the post-image, when one was computed
    instances: frozenset[str] = frozenset()  # the other instances whose ledger sections record entries (a sync's)


def plan_aws_auth(
    observed: ObservedConfigMap | None, intent: SyncIntent | RestoreIntent, policy: Policy
) -> AwsAuthStep:
    if isinstance(intent, RestoreIntent):
        return _plan_restore(observed, intent, policy)
    return _plan_sync(observed, intent, policy)


def _plan_sync(observed: ObservedConfigMap | None, intent: SyncIntent, policy: Policy) -> AwsAuthStep:
    data = observed.data if observed else {}
    reading = readings.read(data)
    verdict = check_current(reading)
    try:
        ledger = Ledger.parse(observed.annotations.get(LEDGER_ANNOTATION) if observed else None, policy.instance)
    except LedgerError as err:
        refusals = verdict.refusals if not verdict.allowed else (Refusal("ledger-unreadable", str(err)),)
        return AwsAuthStep(intent, "refused", observed, refusals=refusals)
    others = frozenset(ledger.owners.values())  # read whatever the step, so a claimed cluster is seen
    if not verdict.allowed:
        return AwsAuthStep(intent, "refused", observed, refusals=verdict.refusals, instances=others)
    merged = merge(data, reading, ledger, intent.desired, intent.scope)
    after = replace(ledger, records=merged.ledger.records, adopted=False)  # the other instances' sections kept
    conflicts = tuple(_named(c, ledger) for c in merged.conflicts)
    # Writes stay the diff: a ledger whose sources changed only where nothing reads them (a tag grant
    # added to a group member) is not worth a write; ownership and group attribution always are, and so
    # is this instance's name on the unmarked records it adopted.
    if merged.data == data and after.answers_like(ledger) and not ledger.adopted:
        return AwsAuthStep(intent, "unchanged", observed, conflicts=conflicts, instances=others)
    removed = sum(1 for c in merged.changes if c.action == "remove")
    ledger_text = after.serialize()
    verdict = check_post_image(
        reading,
        ledger,
        merged.data,
        after,
        removed=removed,
        policy=policy,
        annotations=_annotations_after(observed, ledger_text),
    )
    status: Literal["refused", "write"] = "write" if verdict.allowed else "refused"
    return AwsAuthStep(
        intent,
        status,
        observed,
        merged.data,
        ledger_text,
        merged.changes,
        conflicts,
        verdict.refusals,
        verdict.warnings,
        verdict.sizes,
        others,
    )


def _plan_restore(observed: ObservedConfigMap | None, intent: RestoreIntent, policy: Policy) -> AwsAuthStep:
    backup = intent.backup
    data = observed.data if observed else {}
    reading = readings.read(data)
    verdict = check_current(reading)
    if not verdict.allowed and not intent.force:
        return AwsAuthStep(intent, "refused", observed, refusals=verdict.refusals)
    if data == backup.data:
        return AwsAuthStep(intent, "unchanged", observed)
    try:
        after_ledger = Ledger.parse(backup.ledger, policy.instance)
    except LedgerError as err:
        refusal = Refusal("ledger-unreadable", f"backup {backup.sequence}: {err}")
        return AwsAuthStep(intent, "refused", observed, refusals=(refusal,))
    # A restore may remove entries by design; what is protected (nodes, break-glass, the caller) may not.
    restore_policy = Policy(policy.protected_arns, policy.max_deletion_share, force_deletions=True)
    verdict = check_post_image(
        reading if reading.understood else readings.read({}),
        Ledger(),
        backup.data,
        after_ledger,
        removed=0,
        policy=restore_policy,
        annotations=_annotations_after(observed, backup.ledger),
    )
    if not verdict.allowed:
        return AwsAuthStep(intent, "refused", observed, refusals=verdict.refusals, warnings=verdict.warnings)
    changes = _restored_changes(reading, readings.read(backup.data), f"backup {backup.sequence}")
    return AwsAuthStep(
        intent,
        "write",
        observed,
        dict(backup.data),
        backup.ledger,
        changes,
        warnings=verdict.warnings,
        sizes=verdict.sizes,
    )


def _named(conflict: Conflict, ledger: Ledger) -> Conflict:
    """A conflict over an entry another instance's section records names that instance."""
    found = ledger.owners.get(conflict.foreign.arn.lower())
    return replace(conflict, owner=owner(found)) if found else conflict


def _restored_changes(before: Reading, after: Reading, source: str) -> tuple[Change, ...]:
    """The entries a restore adds, updates and removes (as EKS reads them), so that it can be shown
    before it is made (``restore --dry-run``) and counted after."""
    changes = []
    for key in ENTRY_KEYS:
        old = {e.key: e.core() for e in before.entries(key)}
        new = {e.key: e.core() for e in after.entries(key)}
        for arn in sorted(old.keys() | new.keys()):
            was, will = old.get(arn), new.get(arn)
            if was != will:
                action: Literal["add", "update", "remove"] = (
                    "add" if was is None else "remove" if will is None else "update"
                )
                changes.append(Change(action, key, was, will, source))
    return tuple(changes)


def _annotations_after(observed: ObservedConfigMap | None, ledger: str) -> dict[str, str]:
    before = observed.annotations if observed else {}
    return {**before, **OUR_OTHER_ANNOTATIONS, LEDGER_ANNOTATION: ledger}
