"""Renders aws-auth keys that both parser generations load identically.

Every string is double-quoted (so YAML 1.1 never reads ``on``, ``1234`` or ``{{SessionName}}`` as
anything but text), field names are lower case, indentation is spaces, and characters YAML treats
as line breaks or that go-yaml v2 escapes differently are written as BMP ``\\uXXXX`` escapes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from chalicelib.engine.awsauth.model import ARN_FIELD, Entry

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
# Line and paragraph separators, the BOM, and the two noncharacters a YAML reader refuses to read.
_BREAKS_AND_NONCHARACTERS = (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF)
# Exactly the characters quote() rewrites (below): anything else is copied as it is.
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]')
_RESERVED_KEYS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def render_key(key: str, entries: Iterable[Entry]) -> str:
    """One data value (mapRoles or mapUsers) holding ``entries`` in the given order."""
    lines: list[str] = []
    for entry in entries:
        lines.append(f"- {ARN_FIELD[key]}: {quote(entry.arn)}")
        lines.append(f"  username: {quote(entry.username)}")
        if entry.groups:
            lines.append("  groups:")
            lines.extend(f"    - {quote(group)}" for group in entry.groups)
        lines.extend(f"  {_key(name)}: {_flow(value)}" for name, value in entry.extra)
    return "\n".join(lines) + "\n" if lines else "[]\n"


def quote(text: str) -> str:
    if not _NEEDS_ESCAPE.search(text):  # nearly every ARN, name and group: no per-character loop
        return '"' + text + '"'
    out = []
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or 0x7F <= code <= 0x9F or code in _BREAKS_AND_NONCHARACTERS or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else char)
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(name: str) -> str:
    return name if _PLAIN_KEY.match(name) and name.lower() not in _RESERVED_KEYS else quote(name)


def _flow(value: Any) -> str:  # noqa: PLR0911 - one return per YAML type
    """A foreign entry's unknown field, in flow style, with its YAML type kept."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        return repr(value) if math.isfinite(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{quote(str(k))}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, date):
        return value.isoformat()
    return quote(str(value))
