"""``eks-iam-sync report --last-used`` on the fakes (issue 23, item 4): IAM's last-used record of each
principal with access, and the dormant ones (no use within ``--dormant-days``) as findings; without
the option IAM's records are not read at all."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.entry.cli import main
from chalicelib.model.ports import LastUsed
from tests.functional.fakes import GROUP, ROLE, FakeShell, role_arn, user_arn


def iso(days_ago: int) -> str:
    moment = datetime.now(UTC) - timedelta(days=days_ago)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@pytest.fixture
def world(shell: FakeShell, config_path: Path, use_shell: Any, capsys: pytest.CaptureFixture[str]) -> FakeShell:
    for name in ("alice", "bob", "carol"):
        shell.iam_port.add_user(name, groups=[GROUP])
    assert main(["apply", "--config", str(config_path)]) == 0
    shell.iam_port.activity = {
        user_arn("alice").lower(): LastUsed(iso(2), "console"),
        user_arn("carol").lower(): LastUsed(iso(45), "access key AKIAEXAMPLE"),
        role_arn(ROLE).lower(): LastUsed(iso(200), "role"),
    }
    capsys.readouterr()
    return shell


def report(capsys: pytest.CaptureFixture[str], config_path: Path, *options: str) -> dict[str, Any]:
    argv = ["report", "--config", str(config_path), "--format", "json", "--output", "-", *options]
    assert main(argv) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def test_last_use_and_dormant_principals(
    world: FakeShell, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = report(capsys, config_path, "--last-used", "--dormant-days", "30")
    principals = {p["name"]: p for p in document["principals"]}
    assert principals["alice"]["lastUsed"]["how"] == "console" and not principals["alice"]["dormant"]
    assert principals["carol"]["dormant"] and principals["carol"]["lastUsed"]["how"] == "access key AKIAEXAMPLE"
    assert principals["bob"]["lastUsed"] == {"at": "never", "how": ""} and principals["bob"]["dormant"]
    assert principals[ROLE]["dormant"]
    assert principals["eks-node-group"]["lastUsed"] is None  # reaches nothing: not asked
    dormant = {f["principal"] for f in document["findings"] if f["kind"] == "dormant"}
    assert dormant == {user_arn("bob"), user_arn("carol"), role_arn(ROLE)}
    assert world.iam_port.calls["last_used"] == 4  # alice, bob, carol, the role: those with access


def test_without_the_option_iam_records_are_not_read(
    world: FakeShell, config_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = report(capsys, config_path)
    assert world.iam_port.calls["last_used"] == 0
    assert all(p["lastUsed"] is None and not p["dormant"] for p in document["principals"])


def test_dormant_days_and_the_csv(
    world: FakeShell, config_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = tmp_path / "access.csv"
    argv = ["report", "--config", str(config_path), "--format", "csv", "--output", str(output)]
    assert main([*argv, "--last-used", "--dormant-days", "60"]) == 0
    rows = list(csv.DictReader(io.StringIO(output.read_text(), newline="")))
    dormant = {r["principal"] for r in rows if r["dormant"] == "yes"}
    assert dormant == {"bob", ROLE}  # carol used AWS 45 days ago: within 60
    alice = world.iam_port.activity[user_arn("alice").lower()].at
    assert {r["last used"] for r in rows if r["principal"] == "alice"} == {f"{alice} console"}


def test_a_record_that_cannot_be_read_is_a_finding(
    world: FakeShell, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.iam_port.fail("last_used", "forbidden", target=user_arn("bob"))
    document = report(capsys, config_path, "--last-used")
    [finding] = [f for f in document["findings"] if f["reason"] == "last-used-unread"]
    assert finding["kind"] == "incomplete" and finding["principal"] == user_arn("bob")
    bob = next(p for p in document["principals"] if p["name"] == "bob")
    assert bob["lastUsed"] is None and not bob["dormant"]
