"""The size gate ``make lint`` runs (tools/module_size.py): it names each module over the limit and fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.module_size import LIMIT, main, oversized


def write(path: Path, lines: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x = 1\n" * lines)


def test_a_module_over_the_limit_is_named_and_fails_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "ok.py", LIMIT)
    write(tmp_path / "pkg" / "big.py", LIMIT + 1)
    write(tmp_path / "notes.txt", LIMIT * 3)  # only Python modules count
    assert oversized(tmp_path) == [(tmp_path / "pkg" / "big.py", LIMIT + 1)]
    assert main([str(tmp_path)]) == 1
    assert f"big.py: {LIMIT + 1} lines, over {LIMIT}" in capsys.readouterr().err


def test_modules_at_the_limit_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "a.py", LIMIT)
    assert main([str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""
    assert main([str(tmp_path), "--limit", str(LIMIT - 1)]) == 1


def test_chalicelib_holds_no_module_over_the_limit() -> None:
    assert oversized(Path(__file__).resolve().parents[2] / "chalicelib") == []
