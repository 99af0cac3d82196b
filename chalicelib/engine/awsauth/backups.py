"""Backups of aws-auth: the previous ``data`` and ledger, kept in a ring of fixed-name ConfigMaps
(so the service's RBAC can name each one), hourly slots, and one slot for the last version someone
else wrote. Plain data; the writer stores and reads them."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.errors import CorruptState
from chalicelib.model.ownership import FOREIGN_BACKUP_NAME, WRITTEN_DIGEST_ANNOTATION

MAX_BACKUP_BYTES = 32 * 1024 * 1024  # inflated; aws-auth itself is at most 1 MiB


@dataclass(frozen=True)
class Backup:
    sequence: int
    taken_at: str
    resource_version: str
    reason: str
    data: dict[str, str]
    ledger: str

    def to_data(self) -> dict[str, str]:
        """Compressed: a backup ConfigMap has the same 1 MiB limit as the aws-auth it keeps, and a copy
        of aws-auth near its own limit (plus its ledger) would not fit uncompressed."""
        packed = zlib.compress(json.dumps({"data": self.data, "ledger": self.ledger}, sort_keys=True).encode(), 9)
        return {
            "sequence": str(self.sequence),
            "takenAt": self.taken_at,
            "resourceVersion": self.resource_version,
            "reason": self.reason,
            "backup.json.zlib": base64.b64encode(packed).decode(),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, str], name: str = "backup") -> Backup:
        try:
            if "backup.json.zlib" in data:
                inflater = zlib.decompressobj()
                inner = inflater.decompress(base64.b64decode(data["backup.json.zlib"], validate=True), MAX_BACKUP_BYTES)
                if inflater.unconsumed_tail:
                    raise ValueError(f"inflates beyond {MAX_BACKUP_BYTES} bytes")
                document = json.loads(inner)
                restored, ledger = document["data"], document["ledger"]
            else:  # written by the previous release, uncompressed
                restored, ledger = json.loads(data["data.json"]), data.get("ledger", "")
            if not isinstance(restored, dict) or not all(isinstance(v, str) for v in restored.values()):
                raise ValueError("the kept data is not a map of strings")
            if not isinstance(ledger, str):
                raise ValueError("the kept ledger is not text")
            return cls(
                sequence=int(data["sequence"]),
                taken_at=data["takenAt"],
                resource_version=data["resourceVersion"],
                reason=data.get("reason", ""),
                data={str(k): v for k, v in restored.items()},
                ledger=ledger,
            )
        except (KeyError, ValueError, TypeError, zlib.error) as err:
            raise CorruptState(
                f"{name} cannot be read ({type(err).__name__}: {err}); it was not written by this service or was edited"
            ) from err


def data_digest(data: Mapping[str, str]) -> str:
    """What the service records of the data it writes to aws-auth (``WRITTEN_DIGEST_ANNOTATION``)."""
    canonical = json.dumps(dict(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def written_by_service(data: Mapping[str, str], annotations: Mapping[str, str]) -> bool:
    """Whether this aws-auth data is what the service itself last wrote. Tools that change data
    (kubectl edit, eksctl, Terraform) keep annotations, so their data no longer matches the digest;
    a restore records none (it brings back a version the service cannot recompute)."""
    recorded = annotations.get(WRITTEN_DIGEST_ANNOTATION, "")
    return bool(recorded) and recorded == data_digest(data)


@dataclass(frozen=True)
class Slot:
    """One backup ConfigMap as read: its backup, or why it cannot be used."""

    name: str
    backup: Backup | None = None
    problem: str = ""  # set when the slot exists but cannot be used
    corrupt: bool = True  # with a problem: read but not a backup (False: the read itself was refused)


@dataclass(frozen=True)
class Kept:
    """Every backup slot found, readable or not."""

    slots: tuple[Slot, ...]

    @property
    def backups(self) -> list[Backup]:
        """The readable backups, newest first, each version once (a version is often in two slots)."""
        found: dict[tuple[int, str, str], Backup] = {}
        for slot in self.slots:
            if slot.backup is not None:
                b = slot.backup
                found.setdefault((b.sequence, b.taken_at, b.resource_version), b)
        return sorted(found.values(), key=lambda b: (b.sequence, b.taken_at), reverse=True)

    @property
    def unreadable(self) -> tuple[Slot, ...]:
        return tuple(slot for slot in self.slots if slot.backup is None)

    def foreign(self, backup: Backup) -> bool:
        """Whether ``backup`` is the last version someone other than the service wrote."""
        return any(s.name == FOREIGN_BACKUP_NAME and s.backup == backup for s in self.slots)
