"""The ownership ledger: version 2 is compact enough for aws-auth's real ceiling (its 1 MiB object),
version 1 is still read and upgraded in place by the next write, and a hostile ledger is refused."""

from __future__ import annotations

import base64
import json
import zlib

import pytest

from chalicelib.engine.awsauth.ledger import MAX_LEDGER_BYTES, Ledger, LedgerError, LedgerRecord
from chalicelib.engine.awsauth.writer import AwsAuthWriter
from chalicelib.model.ownership import LEDGER_ANNOTATION
from tests.unit.awsauth.builders import NODE, document, owned_user, user
from tests.unit.awsauth.fakes import FakeConfigMaps
from tests.unit.awsauth.test_writer import Counting

ANNOTATIONS_LIMIT = 256 * 1024


def big_ledger(users: int = 5000, roles: int = 1000) -> Ledger:
    records = [
        LedgerRecord(
            f"arn:aws:iam::123456789012:user/dev-{i:05x}{i * 7919 % 65521:04x}",
            "mapUsers",
            f"identities.groups[g{i % 100}]",
        )
        for i in range(users)
    ]
    records += [
        LedgerRecord(f"arn:aws:iam::123456789012:role/role-{i:04d}", "mapRoles", f"identities.roles[role-{i:04d}]")
        for i in range(roles)
    ]
    return Ledger.of(records)


def test_version_2_round_trips_and_5000_users_and_1000_roles_take_a_quarter_of_the_annotation_limit() -> None:
    ledger = big_ledger()
    text = ledger.serialize()
    assert Ledger.parse(text) == ledger
    assert json.loads(text)["version"] == 2
    assert len(text) < ANNOTATIONS_LIMIT / 4, len(text)


def test_version_1_is_read_and_the_next_write_upgrades_it_in_place() -> None:
    alice = user("alice", "devs")
    v1 = json.dumps(
        {
            "version": 1,
            "entries": [{"arn": alice.arn, "key": "mapUsers", "source": "identities.groups[devs]", "eventId": "e"}],
        }
    )
    assert Ledger.parse(v1).owns(alice.arn)
    store = FakeConfigMaps()
    store.create("kube-system", "aws-auth", document(roles=[NODE], users=[alice]), {LEDGER_ANNOTATION: v1})
    writer = AwsAuthWriter(store, Counting())
    assert writer.sync([owned_user(alice), owned_user(user("bob", "devs"))]).status == "written"
    upgraded = store.objects[("kube-system", "aws-auth")].annotations[LEDGER_ANNOTATION]
    assert json.loads(upgraded)["version"] == 2 and Ledger.parse(upgraded).owns(alice.arn)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"version": 2, "zlib": "not base64!"}),
        json.dumps({"version": 2, "zlib": base64.b64encode(b"not zlib").decode()}),
        json.dumps({"version": 2, "zlib": base64.b64encode(zlib.compress(b"[1, 2]")).decode()}),
        json.dumps(
            {"version": 2, "zlib": base64.b64encode(zlib.compress(b'{"sources": [], "entries": [["a", 3]]}')).decode()}
        ),
        json.dumps({"version": 3}),
    ],
)
def test_an_unreadable_ledger_is_an_error_never_an_empty_one(text: str) -> None:
    with pytest.raises(LedgerError):
        Ledger.parse(text)


def test_a_ledger_that_inflates_beyond_any_real_one_is_refused() -> None:
    bomb = base64.b64encode(zlib.compress(b" " * (MAX_LEDGER_BYTES + 1), 9)).decode()
    with pytest.raises(LedgerError, match="inflates beyond"):
        Ledger.parse(json.dumps({"version": 2, "zlib": bomb}))


def test_a_backup_of_aws_auth_near_its_limit_fits_in_a_configmap_and_old_backups_still_read() -> None:
    from chalicelib.engine.awsauth.backups import Backup  # noqa: PLC0415

    big = {
        "mapUsers": "".join(
            f'- userarn: "arn:aws:iam::1:user/u{i:06d}"\n  username: "u{i:06d}"\n' for i in range(12000)
        )
    }
    assert len(big["mapUsers"]) > 0.6 * 1024 * 1024
    backup = Backup(7, "2026-11-30T11:00:00+00:00", "42", "event", big, big_ledger().serialize())
    stored = backup.to_data()
    assert sum(len(k) + len(v) for k, v in stored.items()) < 0.3 * 1024 * 1024
    assert Backup.from_data(stored) == backup
    previous_release = {
        "sequence": "3", "takenAt": "t", "resourceVersion": "1", "reason": "r",
        "data.json": json.dumps({"mapRoles": "[]\n"}), "ledger": "",
    }  # fmt: skip
    assert Backup.from_data(previous_release).data == {"mapRoles": "[]\n"}
