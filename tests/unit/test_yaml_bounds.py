"""Hostile YAML: alias bombs and self-referring documents are refused in milliseconds, in aws-auth
(left as it is: nothing is written over it) and in the configuration (invalid, with a reason)."""

from __future__ import annotations

import resource
import time

import pytest

from chalicelib.awsauth.parse import read_aws_auth
from chalicelib.awsauth.writer import AwsAuthWriter
from chalicelib.config import MAX_CONFIG_BYTES, ConfigError, load_config, parse_config
from tests.unit.awsauth.builders import owned_user, user
from tests.unit.awsauth.fakes import FakeConfigMaps
from tests.unit.awsauth.test_writer import Counting


def laughs(levels: int = 9, key_prefix: str = "") -> str:
    text = f'{key_prefix}a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghijklmnop"[:levels]:
        text += f"{key_prefix}{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text


def aws_auth_bomb() -> str:
    """A mapRoles list whose one entry's groups expand to 9^9 strings."""
    anchors = '- &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in range(1, 9):
        anchors += f"- &l{level} [" + ",".join([f"*l{level - 1}"] * 9) + "]\n"
    return anchors + "- rolearn: arn:aws:iam::111122223333:role/x\n  username: x\n  groups: *l8\n"


def test_a_billion_laughs_aws_auth_is_refused_quickly_and_not_written_over() -> None:
    data = {"mapRoles": aws_auth_bomb()}
    started = time.monotonic()
    reading = read_aws_auth(data)
    assert time.monotonic() - started < 2
    assert not reading.understood
    assert any("alias bomb" in p.message for p in reading.errors)

    store = FakeConfigMaps()
    store.create("kube-system", "aws-auth", data)
    store.writes.clear()
    outcome = AwsAuthWriter(store, Counting()).sync([owned_user(user("alice", "devs"))])
    assert outcome.status == "refused" and [r.reason for r in outcome.refusals] == ["current-not-understood"]
    assert store.writes == [] and store.objects[("kube-system", "aws-auth")].data == data


def test_a_self_referring_aws_auth_is_refused() -> None:
    reading = read_aws_auth({"mapRoles": "&a [*a]\n"})
    assert not reading.understood and any("recursive" in p.message for p in reading.errors)


def test_a_few_ordinary_aliases_are_still_read() -> None:
    doc = (
        "- rolearn: arn:aws:iam::111122223333:role/a\n  username: a\n  groups: &g [devs, ops]\n"
        "- rolearn: arn:aws:iam::111122223333:role/b\n  username: b\n  groups: *g\n"
    )
    reading = read_aws_auth({"mapRoles": doc})
    assert [e.groups for e in reading.entries("mapRoles")] == [("devs", "ops"), ("devs", "ops")]


def test_a_bomb_configuration_is_invalid_in_milliseconds_and_bounded_memory() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(ConfigError, match="alias bomb"):
        parse_config(laughs(key_prefix="x"))
    assert time.monotonic() - started < 2
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100 * 1024


def test_a_configuration_over_1_mib_is_refused_before_it_is_parsed(tmp_path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    with pytest.raises(ConfigError, match="over 1024 KiB"):
        load_config(big)
    with pytest.raises(ConfigError, match="over 1024 KiB"):
        parse_config("#" * (MAX_CONFIG_BYTES + 1))
