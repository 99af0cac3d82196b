"""Reads aws-auth exactly as its consumer, aws-iam-authenticator, does, under both parser generations.

Gen A (0.5.x, EKS 1.21-1.24): go-yaml v2 straight into structs; lower-case field names only; any
non-null scalar becomes its literal text in a string field. Gen C (0.6.30+, current EKS): YAML ->
JSON -> ``encoding/json``; field names case-insensitive; a value of the wrong JSON type zeroes the
field; an entry without an ARN is dropped. In both, a document that does not load drops every entry
of its key, and only the first YAML document counts. See shared/docs/aws-auth-rules.md.

PyYAML is a YAML 1.1 parser like go-yaml v2; where they differ on a trap the rules name (``\\/``
escapes, surrogate pairs), this module applies go-yaml v2's verdict. Each key is composed once, by
chalicelib.config.yamlbounds (libyaml where present; nesting and alias expansion bounded). What go-yaml
reads and this module does not reproduce is an error, so the document is never rewritten: merge keys
(``<<: *anchor``, which go-yaml applies) and ``sso:`` entries that the authenticator's
RoleMapping.Validate rejects (it logs and drops them). The result says what each generation loads
and every problem found; a document is *understood* only when both generations load the same entries
and no problem is an error.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from chalicelib.config import yamlbounds
from chalicelib.engine.awsauth.model import (
    ARN_FIELD,
    ENTRY_KEYS,
    KNOWN_FIELDS,
    MAP_ACCOUNTS,
    MAP_ROLES,
    MAP_USERS,
    Entry,
    Problem,
)

_EMPTY_VALUES = {"", '""', "''", "``", "[]", "null", "~"}
_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_GO_YAML_BAD_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\(/|u[dD][89abAB][0-9a-fA-F]{2})")
_MAYBE_BAD_ESCAPE = ("\\/", "\\ud", "\\uD")  # substrings every match of the pattern above holds
_ACCOUNT_ID = re.compile(r"^\d{12}$")
# aws-iam-authenticator's RoleMapping.Validate (pkg/config/mapper.go): Go's \w and [0-9] are ASCII.
_SSO_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_PERMISSION_SET_NAME = re.compile(r"[\w+=,.@-]{1,32}", re.ASCII)
_SSO_PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b"})  # every version since 0.6.0
_SSO_PARTITIONS_SINCE_2025 = frozenset({"aws-iso-e", "aws-iso-f", "aws-eusc"})  # 0.7.x: endpoints.PARTITIONS
_ROLE_WITH_PATH = re.compile(r"^arn:[^:]+:iam::\d*:role/.+/")


class _KeyFailed(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class KeyReading:
    """What one data key yields under each generation, and what is wrong with it."""

    key: str
    gen_a: tuple[Entry, ...]
    gen_c: tuple[Entry, ...]
    problems: tuple[Problem, ...]
    sso: int = 0  # `sso:` entries (matched by permission set, no rolearn): kept, never re-rendered

    @cached_property
    def understood(self) -> bool:
        return _same_cores(self.gen_a, self.gen_c) and not any(p.severity == "error" for p in self.problems)


@dataclass(frozen=True)
class Reading:
    keys: Mapping[str, KeyReading]
    accounts: tuple[str, ...]
    problems: tuple[Problem, ...]  # every problem, of every key and of the object

    @property
    def understood(self) -> bool:
        return all(k.understood for k in self.keys.values()) and not any(p.severity == "error" for p in self.problems)

    def entries(self, key: str) -> tuple[Entry, ...]:
        """The entries the current consumer (Gen C) loads for ``key``."""
        return self.keys[key].gen_c

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")


def read_aws_auth(data: Mapping[str, str] | None) -> Reading:
    data = data or {}
    keys = {key: read_key(key, data.get(key, "")) for key in ENTRY_KEYS}
    accounts, account_problems = _read_accounts(data.get(MAP_ACCOUNTS, ""))
    problems = [p for k in keys.values() for p in k.problems] + account_problems + list(_misspelled_keys(data))
    return Reading(keys=keys, accounts=accounts, problems=tuple(problems))


def read_key(key: str, raw: str) -> KeyReading:
    problems = list(_text_problems(key, raw))
    if raw.strip() in _EMPTY_VALUES:
        return KeyReading(key, (), (), tuple(problems))
    try:
        document = _first_document(key, raw, problems)
        items = _items(document.root)
        if document.collection_keys:
            # YAML -> JSON (Gen C) fails on a mapping key that is not a scalar, e.g. unquoted {{SessionName}}.
            raise _KeyFailed(
                "a mapping used as a key (an unquoted {{template}}?) cannot become JSON", document.collection_keys[0]
            )
    except _KeyFailed as failed:
        problems.append(Problem(key, "error", f"{failed}: every entry of {key} is dropped", failed.line))
        return KeyReading(key, (), (), tuple(problems))
    gen_a, gen_c = [], []
    sso = 0
    for item in items:
        sso_value = _sso_value(item) if key == MAP_ROLES else None
        if sso_value is not None and _sso_entry(item, sso_value, problems):
            sso += 1  # matched by permission set, no ARN to compare: kept as it is, never re-rendered
            continue
        entry_a, entry_c, item_problems = _read_item(key, raw, item)
        problems.extend(item_problems)
        gen_a.append(entry_a)
        if entry_c.arn:
            gen_c.append(entry_c)
    if not _same_cores(gen_a, gen_c):
        problems.append(Problem(key, "error", "the two parser generations load different entries"))
    problems.extend(_entry_set_problems(key, gen_c))
    return KeyReading(key, tuple(gen_a), tuple(gen_c), tuple(problems), sso)


def _same_cores(gen_a: Iterable[Entry], gen_c: Iterable[Entry]) -> bool:
    """Whether both generations load the same entries, fields the consumer ignores aside."""
    return [(e.arn, e.username, e.groups) for e in gen_a] == [(e.arn, e.username, e.groups) for e in gen_c]


def _sso_value(item: yaml.Node) -> yaml.Node | None:
    """The value of an entry's ``sso`` field (any case: encoding/json folds names; the last wins)."""
    if not isinstance(item, yaml.MappingNode):
        return None
    found = None
    for key_node, value_node in item.value:
        if isinstance(key_node, yaml.ScalarNode) and str(key_node.value).lower() == "sso":
            found = value_node
    return found


