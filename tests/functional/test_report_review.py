"""The access report's review workflow on the fakes (issue 23, item 3): ``--format csv`` (safe from
formula injection), ``report diff OLD.json NEW.json`` (access added and removed per principal and
namespace, new grants outside eks-iam-sync; exit 0 none, 2 changes, 1 error), and the provenance
block with the model's SHA-256."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.entry.accessreport.csvform import HEADER, safe
from chalicelib.entry.cli import main
from tests.functional.fakes import GROUP, KUBERNETES_GROUP, POD_READER, PROJECTS, FakeShell, user_arn

FORMULA = "=2+5"  # a valid IAM user name, and a spreadsheet formula


@pytest.fixture
def world(shell: FakeShell, config_path: Path, use_shell: Any, capsys: pytest.CaptureFixture[str]) -> FakeShell:
    shell.iam_port.add_user("alice", groups=[GROUP])
    assert main(["apply", "--config", str(config_path)]) == 0
    east = shell.clusters["fn-east"]
    by_hand = f"- userarn: {user_arn(FORMULA)}\n  username: '@cmd'\n  groups: [{KUBERNETES_GROUP}]\n"
    east.config_maps.edit({"mapUsers": east.aws_auth.data["mapUsers"] + by_hand})
    capsys.readouterr()
    return shell


def report(capsys: pytest.CaptureFixture[str], config_path: Path, form: str, output: Path) -> None:
    assert main(["report", "--config", str(config_path), "--format", form, "--output", str(output)]) == 0
    capsys.readouterr()


def diff(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["report", "diff", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_csv_has_a_row_per_path_and_no_cell_a_spreadsheet_would_run(
    world: FakeShell, config_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = tmp_path / "access.csv"
    report(capsys, config_path, "csv", output)
    rows = list(csv.reader(io.StringIO(output.read_text(), newline="")))
    assert tuple(rows[0]) == HEADER
    records = [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]
    alice = [(r["cluster"], r["namespace"], r["ClusterRole"]) for r in records if r["principal"] == "alice"]
    assert sorted(alice) == sorted((c, ns, POD_READER) for c in ("fn-east", "fn-west") for ns in PROJECTS)
    hostile = [r for r in records if r["arn"] == user_arn(FORMULA)]
    assert hostile and all(r["principal"] == "'" + FORMULA for r in hostile)
    assert all(r["granted outside eks-iam-sync"] == "yes" for r in hostile)
    dangerous = ("=", "+", "-", "@", "\t", "\r")
    assert not [cell for row in rows for cell in row if cell.startswith(dangerous)]


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_that_would_be_a_formula_is_text(text: str) -> None:
    assert safe(text) == "'" + text and safe("alice") == "alice" and safe("a=b") == "a=b"


def test_diff_of_two_reports_names_access_added_and_removed_and_new_grants_outside(
    world: FakeShell, config_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    report(capsys, config_path, "json", old)
    assert diff(capsys, str(old), str(old))[0] == 0  # the same report: no change, exit 0

    world.iam_port.add_user("bob", groups=[GROUP])
    world.iam_port.remove_from_group("alice", GROUP)
    assert main(["apply", "--config", str(config_path)]) == 0
    east = world.clusters["fn-east"]
    assert east.rbac is not None
    east.rbac.bind_cluster_wide("platform-admins", "cluster-admin", (("Group", KUBERNETES_GROUP),))
    capsys.readouterr()
    report(capsys, config_path, "json", new)

    code, out, _ = diff(capsys, str(old), str(new))
    assert code == 2
    lines = out.splitlines()
    for cluster in ("fn-east", "fn-west"):
        for namespace in PROJECTS:
            assert f"  + {cluster}/{namespace} {user_arn('bob')}: {POD_READER}" in lines
            assert f"  - {cluster}/{namespace} {user_arn('alice')}: {POD_READER}" in lines
    assert f"  + fn-east/default {user_arn('bob')}: cluster-admin" in lines
    outside = [line for line in lines if line.startswith("  ! new grant outside eks-iam-sync: ")]
    assert outside and all("ClusterRoleBinding platform-admins -> cluster-admin" in line for line in outside)

    code, out, _ = diff(capsys, "--format", "json", str(old), str(new))
    document = json.loads(out)
    assert (
        code == 2
        and document["changed"]
        and document["newGrantsOutside"]
        == [line.removeprefix("  ! new grant outside eks-iam-sync: ") for line in outside]
    )


def test_diff_refuses_what_is_not_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html, broken, other = tmp_path / "a.html", tmp_path / "b.json", tmp_path / "c.json"
    html.write_text("<!DOCTYPE html>")
    broken.write_text("{")
    other.write_text(json.dumps({"schema": "something/else"}))
    for first, second in ((html, other), (other, other), (broken, other), (tmp_path / "missing.json", other)):
        code, out, err = diff(capsys, str(first), str(second))
        assert code == 1 and out == "" and "eks-iam-sync report diff: error:" in err
    with pytest.raises(SystemExit):  # argparse: both reports are needed
        diff(capsys, str(other))


def test_provenance_names_the_state_read_and_the_model_digest_checks_out(
    world: FakeShell, config_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first, second, page = tmp_path / "1.json", tmp_path / "2.json", tmp_path / "access.html"
    report(capsys, config_path, "json", first)
    document = json.loads(first.read_text())
    provenance = document["provenance"]
    assert provenance["accounts"] == ["123456789012"] and provenance["iamReadAt"].endswith("Z")
    east = provenance["clusters"]["fn-east"]
    assert east["aws-auth resourceVersion"] == world.clusters["fn-east"].aws_auth.resource_version
    assert east["rolebindings resourceVersion"] == str(world.clusters["fn-east"].bindings.version)
    assert len(east["RoleBindings sha256"]) == 64 and len(east["ClusterRoleBindings sha256"]) == 64
    # the model's digest: SHA-256 of the canonical JSON of everything else
    rest = {k: v for k, v in document.items() if k != "modelSha256"}
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert document["modelSha256"] == hashlib.sha256(canonical.encode()).hexdigest()

    world.iam_port.tag_user("alice", {"team": "web"})  # IAM changed; nothing the matrix shows
    world.clusters["fn-east"].rbac.bind_cluster_wide("nobody", "cluster-admin", (("Group", "nobody"),))  # type: ignore[union-attr]
    report(capsys, config_path, "json", second)
    again = json.loads(second.read_text())
    assert again["provenance"]["iamSha256"] != provenance["iamSha256"]
    changed = again["provenance"]["clusters"]["fn-east"]
    assert changed["ClusterRoleBindings sha256"] != east["ClusterRoleBindings sha256"]
    assert changed["RoleBindings sha256"] == east["RoleBindings sha256"]

    report(capsys, config_path, "html", page)
    html = page.read_text()
    assert 'id="provenance"' in html and provenance["iamSha256"] not in html  # the page is of the later read
    assert again["provenance"]["iamSha256"] in html and east["aws-auth resourceVersion"] in html


def test_the_page_given_the_previous_report_marks_what_is_new(
    world: FakeShell, config_path: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old, page = tmp_path / "old.json", tmp_path / "access.html"
    report(capsys, config_path, "json", old)
    world.iam_port.add_user("bob", groups=[GROUP])
    assert main(["apply", "--config", str(config_path)]) == 0
    capsys.readouterr()
    argv = ["report", "--config", str(config_path), "--output", str(page), "--previous", str(old)]
    assert main(argv) == 0
    html = page.read_text()
    assert 'id="since"' in html
    for cluster in ("fn-east", "fn-west"):
        for namespace in PROJECTS:
            assert f"+ {cluster}/{namespace} <code>{user_arn('bob')}</code>: {POD_READER}" in html
    not_a_report = tmp_path / "nope.json"
    not_a_report.write_text("[]")
    capsys.readouterr()
    calls = world.iam_port.calls["full_snapshot"]
    assert main([*argv[:-1], str(not_a_report)]) == 1
    assert "--previous: not a readable access report: not an access report" in capsys.readouterr().err
    assert world.iam_port.calls["full_snapshot"] == calls  # refused before anything was read
