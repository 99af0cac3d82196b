"""One aws-auth data key's text as YAML, as the consumer's go-yaml reads it: problems in the text
itself (tabs, non-breaking spaces, byte-order marks), the first document composed once by
chalicelib.config.yamlbounds (a syntax error, a second document, go-yaml v2's verdict on ``\\/`` and
surrogate escapes, merge keys), and its list of entries. A ``KeyFailed`` drops every entry of the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import yaml

from chalicelib.config import yamlbounds
from chalicelib.engine.awsauth.model import Problem

EMPTY_VALUES = {"", '""', "''", "``", "[]", "null", "~"}
STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
_GO_YAML_BAD_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\(/|u[dD][89abAB][0-9a-fA-F]{2})")
_MAYBE_BAD_ESCAPE = ("\\/", "\\ud", "\\uD")  # substrings every match of the pattern above holds


class KeyFailed(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def text_problems(key: str, raw: str) -> Iterator[Problem]:
    text = raw.removeprefix("\ufeff")  # a leading byte-order mark is skipped by every YAML reader
    if not any(char in text for char in "\t\u00a0\ufeff"):
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if "\t" in line:
            yield Problem(key, "error", "tab character (YAML forbids tabs as indentation)", number)
        if "\u00a0" in line:
            yield Problem(key, "error", "non-breaking space (not whitespace to YAML)", number)
        if "\ufeff" in line:
            yield Problem(
                key,
                "error",
                "byte-order mark inside the text (skipped at a line's start by go-yaml, text elsewhere)",
                number,
            )


def first_document(key: str, raw: str, problems: list[Problem]) -> yamlbounds.Document:
    """The first document, composed once; what the consumer would read differently is a problem."""
    text = raw.removeprefix("\ufeff")  # as yamlbounds.compose does, so that marks index ``text``
    try:
        document = yamlbounds.compose(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise KeyFailed(f"YAML syntax error: {err.problem or err.context}", mark.line + 1 if mark else None) from err
    except yaml.YAMLError as err:
        raise KeyFailed(f"YAML error: {err}", None) from err
    except yamlbounds.Refused as err:
        raise KeyFailed(str(err), err.line) from err
    if document.more:
        problems.append(Problem(key, "error", "a second YAML document: the consumer ignores everything after ---"))
    root = document.root
    if root is not None and any(escape in text for escape in _MAYBE_BAD_ESCAPE):  # rare: walk only then
        for node in _walk(root):
            if isinstance(node, yaml.ScalarNode) and node.style == '"':
                source = text[node.start_mark.index : node.end_mark.index]
                if _GO_YAML_BAD_ESCAPE.search(source):
                    raise KeyFailed(
                        "escape \\/ or a UTF-16 surrogate in a double-quoted string (go-yaml v2 rejects both)",
                        node.start_mark.line + 1,
                    )
    problems.extend(
        Problem(
            key,
            "error",
            "YAML merge key '<<': go-yaml (both generations) merges the aliased mapping in, this service "
            "would not read or rewrite it with the same meaning: refused, left as it is",
            line,
        )
        for line in document.merge_keys
    )
    return document


def _walk(root: yaml.Node) -> Iterator[yaml.Node]:
    """Every node once (an aliased node is shared, not repeated); iterative, so depth costs no stack."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            for key_node, value_node in reversed(node.value):
                stack.extend((value_node, key_node))


def items_of(root: yaml.Node | None) -> list[yaml.Node]:
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == NULL_TAG):
        return []
    if isinstance(root, yaml.SequenceNode):
        return list(root.value)
    what = "an object" if isinstance(root, yaml.MappingNode) else "a scalar"
    raise KeyFailed(f"the document is {what}, not a list", root.start_mark.line + 1)
