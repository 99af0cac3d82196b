"""The writer's loop over an in-memory store: conflicts, no-ops, refusals, backups, restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.model import MAP_USERS
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.awsauth.writer import AwsAuthWriter, WriterSettings
from chalicelib.errors import Forbidden, NotFound, TransientError
from chalicelib.model.ownership import LEDGER_ANNOTATION
from tests.unit.awsauth.builders import NODE, document, owned_role, owned_user, role, user
from tests.unit.awsauth.fakes import FakeConfigMaps

ALICE, BOB = user("alice", "devs"), user("bob", "devs")


class Counting:
    def __init__(self) -> None:
        self.counts: dict[str, float] = {}
        self.lines: list[tuple[str, dict[str, object]]] = []

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        label = name + "".join(f"[{v}]" for v in dimensions.values())
        self.counts[label] = self.counts.get(label, 0) + value

    def milliseconds(self, name: str, value: float) -> None:
        self.count(name, value)

    def percent(self, name: str, value: float, **dimensions: str) -> None:
        self.count(name, value, **dimensions)

    def info(self, message: str, **fields: object) -> None:
        self.lines.append((message, fields))

    warning = error = change = info


class Clock:
    """UTC time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 11, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def writer(
    store: FakeConfigMaps, clock: Clock | None = None, **settings: float
) -> tuple[AwsAuthWriter, Counting, list[float]]:
    observer, sleeps = Counting(), list[float]()
    w = AwsAuthWriter(
        store,
        observer,
        settings=WriterSettings(backups=3, **settings),  # type: ignore[arg-type]
        sleep=sleeps.append,
        jitter=lambda: 0.5,
        clock=clock or Clock(),
    )
    return w, observer, sleeps


def seeded(data: dict[str, str]) -> FakeConfigMaps:
    store = FakeConfigMaps()
    store.create("kube-system", "aws-auth", data)
    store.writes.clear()
    return store


def current(store: FakeConfigMaps):
    return store.objects[("kube-system", "aws-auth")]


def test_writes_backs_up_first_and_records_the_ledger() -> None:
    store = seeded(document(roles=[NODE]))
    before = dict(current(store).data)
    w, observer, _ = writer(store)
    outcome = w.sync([owned_user(ALICE)], reason="event evt-1")
    assert outcome.status == "written" and outcome.backup_sequence == 1
    # the ring slot, as the first write of the hour the hourly slot, and as a version someone else
    # wrote (eksctl, here) the foreign slot
    assert store.writes == [
        "put eks-iam-sync-aws-auth-backup-1",
        "put eks-iam-sync-aws-auth-backup-hour-11",
        "put eks-iam-sync-aws-auth-backup-foreign",
        "update aws-auth",
    ]
    assert read_aws_auth(current(store).data).entries(MAP_USERS) == (ALICE,)
    ledger = Ledger.parse(current(store).annotations[LEDGER_ANNOTATION])
    assert ledger.records[ALICE.key].source == "identities.groups[devs]"
    assert w.backups()[0].data == before and w.backups()[0].reason == "event evt-1"
    assert observer.counts["AwsAuthEntriesAdded"] == 1
    w.sync([owned_user(ALICE), owned_user(BOB)])
    assert store.writes[-2:] == ["put eks-iam-sync-aws-auth-backup-2", "update aws-auth"]  # its own: the ring


def test_nothing_to_change_writes_nothing() -> None:
    store = seeded(document(roles=[NODE]))
    w, _, _ = writer(store)
    w.sync([owned_user(ALICE)])
    store.writes.clear()
    assert w.sync([owned_user(ALICE)], scope={ALICE.key}).status == "unchanged"
    assert store.writes == []


def test_a_conflict_is_re_read_and_recomputed_keeping_the_other_writer_s_change() -> None:
    store = seeded(document(roles=[NODE]))
    store.interfere = [document(roles=[NODE], users=[BOB])]  # someone maps bob by hand meanwhile
    w, observer, sleeps = writer(store)
    outcome = w.sync([owned_user(ALICE)])
    assert outcome.status == "written" and outcome.attempts == 2
    assert read_aws_auth(current(store).data).entries(MAP_USERS) == (BOB, ALICE)
    assert observer.counts["ConflictsRetried"] == 1
    assert sleeps == [0.05 * 2 * 0.5]


