"""Backups of aws-auth: the previous ``data`` and ledger, kept in a ring of fixed-name ConfigMaps
(so the service's RBAC can name each one). Plain data; the writer stores and reads them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.errors import CorruptState


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
    def from_data(cls, data: Mapping[str, str], name: str = "backup") -> Backup:
        try:
            restored = json.loads(data["data.json"])
            if not isinstance(restored, dict) or not all(isinstance(v, str) for v in restored.values()):
                raise ValueError("data.json is not a map of strings")
            return cls(
                sequence=int(data["sequence"]),
                taken_at=data["takenAt"],
                resource_version=data["resourceVersion"],
                reason=data.get("reason", ""),
                data={str(k): v for k, v in restored.items()},
                ledger=data.get("ledger", ""),
            )
        except (KeyError, ValueError, TypeError) as err:
            raise CorruptState(
                f"{name} cannot be read ({type(err).__name__}: {err}); it was not written by this service or was edited"
            ) from err
