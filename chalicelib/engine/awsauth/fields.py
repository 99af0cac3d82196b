"""One aws-auth entry's fields as each parser generation reads them. Gen A (go-yaml v2 into structs):
lower-case field names only, any non-null scalar read as its text. Gen C (YAML -> JSON ->
``encoding/json``): field names folded, a value of the wrong JSON type zeroes the field. Unknown
fields are kept (never read); what either generation would misread is a problem."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from chalicelib.engine.awsauth.document import NULL_TAG, STR_TAG
from chalicelib.engine.awsauth.model import ARN_FIELD, KNOWN_FIELDS, Entry, Problem


def read_item(key: str, raw: str, item: yaml.Node) -> tuple[Entry, Entry, list[Problem]]:
    arn_field = ARN_FIELD[key]
    line = item.start_mark.line + 1
    if not isinstance(item, yaml.MappingNode):
        empty = Entry("", "")
        return empty, empty, [Problem(key, "error", "an entry that is not a mapping is dropped", line)]
    problems: list[Problem] = []
    exact, folded, extra = _fields(key, item, line, problems)
    gen_c = Entry(
        arn=string_c(folded.get(arn_field), problems, key, arn_field),
        username=string_c(folded.get("username"), problems, key, "username"),
        groups=_groups(folded.get("groups"), problems, key, "Gen C", string_c),
        extra=tuple(extra),
    )
    if not problems and len(folded) == len(exact):
        # Lower-case names and string values only (the usual entry): Gen A reads exactly what Gen C reads.
        gen_a = Entry(gen_c.arn, gen_c.username, gen_c.groups)
    else:
        gen_a = Entry(
            arn=string_a(exact.get(arn_field), problems, key, arn_field),
            username=string_a(exact.get("username"), problems, key, "username"),
            groups=_groups(exact.get("groups"), problems, key, "Gen A", string_a),
        )
    if not gen_c.arn:
        problems.append(Problem(key, "error", f"entry without {arn_field}: Gen C drops it, Gen A keeps it", line))
    for group in gen_c.groups:
        if " - " in group:
            problems.append(
                Problem(key, "error", f"group {group!r} looks like two list items merged (one space too many)", line)
            )
    return gen_a, gen_c, problems


def _fields(
    key: str, item: yaml.MappingNode, line: int, problems: list[Problem]
) -> tuple[dict[str, yaml.Node], dict[str, yaml.Node], list[tuple[str, Any]]]:
    """An entry's fields as written (Gen A), folded to lower case (Gen C, known fields only), and the
    unknown ones (kept, never read); what either generation would misread is added to ``problems``."""
    exact: dict[str, yaml.Node] = {}
    folded: dict[str, yaml.Node] = {}
    extra: list[tuple[str, Any]] = []
    for key_node, value_node in item.value:
        name = str(key_node.value)
        if name in exact:
            problems.append(Problem(key, "error", f"duplicate field {name!r}: the last one wins", line))
        exact[name] = value_node
        if name.lower() not in KNOWN_FIELDS:
            extra.append((name, _construct(value_node)))
            problems.append(Problem(key, "warning", f"unknown field {name!r} (ignored by the consumer, kept)", line))
            continue
        if name.lower() in folded and name != name.lower():
            problems.append(Problem(key, "error", f"field {name!r} repeats another spelling of it", line))
        folded[name.lower()] = value_node
        if name != name.lower():
            problems.append(Problem(key, "error", f"field {name!r} is not lower case: Gen A ignores it", line))
    return exact, folded, extra


def _construct(node: yaml.Node) -> Any:
    return SafeConstructor().construct_object(node, deep=True)


def _type_problem(problems: list[Problem], key: str, node: yaml.Node, name: str, gen: str) -> None:
    problems.append(
        Problem(key, "error", f"{name}: wrong type ({kind(node)}): {gen} zeroes the field", node.start_mark.line + 1)
    )


def kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return node.tag.rsplit(":", 1)[-1]
    return "list" if isinstance(node, yaml.SequenceNode) else "object"


def string_a(node: yaml.Node | None, problems: list[Problem], key: str, name: str) -> str:
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG):
        return ""
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)  # go-yaml v2 sets a string field from the scalar's text
    _type_problem(problems, key, node, name, "Gen A")
    return ""


def string_c(node: yaml.Node | None, problems: list[Problem], key: str, name: str) -> str:
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG):
        return ""
    if isinstance(node, yaml.ScalarNode) and node.tag == STR_TAG:
        return str(node.value)
    _type_problem(problems, key, node, name, "Gen C")
    return ""


def _groups(
    node: yaml.Node | None, problems: list[Problem], key: str, gen: str, read: Callable[..., str]
) -> tuple[str, ...]:
    """A groups field: a list of strings, read item by item with the generation's string rule."""
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG):
        return ()
    if not isinstance(node, yaml.SequenceNode):
        _type_problem(problems, key, node, "groups", gen)
        return ()
    return tuple(read(item, problems, key, "groups[]") for item in node.value)
