"""The CPU of a membership event's aws-auth work at 5 000 users + 1 000 roles, against one libyaml load.

In process, no network: aws-auth as the service renders it (5 000 users in 100 groups, 1 000 roles,
a node role) with its ledger, in the in-memory ConfigMap store of the unit tests; an event maps one
more user (plan, guardrails, backup, write) through ``AwsAuthWriter``, the only part of an event
whose cost grows with the estate. The yardstick, measured in the same run on the same text:
``yaml.load(mapUsers) + yaml.load(mapRoles)`` with libyaml's ``CSafeLoader``.

Figures, not assertions. Goal (issue 18): an event costs at most 3x the libyaml load. Measured for a
cold execution environment (aws-auth never parsed in this process), a warm one (the previous event's
write is what this one reads, as in a Lambda that served the previous event), and an event that
changes nothing. Each figure is the minimum CPU time of several runs, so that a busy machine counts
as little as possible. benchmarks/scale.py measures the whole event against a real API server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import yaml

from chalicelib.engine.awsauth import reading
from chalicelib.engine.awsauth.ledger import Ledger, LedgerRecord
from chalicelib.engine.awsauth.model import MAP_ROLES, MAP_USERS, Entry
from chalicelib.engine.awsauth.render import render_key
from chalicelib.engine.awsauth.writer import AwsAuthWriter
from chalicelib.model.identities import OwnedEntry
from chalicelib.model.ownership import AWS_AUTH_NAME, AWS_AUTH_NAMESPACE, LEDGER_ANNOTATION
from chalicelib.model.sources import Source
from tests.functional.fakes import RecordingObserver
from tests.unit.awsauth.fakes import FakeConfigMaps

ACCOUNT = "123456789012"
USERS, ROLES, GROUPS = 5000, 1000, 100
RUNS = 5
GOAL_RATIO = 3.0


def user(name: str, group: int = 0) -> OwnedEntry:
    entry = Entry(f"arn:aws:iam::{ACCOUNT}:user/{name}", name, (f"scale-team-{group:03d}",))
    return OwnedEntry(MAP_USERS, entry, (Source.group(f"scale-group-{group:03d}"),))


def role(number: int) -> OwnedEntry:
    name = f"scale-role-{number:04d}"
    entry = Entry(f"arn:aws:iam::{ACCOUNT}:role/{name}", name, (f"scale-team-{number % GROUPS:03d}",))
    return OwnedEntry(MAP_ROLES, entry, (Source.role(name),))


def estate() -> FakeConfigMaps:
    users = [user(f"scale-user-{n:04d}", n % GROUPS) for n in range(USERS)]
    roles = [role(n) for n in range(ROLES)]
    node = Entry(f"arn:aws:iam::{ACCOUNT}:role/eks-node", "system:node:{{EC2PrivateDNSName}}", ("system:nodes",))
    data = {
        MAP_ROLES: render_key(MAP_ROLES, [node, *(r.entry for r in roles)]),
        MAP_USERS: render_key(MAP_USERS, [u.entry for u in users]),
    }
    ledger = Ledger.of(LedgerRecord(o.entry.arn, o.key, o.source) for o in (*users, *roles))
    store = FakeConfigMaps()
    store.create(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME, data, {LEDGER_ANNOTATION: ledger.serialize()})
    return store


def cpu(action: Callable[[], object]) -> float:
    started = time.process_time()
    action()
    return time.process_time() - started


def libyaml_load(data: dict[str, str]) -> float:
    loader = yaml.CSafeLoader  # the yardstick is libyaml itself: no fallback
    samples = []
    for _ in range(RUNS):
        started = time.process_time()
        yaml.load(data[MAP_USERS], Loader=loader)
        yaml.load(data[MAP_ROLES], Loader=loader)
        samples.append(time.process_time() - started)
    return min(samples)


def event(writer: AwsAuthWriter, principal: OwnedEntry) -> None:
    """What a membership event asks of the aws-auth backend: plan for one principal, then apply."""
    outcome = writer.apply(writer.plan([principal], {principal.entry.key}), "bench")
    if outcome.status not in ("written", "unchanged"):
        raise RuntimeError(f"the benchmark's event was {outcome.status}: {outcome.refusals}")


def measure() -> dict[str, float]:
    cold: list[float] = []
    warm: list[float] = []
    unchanged: list[float] = []
    floors: list[float] = []
    for run in range(RUNS):
        store = estate()
        writer = AwsAuthWriter(store, RecordingObserver())
        current = store.objects[(AWS_AUTH_NAMESPACE, AWS_AUTH_NAME)]
        floors.append(libyaml_load(current.data))
        reading.KEYS.clear()

        first, second = user(f"new-{run}-a"), user(f"new-{run}-b")
        cold.append(cpu(partial(event, writer, first)))
        warm.append(cpu(partial(event, writer, second)))
        unchanged.append(cpu(partial(event, writer, second)))
    return {"libyaml": min(floors), "cold": min(cold), "warm": min(warm), "unchanged": min(unchanged)}


def main() -> None:
    figures = measure()
    floor = figures["libyaml"]
    print(f"aws-auth work of one membership event, {USERS} users + {ROLES} roles (CPU, min of {RUNS}; in process)")
    print(f"  yardstick: one libyaml (CSafeLoader) load of that aws-auth   {floor * 1000:8.1f} ms")
    for key, label in (
        ("warm", "event, warm environment (as Lambda serves a stream)"),
        ("cold", "event, first in a new environment"),
        ("unchanged", "event that changes nothing"),
    ):
        ratio = figures[key] / floor
        verdict = "met" if ratio <= GOAL_RATIO else "NOT MET"
        print(f"  {label:58} {figures[key] * 1000:8.1f} ms = {ratio:5.2f}x  (goal <= {GOAL_RATIO:.0f}x: {verdict})")


if __name__ == "__main__":
    main()
