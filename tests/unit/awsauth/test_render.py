"""Quoting: every string the renderer writes reads back identically, characters YAML refuses included."""

from __future__ import annotations

import pytest
import yaml

from chalicelib.engine.awsauth.render import quote


@pytest.mark.parametrize(
    "text", ["a\ufffeb", "\uffff", "x\u2028y", "\ufeffbom", "tab\tnl\n", 'q"\\', "{{SessionName}}", "on"]
)
def test_quoted_strings_read_back_identically(text: str) -> None:
    assert yaml.safe_load(quote(text)) == text
