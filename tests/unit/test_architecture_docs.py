"""DESIGN.md draws the layers; .importlinter enforces them. The drawing is checked against the contracts."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def contracts() -> dict[str, list[str]]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    layered = {}
    for section in parser.sections():
        if section.startswith("importlinter:contract:") and parser[section].get("type") == "layers":
            lines = [line.strip() for line in parser[section]["layers"].strip().splitlines()]
            layered[section.removeprefix("importlinter:contract:")] = lines
    return layered


def drawn() -> dict[str, list[str]]:
    text = (ROOT / "DESIGN.md").read_text()
    blocks = re.findall(r"<!-- contract: ([\w-]+) -->\s*```\n(.*?)```", text, flags=re.S)
    return {name: [line.strip() for line in body.strip().splitlines()] for name, body in blocks}


def test_every_layers_contract_is_drawn_in_design_md_as_enforced() -> None:
    assert drawn() == contracts()


@pytest.mark.parametrize("name", sorted(contracts()))
def test_each_layer_names_a_module_that_exists(name: str) -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    container = parser[f"importlinter:contract:{name}"].get("containers", "").strip()
    for line in contracts()[name]:
        for module in (part.strip() for part in line.split("|")):
            dotted = f"{container}.{module}" if container else module
            path = ROOT / dotted.replace(".", "/")
            assert path.is_dir() or path.with_suffix(".py").is_file(), dotted


def test_ls_chalicelib_is_the_layer_diagram() -> None:
    packages = {p.name for p in (ROOT / "chalicelib").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    layered = {part.strip().removeprefix("chalicelib.") for line in contracts()["layers"] for part in line.split("|")}
    loose = {p.stem for p in (ROOT / "chalicelib").glob("*.py")} - {"__init__", "__main__"}
    assert packages - {"adapters"} == layered - {"errors"}
    assert loose == {"errors"}