def _sso_entry(item: yaml.Node, sso: yaml.Node, problems: list[Problem]) -> bool:
    """Whether ``item`` is an sso: entry (Gen C, 0.6.0+, reads an sso mapping and no rolearn); what
    the authenticator's RoleMapping.Validate refuses in it is an error, as it logs and drops the entry.
    Gen A has no sso field: it keeps an entry without rolearn that never matches."""
    line = item.start_mark.line + 1
    if isinstance(sso, yaml.ScalarNode) and sso.tag == _NULL:
        return False  # a nil SSO: an ordinary entry, judged by its rolearn
    if not isinstance(sso, yaml.MappingNode):
        problems.append(Problem(MAP_ROLES, "error", f"sso: wrong type ({_kind(sso)}): Gen C zeroes the field", line))
        return False
    folded = {str(k.value).lower(): v for k, v in item.value if isinstance(k, yaml.ScalarNode)}
    found: list[Problem] = []
    if _string_c(folded.get("rolearn"), found, MAP_ROLES, "rolearn"):
        problems.append(
            Problem(MAP_ROLES, "error", "an entry with both rolearn and sso: the authenticator drops it", line)
        )
        return False
    fields = {str(k.value).lower(): v for k, v in sso.value if isinstance(k, yaml.ScalarNode)}
    name = _string_c(fields.get("permissionsetname"), found, MAP_ROLES, "sso.permissionSetName")
    account = _string_c(fields.get("accountid"), found, MAP_ROLES, "sso.accountID")
    partition = _string_c(fields.get("partition"), found, MAP_ROLES, "sso.partition")
    dropped = "the authenticator (0.6.0+) logs an error and drops this sso: entry"
    if not _SSO_ACCOUNT_ID.fullmatch(account):
        found.append(Problem(MAP_ROLES, "error", f"sso.accountID {account!r} is not 12 digits: {dropped}", line))
    if not _PERMISSION_SET_NAME.fullmatch(name):
        found.append(
            Problem(MAP_ROLES, "error", f"sso.permissionSetName {name!r} is not a permission-set name: {dropped}", line)
        )
    if partition in _SSO_PARTITIONS_SINCE_2025:
        found.append(
            Problem(
                MAP_ROLES,
                "error",
                f"sso.partition {partition!r} is known only to authenticators from 2025 on; earlier ones "
                "log an error and drop this sso: entry",
                line,
            )
        )
    elif partition and partition not in _SSO_PARTITIONS:
        found.append(Problem(MAP_ROLES, "error", f"sso.partition {partition!r} is not a partition: {dropped}", line))
    problems.extend(found or [Problem(MAP_ROLES, "warning", "an sso: entry: kept as it is", line)])
    return True


