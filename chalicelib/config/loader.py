"""Reading a configuration: one YAML text (at most 1 MiB, depth and aliases bounded, duplicate keys
refused) validated completely before anything runs. Every problem is reported with its key path and
line (``config.yaml:12: identities.groups[0]...``): syntax problems first, then shape problems, then
cross-key problems, each stage all at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.constructor import SafeConstructor

from chalicelib.config import yamlbounds
from chalicelib.config.checks import KeyPath, dotted, semantic_problems
from chalicelib.config.document import Config
from chalicelib.config.problems import ConfigError, Problem
from chalicelib.config.schema import PROFILE_AS_NAME, PROFILE_IN_FULL

MAX_CONFIG_BYTES = 1024 * 1024


def load_config(path: str | Path) -> Config:
    """Reads, parses and validates one configuration file; raises ConfigError listing every problem."""
    source = str(path)
    try:
        if Path(path).stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(source, [Problem("", None, f"the file is over {MAX_CONFIG_BYTES // 1024} KiB")])
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(source, [Problem("", None, f"cannot read the file: {err}")]) from err
    return parse_config(text, source)


def parse_config(text: str, source: str = "<config>") -> Config:
    data, lines, problems = _read_yaml(text)
    if problems:
        raise ConfigError(source, problems)
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        errors = err.errors()
        # pydantic also reports a list as too short when its items failed: keep the item errors only.
        errors = [e for e in errors if e["type"] != "too_short" or not _has_item_errors(e["loc"], errors)]
        raise ConfigError(source, [_from_pydantic(e, lines) for e in errors]) from err
    problems = [Problem(dotted(p), _line_of(p, lines), m) for p, m in semantic_problems(config)]
    if problems:
        raise ConfigError(source, problems)
    return config


def _read_yaml(text: str) -> tuple[Any, dict[KeyPath, int], list[Problem]]:
    if len(text.encode()) > MAX_CONFIG_BYTES:
        return None, {}, [Problem("", None, f"the file is over {MAX_CONFIG_BYTES // 1024} KiB: not a configuration")]
    try:
        node = yamlbounds.compose(text, single=True).root  # libyaml where present; depth and aliases bounded
        if node is None:
            return None, {}, [Problem("", None, "the file is empty")]
        lines: dict[KeyPath, int] = {}
        problems = list(_walk(node, (), lines))
        return (None if problems else SafeConstructor().construct_document(node)), lines, problems
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        return None, {}, [Problem("", line, f"YAML syntax error: {err.problem or err}")]
    except yaml.YAMLError as err:
        return None, {}, [Problem("", None, f"YAML error: {err}")]
    except yamlbounds.Refused as err:  # too deep, or an alias bomb
        return None, {}, [Problem("", err.line, str(err))]


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> Iterator[Problem]:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                yield Problem(dotted((*path, key)), key_node.start_mark.line + 1, "duplicate key")
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            yield from _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, (*path, index), lines)


def _has_item_errors(loc: tuple[Any, ...], errors: list[Any]) -> bool:
    return any(len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == tuple(loc) for e in errors)


def _from_pydantic(error: Any, lines: dict[KeyPath, int]) -> Problem:
    path: KeyPath = tuple(p for p in error["loc"] if p not in (PROFILE_AS_NAME, PROFILE_IN_FULL))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif error["type"] == "too_short":
        message = "must list at least one entry"
    return Problem(dotted(path), _line_of(path, lines), message)


def _line_of(path: KeyPath, lines: dict[KeyPath, int]) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
