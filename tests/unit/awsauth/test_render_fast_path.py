"""quote()'s fast path (no character that needs an escape) renders exactly what the per-character
rules render, for every code point alone and inside text."""

from __future__ import annotations

from chalicelib.engine.awsauth import render


def by_the_rules(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in render._ESCAPES:
            out.append(render._ESCAPES[char])
        elif (
            code < 0x20 or 0x7F <= code <= 0x9F or code in render._BREAKS_AND_NONCHARACTERS or 0xD800 <= code <= 0xDFFF
        ):
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def test_every_code_point_is_quoted_as_the_rules_say() -> None:
    for code in [*range(0x10000), *range(0x10000, 0x110000, 97)]:
        char = chr(code)
        assert render.quote(char) == by_the_rules(char), hex(code)
        assert render.quote(f"arn:{char}:x") == by_the_rules(f"arn:{char}:x"), hex(code)