def test_conflicts_are_bounded() -> None:
    store = seeded(document())
    store.interfere = [{"x": str(i)} for i in range(10)]
    w, _, sleeps = writer(store, max_attempts=4, backoff_cap=0.3)
    with pytest.raises(TransientError):
        w.sync([owned_user(ALICE)])
    assert len(sleeps) == 4 and max(sleeps) <= 0.3


def test_a_refusal_writes_nothing_logs_and_counts() -> None:
    broken = {"mapRoles": "- rolearn: x\n\tusername: y\n"}
    store = seeded(broken)
    w, observer, _ = writer(store)
    outcome = w.sync([owned_user(ALICE)])
    assert outcome.status == "refused" and store.writes == []
    assert current(store).data == broken
    assert observer.counts["GuardrailRefusals[current-not-understood]"] == 1
    assert observer.lines[0][0] == "aws-auth entry refused"


def test_creates_aws_auth_only_when_absent_and_survives_losing_the_race() -> None:
    store = FakeConfigMaps()
    w, _, _ = writer(store)
    assert w.sync([owned_user(ALICE)]).status == "written"
    assert store.writes == ["create aws-auth"]

    racing = FakeConfigMaps()
    real_read = racing.read
    calls: list[int] = []

    def read_then_eks_creates(namespace: str, name: str):
        found = real_read(namespace, name)
        if name == "aws-auth" and not calls:
            calls.append(1)
            racing.objects[("kube-system", "aws-auth")] = racing._store(
                "kube-system", "aws-auth", document(roles=[NODE]), {}
            )
        return found

    racing.read = read_then_eks_creates  # type: ignore[method-assign]
    w2, _, _ = writer(racing)
    assert w2.sync([owned_user(ALICE)]).status == "written"
    entries = read_aws_auth(current(racing).data)
    assert entries.entries("mapRoles") == (NODE,) and entries.entries(MAP_USERS) == (ALICE,)


def test_backups_are_a_ring_and_restore_round_trips() -> None:
    store = seeded(document(roles=[NODE]))
    w, _, _ = writer(store)
    versions = []
    for name in ("a", "b", "c", "d"):
        versions.append(dict(current(store).data))
        w.sync([owned_user(user(name, "devs"))], scope={user(name).key})
    # three ring slots, plus the first version replaced this hour
    assert [b.sequence for b in w.backups()] == [4, 3, 2, 1]
    with pytest.raises(NotFound, match="kept: 4, 3, 2, 1"):
        w.backup(7)
    after_d = dict(current(store).data)
    outcome = w.restore(2)
    assert outcome.status == "written" and outcome.backup_sequence == 5
    assert current(store).data == versions[1]
    assert w.backup(5).data == after_d  # the restore itself was backed up: it can be undone
    assert w.restore(5).status == "written"
    assert current(store).data == after_d


def test_restore_keeps_node_roles_added_since_unless_forced() -> None:
    store = seeded(document())
    w, _, _ = writer(store)
    w.sync([owned_user(ALICE)])
    store.objects[("kube-system", "aws-auth")] = store._store(
        "kube-system", "aws-auth", document(roles=[NODE], users=[ALICE]), current(store).annotations
    )
    assert [r.reason for r in w.restore(1).refusals] == ["protected-entry-changed"]