def _text_problems(key: str, raw: str) -> Iterator[Problem]:
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


def _first_document(key: str, raw: str, problems: list[Problem]) -> yamlbounds.Document:
    """The first document, composed once; what the consumer would read differently is a problem."""
    text = raw.removeprefix("\ufeff")  # as yamlbounds.compose does, so that marks index ``text``
    try:
        document = yamlbounds.compose(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise _KeyFailed(f"YAML syntax error: {err.problem or err.context}", mark.line + 1 if mark else None) from err
    except yaml.YAMLError as err:
        raise _KeyFailed(f"YAML error: {err}", None) from err
    except yamlbounds.Refused as err:
        raise _KeyFailed(str(err), err.line) from err
    if document.more:
        problems.append(Problem(key, "error", "a second YAML document: the consumer ignores everything after ---"))
    root = document.root
    if root is not None and any(escape in text for escape in _MAYBE_BAD_ESCAPE):  # rare: walk only then
        for node in _walk(root):
            if isinstance(node, yaml.ScalarNode) and node.style == '"':
                source = text[node.start_mark.index : node.end_mark.index]
                if _GO_YAML_BAD_ESCAPE.search(source):
                    raise _KeyFailed(
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


def _items(root: yaml.Node | None) -> list[yaml.Node]:
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL):
        return []
    if isinstance(root, yaml.SequenceNode):
        return list(root.value)
    what = "an object" if isinstance(root, yaml.MappingNode) else "a scalar"
    raise _KeyFailed(f"the document is {what}, not a list", root.start_mark.line + 1)


def _read_item(key: str, raw: str, item: yaml.Node) -> tuple[Entry, Entry, list[Problem]]:
    arn_field = ARN_FIELD[key]
    line = item.start_mark.line + 1
    if not isinstance(item, yaml.MappingNode):
        empty = Entry("", "")
        return empty, empty, [Problem(key, "error", "an entry that is not a mapping is dropped", line)]
    problems: list[Problem] = []
    exact, folded, extra = _fields(key, item, line, problems)
    gen_c = Entry(
        arn=_string_c(folded.get(arn_field), problems, key, arn_field),
        username=_string_c(folded.get("username"), problems, key, "username"),
        groups=_groups(folded.get("groups"), problems, key, "Gen C", _string_c),
        extra=tuple(extra),
    )
    if not problems and len(folded) == len(exact):
        # Lower-case names and string values only (the usual entry): Gen A reads exactly what Gen C reads.
        gen_a = Entry(gen_c.arn, gen_c.username, gen_c.groups)
    else:
        gen_a = Entry(
            arn=_string_a(exact.get(arn_field), problems, key, arn_field),
            username=_string_a(exact.get("username"), problems, key, "username"),
            groups=_groups(exact.get("groups"), problems, key, "Gen A", _string_a),
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
        Problem(key, "error", f"{name}: wrong type ({_kind(node)}): {gen} zeroes the field", node.start_mark.line + 1)
    )


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return node.tag.rsplit(":", 1)[-1]
    return "list" if isinstance(node, yaml.SequenceNode) else "object"


def _string_a(node: yaml.Node | None, problems: list[Problem], key: str, name: str) -> str:
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL):
        return ""
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)  # go-yaml v2 sets a string field from the scalar's text
    _type_problem(problems, key, node, name, "Gen A")
    return ""


