"""``backups``: every readable kept version of aws-auth in each cluster, newest first, and every slot
that cannot be used, with why."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.config import Config
from chalicelib.config.settings import instance
from chalicelib.engine.awsauth.backups import Slot
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.entry.commands.common import Failed, Reach, connect, runtime_for, shell_for
from chalicelib.errors import SyncError
from chalicelib.model.identities import MAP_ROLES, MAP_USERS
from chalicelib.run.reconcile import Options, aws_auth_writer, guardrail_policy


@dataclass(frozen=True)
class KeptVersion:
    sequence: int
    taken_at: str
    resource_version: str
    reason: str
    entries: int  # mapRoles and mapUsers entries, as EKS reads them
    foreign: bool  # the last version not written by eks-iam-sync


@dataclass(frozen=True)
class Unusable:
    slot: str
    problem: str
    corrupt: bool  # read but not a backup (False: the read was refused, so the listing may be incomplete)


@dataclass(frozen=True)
class ClusterBackups:
    cluster: str
    versions: tuple[KeptVersion, ...]
    unusable: tuple[Unusable, ...]
    any_slot: bool  # whether any backup slot exists at all


@dataclass(frozen=True)
class Backups:
    clusters: tuple[ClusterBackups | Failed, ...]

    @property
    def complete(self) -> bool:
        """False when a cluster (or one of its slots) could not be read, so the listing may be incomplete."""
        return all(isinstance(c, ClusterBackups) and all(u.corrupt for u in c.unusable) for c in self.clusters)


def backups(config: Config, reach: Reach) -> Backups:
    found: list[ClusterBackups | Failed] = []
    for name, ports in connect(config, reach, shell_for(reach)).items():
        if isinstance(ports, SyncError):
            found.append(Failed.of(name, ports))
            continue
        try:
            policy = guardrail_policy(config, Options(instance=instance()), ports.caller_arn)
            kept = aws_auth_writer(config, ports, policy, runtime_for(reach).observer(name)).kept()
        except SyncError as err:
            found.append(Failed.of(name, err))
            continue
        versions = tuple(
            KeptVersion(
                b.sequence,
                b.taken_at,
                b.resource_version,
                b.reason,
                sum(len(read_aws_auth(b.data).entries(key)) for key in (MAP_ROLES, MAP_USERS)),
                kept.foreign(b),
            )
            for b in kept.backups
        )
        found.append(ClusterBackups(name, versions, tuple(_unusable(s) for s in kept.unreadable), bool(kept.slots)))
    return Backups(tuple(found))


def _unusable(slot: Slot) -> Unusable:
    return Unusable(slot.name, slot.problem, slot.corrupt)
