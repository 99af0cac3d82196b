"""The operator CLI's results as data: ``--output json`` of every command is one JSON document on stdout
(parsed here) with the text's exit code; ``migrate --dry-run`` and ``restore --dry-run`` go through the
display-only applier, so not one write is attempted on any fake, whatever the plan holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.entry.cli import main
from tests.functional.fakes import GROUP, NODE_ROLE, POD_READER, PROJECTS, ROLE, FakeShell, role_arn, user_arn

Run = Callable[..., tuple[int, str, str]]
WRITES = {"update", "create", "put", "delete", "tag"}  # every writing operation of every store


def write_calls(shell: FakeShell) -> int:
    """Calls of writing operations, attempted or not, on every fake of every cluster."""
    total = 0
    for cluster in shell.clusters.values():
        fakes: list[Any] = [cluster.config_maps, cluster.bindings]
        fakes += [cluster.access_entries] if cluster.access_entries else []
        total += sum(fake.calls[operation] for fake in fakes for operation in WRITES & set(fake.OPERATIONS))
    return total


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], use_shell, config_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", str(config_path))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def as_json(run: Run, *argv: str) -> tuple[int, Any]:
    code, out, _ = run(*argv, "--output", "json")
    return code, json.loads(out)  # stdout holds the document alone


@pytest.fixture
def alice(shell: FakeShell) -> str:
    shell.iam_port.add_user("alice", groups=[GROUP])
    return user_arn("alice")


def mapped(shell: FakeShell, cluster: str = "fn-east") -> set[str]:
    reading = read_aws_auth(shell.clusters[cluster].aws_auth.data)
    return {e.arn for key in ("mapRoles", "mapUsers") for e in reading.entries(key)}


def test_validate_json(run: Run, config_path: Path, tmp_path: Path) -> None:
    code, found = as_json(run, "validate", str(config_path))
    assert code == 0 and found["valid"] and found["ok"] and found["problems"] == []
    assert found["summary"].startswith("2 clusters") and found["live"] is None and found["deploy"] is None
    bad = tmp_path / "bad.yaml"
    bad.write_text(config_path.read_text().replace("rbac-bttrm-web-ro-group", "system:masters", 1))
    code, found = as_json(run, "validate", str(bad))
    assert code == 1 and not found["valid"] and not found["ok"]
    [problem] = found["problems"]
    assert problem["path"].endswith("kubernetesGroups[0]") and isinstance(problem["line"], int)


def test_validate_live_json(run: Run, shell: FakeShell) -> None:
    code, found = as_json(run, "validate", "--live")
    assert code == 0 and found["live"] == {"problems": [], "notes": [], "error": None}
    shell.iam_port.delete_group(GROUP)
    code, found = as_json(run, "validate", "--live")
    assert code == 1 and found["valid"] and not found["ok"]
    assert found["live"]["problems"] == [f"IAM group '{GROUP}' does not exist"]


def test_rbac_json_is_one_kubectl_list(run: Run) -> None:
    code, found = as_json(run, "rbac")
    assert code == 0 and found["kind"] == "List"
    kinds = [
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ClusterRole",
    ]  # the last: AdminView's equivalent
    assert [d["kind"] for d in found["items"]] == kinds


def test_explain_json(run: Run, shell: FakeShell, alice: str) -> None:
    code, found = as_json(run, "explain", "alice")
    assert code == 0 and found["found"] and set(found["clusters"]) == {"fn-east", "fn-west"}
    [mapping] = found["clusters"]["fn-east"]["mappings"]
    assert (mapping["arn"], mapping["where"], mapping["inPlace"], mapping["current"]) == (
        alice,
        "aws-auth mapUsers",
        False,
        None,
    )
    assert mapping["because"] == f"identities.groups[{GROUP}]"
    assert [(g["namespace"], g["clusterRole"]) for g in mapping["grants"]] == [(ns, POD_READER) for ns in PROJECTS]
    assert run("apply")[0] == 0
    code, found = as_json(run, "explain", alice, "--cluster", "fn-east")
    [mapping] = found["clusters"]["fn-east"]["mappings"]
    assert code == 0 and mapping["inPlace"] and mapping["current"] == mapping["desired"]
    code, found = as_json(run, "explain", "nobody")
    assert code == 1 and not found["found"] and found["clusters"]["fn-east"]["mappings"] == []


def test_explain_on_access_entries_asks_the_backend_and_sees_the_aws_auth_mapping_it_shadows(
    run: Run, shell: FakeShell, alice: str
) -> None:
    east = shell.clusters["fn-east"]
    assert run("apply", "--cluster", "fn-east")[0] == 0  # aws-auth maps alice
    east.with_access_entries("API_AND_CONFIG_MAP")
    code, out, _ = run("explain", "alice", "--cluster", "fn-east")
    assert code == 0 and "mapped through access entries (authentication mode API_AND_CONFIG_MAP)" in out
    assert "in place now: NO" in out and "no access entry yet: EKS maps it through its aws-auth entry" in out
    assert run("apply", "--cluster", "fn-east")[0] == 0  # now an access entry too
    code, found = as_json(run, "explain", "alice", "--cluster", "fn-east")
    [mapping] = found["clusters"]["fn-east"]["mappings"]
    assert mapping["where"] == "access entry" and mapping["inPlace"]
    assert mapping["alsoInAwsAuth"]["arn"] == alice
    code, out, _ = run("explain", "alice", "--cluster", "fn-east")
    assert "EKS uses the access entry and ignores that mapping" in out


def test_backups_json(run: Run, shell: FakeShell, alice: str) -> None:
    code, found = as_json(run, "backups")
    assert code == 0 and found == {name: {"status": "read", "backups": [], "unusable": []} for name in shell.clusters}
    run("apply")
    shell.fail("cluster", "timeout", target="fn-west", always=True)
    code, found = as_json(run, "backups")
    assert code == 1 and found["fn-west"]["status"] == "failed" and found["fn-west"]["errorKind"] == "transient"
    [backup] = found["fn-east"]["backups"]
    assert (backup["sequence"], backup["entries"], backup["reason"]) == (1, 1, "eks-iam-sync apply")


def test_restore_json(run: Run, shell: FakeShell, alice: str) -> None:
    run("apply")
    code, found = as_json(run, "restore", "1", "--cluster", "fn-east")
    assert code == 0 and found["ok"] and not found["dryRun"]
    assert found["awsAuth"]["status"] == "written" and found["awsAuth"]["backup"] == 2
    changes = found["awsAuth"]["changes"]
    assert {(c["action"], c["arn"]) for c in changes} == {("remove", alice), ("remove", role_arn(ROLE))}
    code, found = as_json(run, "restore", "9", "--cluster", "fn-east")
    assert code == 1 and found["status"] == "declined" and "no backup 9 is kept" in found["error"]
    code, found = as_json(run, "restore", "1")
    assert code == 1 and found["error"] == "restore works on one cluster: name it with --cluster"


def test_restore_dry_run_shows_the_change_and_attempts_no_write(run: Run, shell: FakeShell, alice: str) -> None:
    run("apply")
    before, document = write_calls(shell), shell.clusters["fn-east"].aws_auth.data
    code, out, _ = run("restore", "1", "--cluster", "fn-east", "--dry-run")
    assert code == 0, out
    assert "cluster fn-east: restore of backup 1 (dry run): planned" in out and f"- mapUsers {alice}" in out
    assert "the version it replaced" not in out
    assert write_calls(shell) == before and shell.clusters["fn-east"].aws_auth.data == document
    code, found = as_json(run, "restore", "1", "--cluster", "fn-east", "--dry-run")
    assert code == 0 and found["dryRun"] and found["awsAuth"]["status"] == "planned"
    assert write_calls(shell) == before


@pytest.fixture
def migrating(run: Run, shell: FakeShell, alice: str) -> FakeShell:
    """fn-east mapped alice and the configured role in aws-auth, then switched to API_AND_CONFIG_MAP."""
    assert run("apply", "--cluster", "fn-east")[0] == 0
    shell.clusters["fn-east"].with_access_entries("API_AND_CONFIG_MAP")
    return shell


def test_migrate_dry_run_plans_both_steps_and_attempts_no_write(run: Run, migrating: FakeShell, alice: str) -> None:
    east = migrating.clusters["fn-east"]
    before, document = write_calls(migrating), east.aws_auth.data
    code, out, _ = run("migrate", "--cluster", "fn-east", "--dry-run")
    assert code == 0, out
    assert "cluster fn-east: migrate aws-auth -> access entries (dry run)" in out
    assert "access entries: planned" in out and f"+ accessEntry {alice}" in out
    assert "aws-auth: planned" in out and f"- mapUsers {alice}" in out
    code, found = as_json(run, "migrate", "--cluster", "fn-east", "--dry-run")
    assert code == 0 and found["dryRun"] and found["ok"] and found["keptInAwsAuth"] == []
    assert {c["arn"] for c in found["accessEntries"]["changes"]} == {alice, role_arn(ROLE)}
    assert write_calls(migrating) == before and east.aws_auth.data == document
    assert east.access_entries is not None and east.access_entries.list_principals() == [NODE_ROLE]


def test_migrate_moves_the_owned_entries_and_reports_json(run: Run, migrating: FakeShell, alice: str) -> None:
    code, found = as_json(run, "migrate", "--cluster", "fn-east")
    assert code == 0 and found["ok"] and not found["dryRun"]
    assert found["accessEntries"]["status"] == "written" and found["awsAuth"]["status"] == "written"
    assert mapped(migrating) == {NODE_ROLE}  # only the foreign (node) mapping stays
    entries = migrating.clusters["fn-east"].access_entries
    assert entries is not None and alice in entries.list_principals()
    code, found = as_json(run, "migrate", "--cluster", "fn-east")
    assert code == 0 and (found["accessEntries"]["status"], found["awsAuth"]["status"]) == ("unchanged", "unchanged")


def test_migrate_json_when_declined(run: Run, shell: FakeShell) -> None:
    code, found = as_json(run, "migrate", "--cluster", "fn-east")
    assert code == 1 and found["status"] == "declined" and "authentication mode" in found["error"]


def test_report_diff_output_json(run: Run, shell: FakeShell, alice: str, tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    assert run("report", "--format", "json", "--output", str(old))[0] == 0
    run("apply")
    assert run("report", "--format", "json", "--output", str(new))[0] == 0
    code, found = as_json(run, "report", "diff", str(old), str(new))
    assert code == 2 and found
    code, out, _ = run("report", "diff", str(old), str(new), "--format", "json")
    assert code == 2 and json.loads(out) == found  # --format is the same option


@pytest.mark.parametrize(
    "argv",
    [
        ("validate",),
        ("rbac",),
        ("plan",),
        ("apply",),
        ("explain", "alice"),
        ("backups",),
        ("restore", "1", "--cluster", "fn-east", "--dry-run"),
        ("migrate", "--cluster", "fn-east", "--dry-run"),
    ],
)
def test_every_command_takes_output_json_with_the_text_s_exit_code(run: Run, shell: FakeShell, alice, argv) -> None:
    assert run("apply", "--cluster", "fn-east")[0] == 0  # a backup to restore
    text_code = run(*argv)[0]
    code, out, _ = run(*argv, "--output", "json")
    assert code == text_code
    json.loads(out)
