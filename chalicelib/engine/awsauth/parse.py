"""Reads aws-auth exactly as its consumer, aws-iam-authenticator, does, under both parser generations.

Gen A (0.5.x, EKS 1.21-1.24): go-yaml v2 straight into structs; lower-case field names only; any
non-null scalar becomes its literal text in a string field. Gen C (0.6.30+, current EKS): YAML ->
JSON -> ``encoding/json``; field names case-insensitive; a value of the wrong JSON type zeroes the
field; an entry without an ARN is dropped. In both, a document that does not load drops every entry
of its key, and only the first YAML document counts. See shared/docs/aws-auth-rules.md.

PyYAML is a YAML 1.1 parser like go-yaml v2; where they differ on a trap the rules name (``\\/``
escapes, surrogate pairs), go-yaml v2's verdict applies. Each key is composed once, by
chalicelib.config.yamlbounds (libyaml where present; nesting and alias expansion bounded). What go-yaml
reads and this module does not reproduce is an error, so the document is never rewritten: merge keys
(``<<: *anchor``, which go-yaml applies) and ``sso:`` entries that the authenticator's
RoleMapping.Validate rejects (it logs and drops them). The result says what each generation loads
and every problem found; a document is *understood* only when both generations load the same entries
and no problem is an error.

This module puts a key's reading together; the text as YAML is ``document``, an entry's fields as
each generation reads them ``fields``, and ``sso:`` entries ``sso``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from chalicelib.engine.awsauth.document import EMPTY_VALUES, KeyFailed, first_document, items_of, text_problems
from chalicelib.engine.awsauth.fields import read_item, string_a
from chalicelib.engine.awsauth.model import ENTRY_KEYS, MAP_ACCOUNTS, MAP_ROLES, MAP_USERS, Entry, Problem
from chalicelib.engine.awsauth.sso import sso_entry, sso_value

_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ROLE_WITH_PATH = re.compile(r"^arn:[^:]+:iam::\d*:role/.+/")


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
    problems = list(text_problems(key, raw))
    if raw.strip() in EMPTY_VALUES:
        return KeyReading(key, (), (), tuple(problems))
    try:
        document = first_document(key, raw, problems)
        items = items_of(document.root)
        if document.collection_keys:
            # YAML -> JSON (Gen C) fails on a mapping key that is not a scalar, e.g. unquoted {{SessionName}}.
            raise KeyFailed(
                "a mapping used as a key (an unquoted {{template}}?) cannot become JSON", document.collection_keys[0]
            )
    except KeyFailed as failed:
        problems.append(Problem(key, "error", f"{failed}: every entry of {key} is dropped", failed.line))
        return KeyReading(key, (), (), tuple(problems))
    gen_a, gen_c = [], []
    sso = 0
    for item in items:
        sso_field = sso_value(item) if key == MAP_ROLES else None
        if sso_field is not None and sso_entry(item, sso_field, problems):
            sso += 1  # matched by permission set, no ARN to compare: kept as it is, never re-rendered
            continue
        entry_a, entry_c, item_problems = read_item(key, raw, item)
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
    problems = list(text_problems(MAP_ACCOUNTS, raw))
    if raw.strip() in EMPTY_VALUES:
        return (), problems
    try:
        items = items_of(first_document(MAP_ACCOUNTS, raw, problems).root)
    except KeyFailed as failed:
        problems.append(Problem(MAP_ACCOUNTS, "error", f"{failed}: every account is dropped", failed.line))
        return (), problems
    accounts = []
    for item in items:
        value = string_a(item, problems, MAP_ACCOUNTS, "account")
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