def _string_c(node: yaml.Node | None, problems: list[Problem], key: str, name: str) -> str:
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL):
        return ""
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR:
        return str(node.value)
    _type_problem(problems, key, node, name, "Gen C")
    return ""


def _groups(
    node: yaml.Node | None, problems: list[Problem], key: str, gen: str, read: Callable[..., str]
) -> tuple[str, ...]:
    """A groups field: a list of strings, read item by item with the generation's string rule."""
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL):
        return ()
    if not isinstance(node, yaml.SequenceNode):
        _type_problem(problems, key, node, "groups", gen)
        return ()
    return tuple(read(item, problems, key, "groups[]") for item in node.value)


def _entry_set_problems(key: str, entries: list[Entry]) -> Iterator[Problem]:
    """Duplicates the consumer resolves deterministically (the last entry of an ARN wins; roles are
    keyed by lower-case ARN) are warnings and left as they are; user ARNs that differ only in case are
    resolved at random: an error."""
    spellings: dict[str, set[str]] = {}
    counts: Counter[str] = Counter()
    for entry in entries:
        spellings.setdefault(entry.key, set()).add(entry.arn)
        counts[entry.key] += 1
    for key_of_arn, arns_of_key in spellings.items():
        count = counts[key_of_arn]
        if count < 2:
            continue
        first = sorted(arns_of_key)[0]
        if key == MAP_USERS and len(arns_of_key) > 1:
            yield Problem(
                key,
                "error",
                f"user ARNs differing only in case {sorted(arns_of_key)}: the consumer picks one at random",
            )
        else:
            yield Problem(key, "warning", f"{count} entries for {first}: the consumer uses the last; left as they are")
    for entry in entries:
        if _ROLE_WITH_PATH.match(entry.arn):
            yield Problem(key, "warning", f"role ARN with a path never matches: {entry.arn}")
        if not entry.arn.startswith("arn:"):
            yield Problem(key, "warning", f"not an ARN: {entry.arn!r}")
        if not entry.username:
            yield Problem(key, "warning", f"empty username for {entry.arn}: the consumer rejects the caller")


def _read_accounts(raw: str) -> tuple[tuple[str, ...], list[Problem]]:
    """mapAccounts is always decoded by go-yaml v2 into []string."""
    problems = list(_text_problems(MAP_ACCOUNTS, raw))
    if raw.strip() in _EMPTY_VALUES:
        return (), problems
    try:
        items = _items(_first_document(MAP_ACCOUNTS, raw, problems).root)
    except _KeyFailed as failed:
        problems.append(Problem(MAP_ACCOUNTS, "error", f"{failed}: every account is dropped", failed.line))
        return (), problems
    accounts = []
    for item in items:
        value = _string_a(item, problems, MAP_ACCOUNTS, "account")
        if not _ACCOUNT_ID.match(value):
            problems.append(
                Problem(MAP_ACCOUNTS, "warning", f"{value!r} is not a 12-digit account ID", item.start_mark.line + 1)
            )
        accounts.append(value)
    return tuple(accounts), problems


def _misspelled_keys(data: Mapping[str, str]) -> Iterator[Problem]:
    wanted = {k.lower(): k for k in (*ENTRY_KEYS, MAP_ACCOUNTS)}
    for name in data:
        folded = name.lower().replace("_", "").replace("-", "")
        for near, proper in wanted.items():
            if name != proper and (folded == near or folded.rstrip("s") == near.rstrip("s")):
                yield Problem("", "warning", f"data key {name!r} is ignored by the consumer (did you mean {proper!r}?)")
