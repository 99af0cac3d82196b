"""aws-auth readings parsed once: ``reading.read`` answers exactly what ``parse.read_aws_auth`` does
(cache miss or hit), each data text is parsed once across the events of a warm environment, and the
cache stays bounded."""

from __future__ import annotations

import pytest

from chalicelib.engine.awsauth import parse, reading
from chalicelib.engine.awsauth.model import MAP_ACCOUNTS, MAP_ROLES, MAP_USERS
from chalicelib.engine.awsauth.writer import AwsAuthWriter
from tests.unit.awsauth.builders import NODE, document, owned_user, role, user
from tests.unit.awsauth.fakes import FakeConfigMaps
from tests.unit.awsauth.test_parse_corpus import CORPUS
from tests.unit.awsauth.test_real_world_documents import SSO
from tests.unit.awsauth.test_writer import Counting

ALICE, BOB, CAROL = user("alice", "devs"), user("bob", "devs"), user("carol", "devs")
DOCUMENTS = [{case.key: case.raw} for case in CORPUS] + [
    {},
    document(roles=[NODE, NODE], users=[ALICE]),  # exact duplicates (eksctl)
    {**document(roles=[NODE]), MAP_ROLES: document(roles=[NODE])[MAP_ROLES] + SSO},
    {**document(roles=[NODE], users=[ALICE]), MAP_ACCOUNTS: "- 111122223333\n- 12\n", "maproles": "[]"},
    {MAP_USERS: "- userarn: x\n\tusername: y\n", "map_users": "", MAP_ACCOUNTS: "{"},
]


@pytest.fixture(autouse=True)
def cold_cache() -> None:
    reading.KEYS.clear()


def same(a: parse.Reading, b: parse.Reading) -> bool:
    """Equal, with NaN (a foreign entry's unknown field) equal to itself."""
    return a == b or repr(a) == repr(b)


@pytest.mark.parametrize("data", DOCUMENTS)
def test_a_reading_is_exactly_the_parser_s_on_a_miss_and_on_a_hit(data: dict[str, str]) -> None:
    fresh = parse.read_aws_auth(data)
    assert same(reading.read(data), fresh)
    assert same(reading.read(dict(data)), fresh)  # a hit, from another object with the same text
    assert same(reading.read(data), parse.read_aws_auth(data))


def test_a_key_shared_by_two_documents_is_parsed_once_and_the_other_key_still_read() -> None:
    first = document(roles=[NODE], users=[ALICE])
    second = {**first, MAP_USERS: document(users=[BOB])[MAP_USERS]}
    reading.read(first)
    misses = reading.KEYS.misses
    assert same(reading.read(second), parse.read_aws_auth(second))
    assert reading.KEYS.misses == misses + 1  # mapUsers only


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    documents = [document(users=[user(f"u{n}")]) for n in range(reading.MAX_KEYS * 2)]
    for data in documents:
        reading.read(data)
    assert len(reading.KEYS._readings) <= reading.MAX_KEYS
    misses = reading.KEYS.misses
    reading.read(documents[0])  # long evicted: parsed again, and still right
    assert reading.KEYS.misses > misses
    assert same(reading.read(documents[0]), parse.read_aws_auth(documents[0]))


def test_each_aws_auth_text_is_parsed_once_across_the_events_of_a_warm_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """plan, guardrails, re-plan after a conflict and the next event all read texts already parsed."""
    parsed: list[tuple[str, str]] = []
    real = parse.read_key

    def counting(key: str, raw: str) -> parse.KeyReading:
        if raw:
            parsed.append((key, raw))
        return real(key, raw)

    monkeypatch.setattr(parse, "read_key", counting)
    store = FakeConfigMaps()
    store.create("kube-system", "aws-auth", document(roles=[NODE, role("dev", "developers")]))
    writer = AwsAuthWriter(store, Counting())
    for wanted in ([ALICE], [ALICE, BOB], [ALICE, BOB], [ALICE, BOB, CAROL]):  # the third is a no-op
        assert writer.sync([owned_user(e) for e in wanted]).status in ("written", "unchanged")
    assert len(parsed) == len(set(parsed)), [key for key, _ in parsed]
    # the first document's two keys, then each event's new mapUsers, once
    assert [key for key, _ in parsed] == [MAP_ROLES, MAP_USERS, MAP_USERS, MAP_USERS, MAP_USERS]
