"""Hostile YAML: alias bombs, self-referring and deeply nested documents are refused without expanding them,
in aws-auth (left as it is: nothing is written over it) and in the configuration (invalid, with a
reason), on both YAML event sources; no input makes either reader raise anything else."""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.config import MAX_CONFIG_BYTES, ConfigError, load_config, parse_config, yamlbounds
from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.engine.awsauth.writer import AwsAuthWriter
from tests.unit import yaml_paths
from tests.unit.awsauth.builders import owned_user, user
from tests.unit.awsauth.fakes import FakeConfigMaps
from tests.unit.awsauth.test_writer import Counting


@pytest.fixture(autouse=True, params=yaml_paths.PATHS)
def yaml_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml_paths.select(request.param, monkeypatch)


@contextlib.contextmanager
def unexpanded(limit_mib: int = 100) -> Iterator[None]:
    """The peak memory grows by less than the limit: a bomb expanded (9^9 strings) or a document
    composed 100 000 levels deep would not fit. Memory, not a wall clock, so a busy machine cannot fail it."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    yield
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < limit_mib * 1024


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


def test_a_billion_laughs_aws_auth_is_refused_unexpanded_and_not_written_over() -> None:
    data = {"mapRoles": aws_auth_bomb()}
    with unexpanded():
        reading = read_aws_auth(data)
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


def test_a_bomb_configuration_is_invalid_in_bounded_memory() -> None:
    with unexpanded(), pytest.raises(ConfigError, match="alias bomb"):
        parse_config(laughs(key_prefix="x"))


def test_a_configuration_over_1_mib_is_refused_before_it_is_parsed(tmp_path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    with pytest.raises(ConfigError, match="over 1024 KiB"):
        load_config(big)
    with pytest.raises(ConfigError, match="over 1024 KiB"):
        parse_config("#" * (MAX_CONFIG_BYTES + 1))


DEEP = {
    "flow lists": lambda n: "[" * n + "]" * n,
    "flow mappings": lambda n: "{a: " * n + "1" + "}" * n,
    "block sequences": lambda n: "- " * n + "x",
    "block mappings": lambda n: "".join(f"{' ' * i}a:\n" for i in range(n)) + " " * n + "b: 1",
}


@pytest.mark.parametrize(
    ("shape", "depth"),
    [(shape, depth) for shape in DEEP for depth in (101, 2000, 100_000) if len(DEEP[shape](depth)) <= 1024 * 1024],
)
def test_deep_aws_auth_is_refused_before_it_is_composed(shape: str, depth: int) -> None:
    data = {"mapRoles": DEEP[shape](depth), "mapUsers": "- userarn: arn:aws:iam::111122223333:user/a\n  username: a\n"}
    with unexpanded():
        reading = read_aws_auth(data)
    assert not reading.understood
    assert [p.message for p in reading.errors if p.key == "mapRoles"] == [
        f"YAML nested deeper than {yamlbounds.MAX_DEPTH} levels: refused (no real document comes near): "
        "every entry of mapRoles is dropped"
    ]
    assert [e.arn for e in reading.entries("mapUsers")] == ["arn:aws:iam::111122223333:user/a"]


@pytest.mark.parametrize("shape", DEEP)
def test_a_configuration_nested_3000_deep_is_invalid_with_a_reason(shape: str) -> None:
    depth = 1000 if shape == "block mappings" else 3000  # each level indents one more: 1 000 is 0.5 MiB
    with pytest.raises(ConfigError, match="nested deeper than 100 levels"):
        parse_config("version: 1\nx:\n " + DEEP[shape](depth).replace("\n", "\n "))


def test_nesting_up_to_the_bound_is_read() -> None:
    assert yamlbounds.compose("[" * yamlbounds.MAX_DEPTH + "]" * yamlbounds.MAX_DEPTH).root is not None
    with pytest.raises(yamlbounds.TooDeep):
        yamlbounds.compose("[" * (yamlbounds.MAX_DEPTH + 1) + "]" * (yamlbounds.MAX_DEPTH + 1))


YAMLISH = st.text(alphabet=st.sampled_from("[]{}-:?&*!|>'\"#,<\\ \n\tax1\u00e9\ufeff\x01"), max_size=300)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(YAMLISH, st.integers(1, 1500).map(lambda n: "[" * n), st.integers(1, 1500).map(lambda n: "- " * n)))
def test_no_input_makes_a_reader_raise(text: str) -> None:
    """Whatever the text: a reading from read_aws_auth, a configuration or a ConfigError from parse_config."""
    read_aws_auth({"mapRoles": text, "mapUsers": text, "mapAccounts": text})
    with contextlib.suppress(ConfigError):
        parse_config(text)
