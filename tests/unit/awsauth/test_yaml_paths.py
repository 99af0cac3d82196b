"""The two YAML event sources (libyaml, and pure PyYAML where libyaml is missing) give one reading.

libyaml is used wherever PyYAML has it, each key is composed once, and wherever the two scanners
would differ the pure reader's verdict stands (chalicelib/config/yamlbounds.py). The merge property test's
generated documents (two-generation parity) and token soup built from what YAML treats specially are
read on both paths and must read identically, problems and lines included."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chalicelib.config import ConfigError, parse_config, yamlbounds
from chalicelib.engine.awsauth.ledger import Ledger
from chalicelib.engine.awsauth.merge import merge
from chalicelib.engine.awsauth.model import MAP_ROLES, MAP_USERS
from chalicelib.engine.awsauth.parse import Reading, read_aws_auth, read_key
from chalicelib.model.identities import OwnedEntry
from tests.unit import yaml_paths
from tests.unit.awsauth.builders import NODE, document, role, user
from tests.unit.awsauth.test_merge import scenarios
from tests.unit.awsauth.test_parse_corpus import CORPUS

LIBYAML = yamlbounds.LIBYAML
FLAT = yamlbounds.FLAT
TOKENS = [
    *("- ", "  ", "\n", ": ", ":", ",", "[", "]", "{", "}", "'", '"', "? ", "|", ">", "#", "&a ", "*a", "<<"),
    *("rolearn", "username", "groups", "sso", "arn:aws:iam::111122223333:role/x", "{{SessionName}}", "yes"),
    *("~", "null", "0x1F", "!!str ", "!x ", "---", "...", "%YAML 1.1\n", "\r", "\t", "\ufeff", "\u00a0"),
    *("\x85", "\u2028", "é", "@", "`", "\\", "\\/", "\\t", "\\ ", "\\x41", "\\u00e9", "\\ud83d", "\\U0001F600"),
    *("a?b", "!x,", "|#", ">-#", "%FOO x\n", "%YAML 1.3\n", "x:]", "\x01"),
]


def on_both(read: Any, *args: Any) -> tuple[Any, Any]:
    yamlbounds.LIBYAML = LIBYAML
    try:
        first = read(*args)
        yamlbounds.LIBYAML = None
        return first, read(*args)
    finally:
        yamlbounds.LIBYAML = LIBYAML


def test_libyaml_is_installed_and_used() -> None:
    yaml_paths.select("libyaml", pytest.MonkeyPatch())
    big = document(roles=[NODE, *(role(f"r{i}", "devs") for i in range(200))], users=[user("alice", "devs")])
    made: list[tuple[str, str]] = []

    class Counted(LIBYAML):  # type: ignore[misc, valid-type]
        def __init__(self, text: str) -> None:
            made.append(("bounded", text))
            super().__init__(text)

    class CountedFlat(FLAT):  # type: ignore[misc, valid-type]
        def __init__(self, text: str) -> None:
            made.append(("flat", text))
            super().__init__(text)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yamlbounds, "LIBYAML", Counted)
        patch.setattr(yamlbounds, "FLAT", CountedFlat)
        patch.setattr(yamlbounds, "_Pure", None)  # the fallback would fail: it is not used
        reading = read_aws_auth(big)
    assert reading.understood and len(reading.entries(MAP_ROLES)) == 201
    # Each key composed once, on libyaml: mapRoles (the node role's {{template}}) by the bounded
    # composer, mapUsers (nothing to bound) by libyaml's own.
    assert sorted(made) == [("bounded", big[MAP_ROLES]), ("flat", big[MAP_USERS])]


def _shape(node: Any) -> Any:
    """A node graph as plain data: kind, tag, value, style (a plain scalar's '' or None alike), marks."""
    marks = (node.start_mark.line, node.start_mark.column, node.start_mark.index, node.end_mark.index)
    if isinstance(node, yaml.ScalarNode):
        return ("scalar", node.tag, node.value, node.style or None, marks)
    if isinstance(node, yaml.SequenceNode):
        return ("sequence", node.tag, node.flow_style, marks, [_shape(item) for item in node.value])
    return ("mapping", node.tag, node.flow_style, marks, [(_shape(k), _shape(v)) for k, v in node.value])


def _flat_texts() -> list[str]:
    big = document(
        roles=[role(f"r{i}", "devs", "ops") for i in range(300)], users=[user(f"u{i}", "devs") for i in range(300)]
    )
    texts = [c.raw for c in CORPUS] + list(big.values())
    texts += [
        "",
        "\n",
        "# only a comment\n",
        "a: 1\nb:\n- x\n-\n  c: |\n    text\n",
        "- 'single' # c\n- \"x\\u00e9\"\n",
    ]
    return [t for t in texts if not yamlbounds._pure_only(t) and yamlbounds._flat(t)]


def test_a_text_with_nothing_to_bound_is_composed_by_libyaml_alone_to_the_same_nodes() -> None:
    texts = _flat_texts()
    assert len(texts) >= 30  # not vacuous: the corpus and rendered documents
    assert FLAT is not None and LIBYAML is not None
    compared = 0
    for text in texts:
        try:
            bounded = yamlbounds._compose(LIBYAML, text, single=False, rest_must_parse=True)
        except yaml.YAMLError:  # both refuse it (then the pure path reads it, whichever refused)
            with pytest.raises(yaml.YAMLError):
                yamlbounds._compose_flat(FLAT, text)
            continue
        flat = yamlbounds._compose_flat(FLAT, text)
        assert (flat.more, flat.merge_keys, flat.collection_keys) == (False, (), ())
        assert (bounded.more, bounded.merge_keys, bounded.collection_keys) == (False, (), ()), text
        assert (flat.root is None) == (bounded.root is None)
        if flat.root is not None:
            assert _shape(flat.root) == _shape(bounded.root), text
            compared += 1
    assert compared >= 20


@pytest.mark.parametrize(
    "text",
    [
        "- &a x\n- *a\n",
        "- !!str x\n",
        "- [x]\n",
        "- {a: 1}\n",
        "? a\n: b\n",
        "a: 1\n<<: {}\n",
        "%YAML 1.1\n--- x\n",
        "x\n---\ny\n",
        "x\n...\n",
        "--- x\n",
        '- "quoted & still refused"\n',
        "a: 1\rb: 2\n",
        "- " * 16 + "x\n",
        "a:\n" + " " * 32 + "b\n",
    ],
)
def test_what_has_something_to_bound_goes_through_the_bounded_composer(text: str) -> None:
    assert not yamlbounds._flat(text)


def _depth(node: Any) -> int:
    if isinstance(node, yaml.ScalarNode):
        return 1
    children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
    return 1 + max((_depth(c) for c in children), default=0)


@pytest.mark.parametrize(
    "shape",
    [
        # Two levels per column: a mapping, the sequence that is its value at the same column, and so on.
        lambda n: "".join(f"{' ' * i}k{i}:\n{' ' * i}-\n" for i in range(n)) + " " * n + "x\n",
        lambda n: "- " * (n // 2) + "x\n",  # compact sequences: two columns a level
        lambda n: "".join(f"{' ' * i}k{i}:\n" for i in range(n)) + " " * n + "x\n",  # one column a level
    ],
)
def test_a_flat_text_nests_under_max_depth(shape: Any) -> None:
    """The deepest texts ``_flat`` admits stay within 2 * FLAT_LEAD + 1, under MAX_DEPTH; one column
    more of lead and they are not flat."""
    deepest = max((text for n in range(1, 2 * yamlbounds.FLAT_LEAD) if yamlbounds._flat(text := shape(n))), key=len)
    depth = _depth(yamlbounds.compose(deepest).root)
    assert depth <= 2 * yamlbounds.FLAT_LEAD + 1 < yamlbounds.MAX_DEPTH


def test_a_document_libyaml_refuses_is_read_by_the_pure_path_with_its_message() -> None:
    raw = "- rolearn: arn:aws:iam::111122223333:role/dev\n  username: system: admin\n"
    libyaml, pure = on_both(read_key, MAP_ROLES, raw)
    assert libyaml == pure
    assert [p.render() for p in pure.problems] == [
        "error: mapRoles:2: YAML syntax error: mapping values are not allowed here: every entry of mapRoles is dropped"
    ]


@pytest.mark.parametrize(
    "raw",
    [
        "- rolearn: arn:aws:iam::111122223333:role/a\n  username: why?!\n  note: !!str a?b\n  ? groups\n  : - x?\n",
        "- rolearn: arn:aws:iam::111122223333:role/a # who? !\n  username: !x a\n",
        "- {rolearn: arn:aws:iam::111122223333:role/a, username: a?b}\n",
        "- rolearn: arn:aws:iam::111122223333:role/a\n  groups: [!!str x, y]\n",
    ],
)
def test_question_marks_and_tags_read_identically_in_block_and_flow_context(raw: str) -> None:
    libyaml, pure = on_both(read_key, MAP_ROLES, raw)
    assert libyaml == pure


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_token_soup_reads_identically(raw: str) -> None:
    libyaml, pure = on_both(read_key, MAP_ROLES, raw)
    assert libyaml == pure


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(scenarios())
def test_merge_scenarios_read_and_merge_identically(
    scenario: tuple[dict[str, str], Ledger, list[OwnedEntry], set[str] | None],
) -> None:
    data, ledger, desired, scope = scenario
    before: tuple[Reading, Reading] = on_both(read_aws_auth, data)
    assert before[0] == before[1]
    assume(before[0].understood)
    merged = merge(data, before[0], ledger, desired, scope)
    after = on_both(read_aws_auth, merged.data)
    assert after[0] == after[1] and after[0].understood
    for key in (MAP_ROLES, MAP_USERS):  # the two parser generations agree, on both paths
        assert [e.core() for e in after[1].keys[key].gen_a] == [e.core() for e in after[1].keys[key].gen_c]


@pytest.mark.parametrize(
    "text",
    [
        "version: 1\n",
        "version: 1\nidentities:\n  groups: [a, b\n",
        "version: 1\n---\nversion: 2\n",
        "version: 1\nx: 1\nx: 2\n",
        "version: 1\n\tx: 1\n",
        "a: &a [1]\nb: *c\n",
        "a: &a 1\nb: &a 2\n",
        "a: |#\n  x\n",
        "\ufeffversion: 1\n",
        "{" * 200,
    ],
)
def test_a_configuration_reads_identically(text: str) -> None:
    def read(text: str) -> str:
        try:
            return repr(parse_config(text))
        except ConfigError as err:
            return str(err)

    libyaml, pure = on_both(read, text)
    assert libyaml == pure
