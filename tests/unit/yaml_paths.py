"""Run a test on each YAML event source of chalicelib.yamlbounds: libyaml and the pure PyYAML fallback."""

from __future__ import annotations

import pytest
import yaml

from chalicelib import yamlbounds

PATHS = ("libyaml", "pure")


def select(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "pure":
        monkeypatch.setattr(yamlbounds, "LIBYAML", None)
    else:
        # PyYAML wheels ship libyaml; a build without it would silently test the pure path twice.
        assert yaml.__with_libyaml__ and yamlbounds.LIBYAML is not None, "PyYAML is built without libyaml"