def test_a_burst_never_rotates_out_the_version_from_before_it_and_hours_are_kept_for_a_day() -> None:
    store = seeded(document(roles=[NODE]))
    clock = Clock()
    w, _, _ = writer(store, clock)
    before_burst = dict(current(store).data)
    for number in range(30):  # Terraform adds 30 users within a minute
        w.sync([owned_user(user(f"u{number}", "devs"))], scope={user(f"u{number}").key})
    assert w.backup(1).data == before_burst
    assert w.restore(1).status == "written" and current(store).data == before_burst

    hourly_versions = {}
    for _ in range(30):  # a write an hour for 30 hours: the last 24 hours keep one version each
        clock.advance(hours=1)
        hourly_versions[clock.now.hour] = dict(current(store).data)
        name = f"h{clock.now.day}-{clock.now.hour}"
        w.sync([owned_user(user(name, "devs"))], scope={user(name).key})
    kept = w.backups()
    assert {b.taken_at[11:13] for b in kept} >= {f"{h:02d}" for h in range(24)}


def test_a_write_the_server_refuses_leaves_no_backup() -> None:
    store = seeded(document(roles=[NODE]))
    store.interfere = [{"x": "1"}]  # the dry run meets a foreign change: 409 before any backup
    w, _, _ = writer(store)
    outcome = w.sync([owned_user(ALICE)])
    assert outcome.status == "written" and outcome.attempts == 2
    assert [name for name in store.writes if name.startswith("put")] == [
        "put eks-iam-sync-aws-auth-backup-1",
        "put eks-iam-sync-aws-auth-backup-hour-11",
        "put eks-iam-sync-aws-auth-backup-foreign",  # the other writer's version
    ]


def hand_edit(store: FakeConfigMaps, data: dict[str, str]) -> None:
    """kubectl edit: data replaced, annotations (the ledger, the digest) kept."""
    store._store("kube-system", "aws-auth", data, current(store).annotations)


def test_a_tag_grant_on_a_mapped_group_member_writes_nothing_and_the_ledger_still_answers() -> None:
    store = seeded(document(roles=[NODE]))
    w, _, _ = writer(store)
    w.sync([owned_user(ALICE)])
    store.writes.clear()
    tagged = owned_user(ALICE, source="identities.groups[devs], tagGrants")
    outcome = w.sync([tagged], scope={ALICE.key})
    assert outcome.status == "unchanged" and store.writes == []
    # the group attribution members_of reads is the same: a deleted group still finds alice
    assert w.members_of(["devs"]) == {"alice"}


def test_a_configured_role_s_source_change_alone_writes_nothing() -> None:
    store = seeded(document(roles=[NODE]))
    w, _, _ = writer(store)
    dev = role("dev", "developers")
    w.sync([owned_role(dev, "identities.roles[dev]")])
    store.writes.clear()
    assert w.sync([owned_role(dev, "identities.roles[dev], tagGrants")]).status == "unchanged"
    assert store.writes == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("identities.groups[devs]", "identities.groups[devs], identities.groups[ops]"),  # a second group
        ("identities.groups[devs], identities.groups[ops]", "identities.groups[devs]"),  # one group left
        ("tagGrants", "identities.groups[ops], tagGrants"),  # now mapped for a group too
    ],
)
def test_a_change_of_group_attribution_is_written_even_when_the_entry_is_not(before: str, after: str) -> None:
    """members_of answers from these sources once a group is deleted: they may not go stale."""
    store = seeded(document(roles=[NODE]))
    w, _, _ = writer(store)
    w.sync([owned_user(ALICE, source=before)])
    outcome = w.sync([owned_user(ALICE, source=after)])
    assert outcome.status == "written" and outcome.changes == ()
    assert w.members_of(["ops"]) == ({"alice"} if "[ops]" in after else set())


def test_a_burst_of_30_writes_keeps_the_last_hand_edited_version_restorable() -> None:
    store = seeded(document(roles=[NODE]))
    clock = Clock()
    w, _, _ = writer(store, clock)
    w.sync([owned_user(ALICE)])  # 11:05, the hour's slot keeps the version from before it
    clock.advance(minutes=5)
    edited = document(roles=[NODE, role("break-glass", "ops")], users=[ALICE])
    hand_edit(store, edited)
    clock.advance(minutes=5)
    for number in range(30):  # then Terraform adds 30 users within the same hour
        w.sync([owned_user(ALICE), *(owned_user(user(f"u{n}", "devs")) for n in range(number + 1))])
    kept = w.kept()
    [by_hand] = [b for b in kept.backups if b.data == edited]
    assert kept.foreign(by_hand)
    assert w.restore(by_hand.sequence).status == "written" and current(store).data == edited


