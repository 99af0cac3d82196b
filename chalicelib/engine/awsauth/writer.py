"""Stage 5 for aws-auth, and its identity backend: plans through ``plan_aws_auth`` and writes a
step safely — back up, then update with the resourceVersion the step was computed from.

On a 409 it re-reads, re-plans and retries with jittered backoff (bounded); a step that changes
nothing is never written; aws-auth is never deleted or recreated, and created only when absent
(losing that race to EKS is just another conflict). Writes go through the ``ConfigMapStore`` port.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from chalicelib.config import DEFAULT_BACKUP_COUNT
from chalicelib.engine.awsauth import reading as readings
from chalicelib.engine.awsauth.backups import Backup, Kept, Slot, data_digest, written_by_service
from chalicelib.engine.awsauth.ledger import Ledger, LedgerError
from chalicelib.engine.awsauth.model import ENTRY_KEYS
from chalicelib.engine.awsauth.plan import AwsAuthStep, RestoreIntent, SyncIntent, plan_aws_auth
from chalicelib.engine.guardrails import Policy
from chalicelib.engine.outcomes import observe
from chalicelib.errors import CorruptState, Forbidden, NotFound, TransientError, WriteConflict
from chalicelib.model.identities import CurrentMapping, Outcome, OwnedEntry
from chalicelib.model.ownership import (
    AWS_AUTH_NAME,
    AWS_AUTH_NAMESPACE,
    BACKUP_HOUR_ANNOTATION,
    BACKUP_SEQUENCE_ANNOTATION,
    FOREIGN_BACKUP_NAME,
    LEDGER_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    WRITTEN_DIGEST_ANNOTATION,
    backup_name,
    backup_names,
    hourly_backup_name,
)
from chalicelib.model.ports import ConfigMapStore, ObservedConfigMap, Observer


@dataclass(frozen=True)
class WriterSettings:
    backups: int = DEFAULT_BACKUP_COUNT
    max_attempts: int = 30
    backoff_base: float = 0.05
    backoff_cap: float = 2.0


@dataclass
class AwsAuthWriter:
    """The aws-auth identity backend (``backend: configMap``)."""

    store: ConfigMapStore
    observer: Observer
    policy: Policy = field(default_factory=Policy)
    settings: WriterSettings = field(default_factory=WriterSettings)
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    name: str = "configMap"

    def read(self) -> ObservedConfigMap | None:
        return self.store.read(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME)

    def plan(self, desired: Iterable[OwnedEntry], scope: Container[str] | None = None) -> AwsAuthStep:
        """``scope`` holds the lower-case ARNs this run may touch (a PrincipalScope matches them by
        name); None means every owned entry."""
        return plan_aws_auth(self.read(), SyncIntent(tuple(desired), scope), self.policy)

    def members_of(self, groups: Iterable[str]) -> set[str]:
        """Names of the users mapped for these IAM groups (a deleted group's members)."""
        observed = self.read()
        try:
            annotation = observed.annotations.get(LEDGER_ANNOTATION) if observed else None
            return Ledger.parse(annotation, self.policy.instance).members_of(groups)
        except LedgerError:
            return set()  # the next write refuses the unreadable ledger, with its reason

    def mapping_of(self, principal: OwnedEntry) -> CurrentMapping | None:
        """The principal's aws-auth entry (mapRoles or mapUsers, by its path-free ARN), as EKS reads it."""
        observed = self.read()
        reading = readings.read(observed.data if observed else None)
        found = {e.key: e.core() for key in ENTRY_KEYS for e in reading.entries(key)}.get(principal.entry.key)
        return None if found is None else CurrentMapping(found, found == principal.entry.core())

    def plan_restore(self, sequence: int, force: bool = False) -> AwsAuthStep:
        return plan_aws_auth(self.read(), RestoreIntent(self.backup(sequence), force), self.policy)

    def apply(self, step: AwsAuthStep, reason: str) -> Outcome:
        for limit, share in step.sizes:
            self.observer.percent("AwsAuthSize", round(100 * share, 1), limit=limit)
        for warning in step.warnings:
            self.observer.warning("aws-auth warning", detail=warning)
        for number in range(1, self.settings.max_attempts + 1):
            if step.status != "write":
                return self._report(_outcome(step, "unchanged" if step.status == "unchanged" else "refused", number))
            try:
                sequence = self._write(step, reason)
            except WriteConflict:
                self.observer.count("ConflictsRetried")
                self.sleep(min(self.settings.backoff_cap, self.settings.backoff_base * 2**number) * self.jitter())
                step = plan_aws_auth(self.read(), step.intent, self.policy)
                continue
            self.observer.change("aws-auth written", reason=reason, backup=sequence, attempts=number)
            return self._report(_outcome(step, "written", number, sequence))
        raise TransientError(f"aws-auth changed under every one of {self.settings.max_attempts} attempts")

    def sync(
        self, desired: Iterable[OwnedEntry], scope: Container[str] | None = None, reason: str = "reconcile"
    ) -> Outcome:
        return self.apply(self.plan(desired, scope), reason)

    def restore(self, sequence: int, force: bool = False) -> Outcome:
        """Brings back the data and ledger of backup ``sequence``, through the same guardrails."""
        return self.apply(self.plan_restore(sequence, force), f"restore of backup {sequence}")

    def kept(self) -> Kept:
        """Every backup slot that exists: its backup, or why it cannot be read. A corrupt slot or one
        the service may not read (an RBAC manifest older than the slot) is reported and the others
        still listed; a transport failure (the cluster not answering) is raised at once."""
        slots = []
        for name in backup_names(self.settings.backups):
            try:
                observed = self.store.read(AWS_AUTH_NAMESPACE, name)
            except Forbidden as err:
                slots.append(Slot(name, problem=f"cannot be read: {err}", corrupt=False))
                continue
            if observed is None:
                continue
            try:
                slots.append(Slot(name, Backup.from_data(observed.data, f"backup ConfigMap {name}")))
            except CorruptState as err:
                slots.append(Slot(name, problem=str(err)))
        return Kept(tuple(slots))

    def backups(self) -> list[Backup]:
        """Every readable backup (the ring, the hourly ones, the last foreign one), newest first, each
        version once."""
        return self.kept().backups

    def backup(self, sequence: int) -> Backup:
        name = backup_name(sequence % self.settings.backups)
        observed = self.store.read(AWS_AUTH_NAMESPACE, name)
        if observed is not None and observed.data.get("sequence") == str(sequence):
            return Backup.from_data(observed.data, f"backup ConfigMap {name}")
        kept = self.kept()
        for backup in kept.backups:
            if backup.sequence == sequence:
                return backup
        listed = ", ".join(str(b.sequence) for b in kept.backups) or "none"
        unreadable = "".join(f"; {slot.name} unreadable: {slot.problem}" for slot in kept.unreadable)
        raise NotFound(f"no backup {sequence} is kept (kept: {listed}{unreadable})")

    def _write(self, step: AwsAuthStep, reason: str) -> int | None:
        observed, data = step.observed, step.data or {}
        # A restore brings back a version the service cannot recompute: it records no digest, so the
        # write after it keeps the restored version in the foreign slot.
        digest = data_digest(data) if isinstance(step.intent, SyncIntent) else ""
        if observed is None:
            annotations = {LEDGER_ANNOTATION: step.ledger, WRITTEN_DIGEST_ANNOTATION: digest}
            self.store.create(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME, data, annotations)
            return None
        sequence = int(observed.annotations.get(BACKUP_SEQUENCE_ANNOTATION, "0") or 0) + 1
        now = self.clock()
        hour = now.strftime("%Y-%m-%dT%H")
        annotations = {
            LEDGER_ANNOTATION: step.ledger,
            BACKUP_SEQUENCE_ANNOTATION: str(sequence),
            BACKUP_HOUR_ANNOTATION: hour,
            WRITTEN_DIGEST_ANNOTATION: digest,
        }
        # The server checks the write first (a 409 or 422 here costs no backup), then the version it
        # replaces is kept, then it is made.
        self.store.update(observed, data, annotations, dry_run=True)
        backup = Backup(
            sequence=sequence,
            taken_at=now.isoformat(timespec="seconds"),
            resource_version=observed.resource_version,
            reason=reason,
            data=observed.data,
            ledger=observed.annotations.get(LEDGER_ANNOTATION, ""),
        )
        # On the ring's first lap its slots do not exist yet; an hour's slot exists after the first day.
        slots = [(backup_name(sequence % self.settings.backups), sequence <= self.settings.backups)]
        if observed.annotations.get(BACKUP_HOUR_ANNOTATION) != hour:
            slots.append((hourly_backup_name(now.hour), False))
        labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE}
        packed = backup.to_data()  # compressed once, whatever the number of slots
        for slot, fresh in slots:
            self.store.put(AWS_AUTH_NAMESPACE, slot, packed, labels=labels, fresh=fresh)
        if not written_by_service(observed.data, observed.annotations):
            self._keep_foreign(packed, labels)
        self.store.update(observed, data, annotations)
        return sequence

    def _keep_foreign(self, packed: dict[str, str], labels: dict[str, str]) -> None:
        """The version being replaced was written by someone else: it also goes to the one slot no
        burst of the service's own writes rotates. Where the RBAC manifest predates that slot the
        write goes on (the ring and the hour's slot hold the version, as before) and says so."""
        try:
            self.store.put(AWS_AUTH_NAMESPACE, FOREIGN_BACKUP_NAME, packed, labels=labels)
        except Forbidden as err:
            self.observer.error(
                "the last foreign version of aws-auth is kept in the ring only: re-apply the RBAC manifest",
                slot=FOREIGN_BACKUP_NAME,
                detail=str(err),
            )
            self.observer.count("BackupsNotKept", slot="foreign")

    def _report(self, outcome: Outcome) -> Outcome:
        observe(outcome, self.observer, "aws-auth entry")
        if outcome.status == "written":
            added = sum(1 for c in outcome.changes if c.action == "add")
            removed = sum(1 for c in outcome.changes if c.action == "remove")
            self.observer.count("AwsAuthEntriesAdded", added)
            self.observer.count("AwsAuthEntriesRemoved", removed)
            self.observer.count("AwsAuthEntriesUpdated", len(outcome.changes) - added - removed)
        return outcome


def _outcome(
    step: AwsAuthStep,
    status: Literal["unchanged", "written", "refused"],
    attempts: int,
    backup_sequence: int | None = None,
) -> Outcome:
    return Outcome(
        status,
        step.changes,
        step.conflicts,
        step.refusals,
        step.warnings,
        attempts,
        backup_sequence,
    )
