"""Writes aws-auth safely: read -> check -> merge -> check -> back up -> update with resourceVersion.

On a 409 it re-reads, recomputes and retries with jittered backoff (bounded); it skips the write when
nothing changes; it never deletes or recreates aws-auth, and creates it only when absent (losing that
race to EKS is just another conflict). Each write first keeps the previous ``data`` and ledger in a
ring of backup ConfigMaps; ``restore`` brings one back through the same guardrails.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from chalicelib.adapters.configmaps import ObservedConfigMap
from chalicelib.awsauth.guardrails import Policy, Refusal, check_current, check_post_image
from chalicelib.awsauth.ledger import Ledger, LedgerError
from chalicelib.awsauth.merge import Change, Conflict, OwnedEntry, describe_all, merge
from chalicelib.awsauth.parse import read_aws_auth
from chalicelib.errors import TransientError, WriteConflict
from chalicelib.observability import Observer
from chalicelib.ownership import (
    AWS_AUTH_NAME,
    AWS_AUTH_NAMESPACE,
    BACKUP_SEQUENCE_ANNOTATION,
    DEFAULT_BACKUP_COUNT,
    LEDGER_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    backup_name,
)


class ConfigMapStore(Protocol):
    def read(self, namespace: str, name: str) -> ObservedConfigMap | None: ...
    def update(
        self, observed: ObservedConfigMap, data: Mapping[str, str], annotations: Mapping[str, str]
    ) -> ObservedConfigMap: ...
    def create(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> ObservedConfigMap: ...
    def put(
        self, namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str] | None = None
    ) -> None: ...


@dataclass(frozen=True)
class WriterSettings:
    backups: int = DEFAULT_BACKUP_COUNT
    max_attempts: int = 30
    backoff_base: float = 0.05
    backoff_cap: float = 2.0


@dataclass(frozen=True)
class Outcome:
    status: Literal["unchanged", "written", "planned", "refused"]
    changes: tuple[Change, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    warnings: tuple[str, ...] = ()
    attempts: int = 1
    backup_sequence: int | None = None

    @property
    def diff(self) -> str:
        return describe_all(self.changes, self.conflicts)


@dataclass(frozen=True)
class Backup:
    sequence: int
    taken_at: str
    resource_version: str
    reason: str
    data: dict[str, str]
    ledger: str

    def to_data(self) -> dict[str, str]:
        return {
            "sequence": str(self.sequence),
            "takenAt": self.taken_at,
            "resourceVersion": self.resource_version,
            "reason": self.reason,
            "data.json": json.dumps(self.data, sort_keys=True),
            "ledger": self.ledger,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> Backup:
        return cls(
            sequence=int(data["sequence"]),
            taken_at=data["takenAt"],
            resource_version=data["resourceVersion"],
            reason=data.get("reason", ""),
            data=dict(json.loads(data["data.json"])),
            ledger=data.get("ledger", ""),
        )


@dataclass
class AwsAuthWriter:
    store: ConfigMapStore
    policy: Policy = field(default_factory=Policy)
    settings: WriterSettings = field(default_factory=WriterSettings)
    observer: Observer = field(default_factory=Observer)
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def sync(
        self,
        desired: Iterable[OwnedEntry],
        scope: Container[str] | None = None,
        reason: str = "reconcile",
        dry_run: bool = False,
    ) -> Outcome:
        """Merges ``desired`` owned entries. ``scope`` holds the lower-case ARNs this run may touch (a
        PrincipalScope matches them by name); None means every owned entry."""
        wanted = tuple(desired)

        def attempt(observed: ObservedConfigMap | None) -> _Plan | Outcome:
            data = observed.data if observed else {}
            reading = read_aws_auth(data)
            verdict = check_current(reading)
            if not verdict.allowed:
                return Outcome("refused", refusals=verdict.refusals)
            try:
                ledger = Ledger.parse(observed.annotations.get(LEDGER_ANNOTATION) if observed else None)
            except LedgerError as err:
                return Outcome("refused", refusals=(Refusal("ledger-unreadable", str(err)),))
            merged = merge(data, reading, ledger, wanted, scope)
            if merged.data == data and merged.ledger == ledger:
                return Outcome("unchanged", conflicts=merged.conflicts)
            removed = sum(1 for c in merged.changes if c.action == "remove")
            ledger_text = merged.ledger.serialize()
            verdict = check_post_image(
                reading,
                ledger,
                merged.data,
                merged.ledger,
                removed=removed,
                policy=self.policy,
                annotations_size=len(ledger_text) + 256,
            )
            if not verdict.allowed:
                return Outcome("refused", merged.changes, merged.conflicts, verdict.refusals, verdict.warnings)
            return _Plan(merged.data, ledger_text, merged.changes, merged.conflicts, verdict.warnings)

        return self._run(attempt, reason, dry_run)

    def restore(self, sequence: int, force: bool = False, dry_run: bool = False) -> Outcome:
        """Brings back the data and ledger of backup ``sequence``, through the same guardrails."""
        backup = self.backup(sequence)

        def attempt(observed: ObservedConfigMap | None) -> _Plan | Outcome:
            data = observed.data if observed else {}
            reading = read_aws_auth(data)
            verdict = check_current(reading)
            if not verdict.allowed and not force:
                return Outcome("refused", refusals=verdict.refusals)
            if data == backup.data:
                return Outcome("unchanged")
            try:
                after_ledger = Ledger.parse(backup.ledger)
            except LedgerError as err:
                return Outcome("refused", refusals=(Refusal("ledger-unreadable", f"backup {sequence}: {err}"),))
            policy = Policy(self.policy.protected_arns, self.policy.max_deletion_share, force_deletions=True)
            verdict = check_post_image(
                reading if reading.understood else read_aws_auth({}),
                Ledger(),
                backup.data,
                after_ledger,
                removed=0,
                policy=policy,
                annotations_size=len(backup.ledger) + 256,
            )
            if not verdict.allowed:
                return Outcome("refused", refusals=verdict.refusals, warnings=verdict.warnings)
            return _Plan(dict(backup.data), backup.ledger, (), (), verdict.warnings)

        return self._run(attempt, f"restore of backup {sequence}", dry_run)

    def backups(self) -> list[Backup]:
        """Every kept backup, newest first."""
        found = []
        for slot in range(self.settings.backups):
            observed = self.store.read(AWS_AUTH_NAMESPACE, backup_name(slot))
            if observed is not None and "sequence" in observed.data:
                found.append(Backup.from_data(observed.data))
        return sorted(found, key=lambda b: b.sequence, reverse=True)

    def backup(self, sequence: int) -> Backup:
        observed = self.store.read(AWS_AUTH_NAMESPACE, backup_name(sequence % self.settings.backups))
        if observed is None or observed.data.get("sequence") != str(sequence):
            kept = ", ".join(str(b.sequence) for b in self.backups()) or "none"
            raise LookupError(f"no backup {sequence} is kept (kept: {kept})")
        return Backup.from_data(observed.data)

    def _run(
        self, attempt: Callable[[ObservedConfigMap | None], _Plan | Outcome], reason: str, dry_run: bool
    ) -> Outcome:
        for number in range(1, self.settings.max_attempts + 1):
            observed = self.store.read(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME)
            result = attempt(observed)
            if isinstance(result, Outcome):
                return self._report(_with_attempts(result, number))
            if dry_run:
                return self._report(Outcome("planned", result.changes, result.conflicts, (), result.warnings, number))
            try:
                sequence = self._write(observed, result, reason)
                self.observer.info("aws-auth written", reason=reason, backup=sequence, attempts=number)
            except WriteConflict:
                self.observer.count("ConflictsRetried")
                self.sleep(min(self.settings.backoff_cap, self.settings.backoff_base * 2**number) * self.jitter())
                continue
            return self._report(
                Outcome("written", result.changes, result.conflicts, (), result.warnings, number, sequence)
            )
        raise TransientError(f"aws-auth changed under every one of {self.settings.max_attempts} attempts")

    def _write(self, observed: ObservedConfigMap | None, plan: _Plan, reason: str) -> int | None:
        if observed is None:
            self.store.create(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME, plan.data, {LEDGER_ANNOTATION: plan.ledger})
            return None
        sequence = int(observed.annotations.get(BACKUP_SEQUENCE_ANNOTATION, "0") or 0) + 1
        backup = Backup(
            sequence=sequence,
            taken_at=datetime.now(UTC).isoformat(timespec="seconds"),
            resource_version=observed.resource_version,
            reason=reason,
            data=observed.data,
            ledger=observed.annotations.get(LEDGER_ANNOTATION, ""),
        )
        self.store.put(
            AWS_AUTH_NAMESPACE,
            backup_name(sequence % self.settings.backups),
            backup.to_data(),
            labels={MANAGED_BY_LABEL: MANAGED_BY_VALUE},
        )
        annotations = {LEDGER_ANNOTATION: plan.ledger, BACKUP_SEQUENCE_ANNOTATION: str(sequence)}
        self.store.update(observed, plan.data, annotations)
        return sequence

    def _report(self, outcome: Outcome) -> Outcome:
        for refusal in outcome.refusals:
            self.observer.error("aws-auth write refused", reason=refusal.reason, detail=refusal.message)
            self.observer.count("GuardrailRefusals", reason=refusal.reason)
        for conflict in outcome.conflicts:
            self.observer.warning("aws-auth entry owned by someone else", detail=conflict.describe())
            self.observer.count("OwnershipConflicts")
        if outcome.status == "written":
            for change in outcome.changes:
                self.observer.info(
                    "aws-auth entry changed",
                    action=change.action,
                    principal=change.arn,
                    before=change.before.describe() if change.before else None,
                    after=change.after.describe() if change.after else None,
                    source=change.source,
                )
            added = sum(1 for c in outcome.changes if c.action == "add")
            removed = sum(1 for c in outcome.changes if c.action == "remove")
            self.observer.count("AwsAuthEntriesAdded", added)
            self.observer.count("AwsAuthEntriesRemoved", removed)
            self.observer.count("AwsAuthEntriesUpdated", len(outcome.changes) - added - removed)
        return outcome


@dataclass(frozen=True)
class _Plan:
    data: dict[str, str]
    ledger: str
    changes: tuple[Change, ...]
    conflicts: tuple[Conflict, ...]
    warnings: tuple[str, ...]


def _with_attempts(outcome: Outcome, attempts: int) -> Outcome:
    return Outcome(
        outcome.status,
        outcome.changes,
        outcome.conflicts,
        outcome.refusals,
        outcome.warnings,
        attempts,
        outcome.backup_sequence,
    )
