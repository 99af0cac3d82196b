"""Run a test on each YAML event source of chalicelib.config.yamlbounds: libyaml and the pure PyYAML fallback."""

from __future__ import annotations

import pytest
import yaml

from chalicelib.config import yamlbounds
from chalicelib.engine.awsauth import reading

PATHS = ("libyaml", "pure")


def select(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Readings are cached by text whatever the path: parse again, on the path under test.
    reading.KEYS.clear()
    if path == "pure":
        monkeypatch.setattr(yamlbounds, "LIBYAML", None)
    else:
        # PyYAML wheels ship libyaml; a build without it would silently test the pure path twice.
        assert yaml.__with_libyaml__ and yamlbounds.LIBYAML is not None, "PyYAML is built without libyaml"
