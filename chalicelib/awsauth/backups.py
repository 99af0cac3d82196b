"""Backups of aws-auth: the previous ``data`` and ledger, kept in a ring of fixed-name ConfigMaps
(so the service's RBAC can name each one). Plain data; the writer stores and reads them."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.errors import CorruptState

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