def test_a_newer_foreign_version_replaces_the_kept_one_and_a_restore_counts_as_foreign() -> None:
    store = seeded(document(roles=[NODE]))
    w, _, _ = writer(store)
    w.sync([owned_user(ALICE)])
    first, second = document(roles=[NODE], users=[ALICE, BOB]), document(roles=[NODE], users=[ALICE])
    hand_edit(store, first)
    w.sync([owned_user(ALICE), owned_user(user("erin"))])
    hand_edit(store, second)
    w.sync([owned_user(ALICE), owned_user(user("carol"))])
    kept = w.kept()
    assert [b.data for b in kept.backups if kept.foreign(b)] == [second]

    restored = w.restore(max(b.sequence for b in kept.backups if b.data == first))
    assert restored.status == "written" and current(store).data == first
    w.sync([owned_user(ALICE), owned_user(user("dave"))])
    kept = w.kept()
    assert [b.data for b in kept.backups if kept.foreign(b)] == [first]  # what the restore brought back


def test_a_corrupt_slot_is_reported_and_the_others_still_listed_and_restorable() -> None:
    store = seeded(document(roles=[NODE]))
    w, _, _ = writer(store)
    for name in ("a", "b"):
        w.sync([owned_user(user(name, "devs"))], scope={user(name).key})
    store._store("kube-system", "eks-iam-sync-aws-auth-backup-1", {"sequence": "1", "backup.json.zlib": "!!"}, {})
    kept = w.kept()
    [corrupt] = kept.unreadable
    assert corrupt.name == "eks-iam-sync-aws-auth-backup-1" and "cannot be read" in corrupt.problem
    assert [b.sequence for b in kept.backups] == [2, 1]  # 1 is still intact in the hour's slot
    assert w.restore(2).status == "written"


def test_a_foreign_slot_the_rbac_manifest_does_not_allow_does_not_stop_the_write() -> None:
    store = seeded(document(roles=[NODE]))
    real_put = store.put

    def put(namespace: str, name: str, *args: object, **kwargs: object) -> None:
        if name.endswith("-foreign"):
            raise Forbidden(f'403 configmaps "{name}" is forbidden')
        real_put(namespace, name, *args, **kwargs)  # type: ignore[arg-type]

    store.put = put  # type: ignore[method-assign]
    w, observer, _ = writer(store)
    assert w.sync([owned_user(ALICE)]).status == "written"
    assert observer.counts["BackupsNotKept[foreign]"] == 1
    assert [b.sequence for b in w.backups()] == [1]


def test_mapping_of_answers_how_aws_auth_maps_a_principal_whoever_wrote_it() -> None:
    by_hand = user("alice", "other")
    store = seeded(document(roles=[NODE], users=[by_hand]))
    w, _, _ = writer(store)
    found = w.mapping_of(owned_user(ALICE))
    assert found is not None and found.entry == by_hand and not found.as_desired
    assert w.mapping_of(owned_user(BOB)) is None
    w.sync([owned_user(BOB)])
    written = list(store.writes)
    found = w.mapping_of(owned_user(BOB))
    assert found is not None and found.entry == BOB and found.as_desired
    assert store.writes == written  # mapping_of only reads


def test_a_restore_step_lists_the_entries_it_adds_and_removes() -> None:
    store = seeded(document(roles=[NODE], users=[ALICE]))
    w, _, _ = writer(store)
    w.sync([owned_user(BOB)])  # backup 1 holds alice by hand; now bob is mapped too
    step = w.plan_restore(1)
    assert step.status == "write"
    assert [(c.action, c.arn) for c in step.changes] == [("remove", BOB.arn)]
    assert [c.source for c in step.changes] == ["backup 1"]
