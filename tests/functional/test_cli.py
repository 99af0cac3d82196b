"""The operator CLI (``chalicelib.entry.cli.main``) on fakes: plan's exit codes (0 none, 2 changes, 1 error)
and its JSON, apply (and --force), explain, backups, restore, validate (--live too), rbac, and
operator errors: one line on stderr, exit 1, no traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from chalicelib.engine.awsauth.parse import read_aws_auth
from chalicelib.entry.cli import main
from chalicelib.errors import Forbidden
from chalicelib.model.ownership import AWS_AUTH_NAME, BACKUP_NAME_PREFIX, backup_name
from tests.functional.fakes import GROUP, NODE_ROLE, POD_READER, PROJECTS, FakeShell, user_arn

Run = Callable[..., tuple[int, str, str]]
REPORT_KEYS = {"status", "identities", "roleBindings", "roleBindingsDone", "grantRefusals", "skipped", "problems"}


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], use_shell, config_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``eks-iam-sync ARGS`` with $EKS_IAM_SYNC_CONFIG set, as an operator would: (exit code, stdout, stderr)."""
    monkeypatch.setenv("EKS_IAM_SYNC_CONFIG", str(config_path))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def alice(shell: FakeShell) -> str:
    shell.iam_port.add_user("alice", groups=[GROUP])
    return user_arn("alice")


def mapped(shell: FakeShell, cluster: str = "fn-east") -> set[str]:
    reading = read_aws_auth(shell.clusters[cluster].aws_auth.data)
    return {e.arn for key in ("mapRoles", "mapUsers") for e in reading.entries(key)}


def test_plan_exits_2_with_changes_and_writes_nothing(run: Run, shell, alice) -> None:
    code, out, _ = run("plan")
    assert code == 2, out
    assert "cluster fn-east: changes (plan)" in out and "cluster fn-west: changes (plan)" in out
    assert f"+ mapUsers {alice} -> 'eks-iam-sync:user:alice' ['rbac-bttrm-web-ro-group']" in out
    assert f"+ rolebinding {PROJECTS[0]}/eks-iam-sync:group:rbac-bttrm-web-ro-group" in out
    assert shell.writes() == {name: [] for name in shell.clusters}


def test_plan_exits_0_when_there_is_nothing_to_do(run: Run, shell, alice) -> None:
    assert run("apply")[0] == 0
    code, out, _ = run("plan")
    assert code == 0 and out.count("no changes (plan)") == 2


def test_plan_exits_1_when_a_cluster_fails(run: Run, shell, alice) -> None:
    shell.fail("cluster", "timeout", target="fn-west", always=True)
    code, out, _ = run("plan")
    assert code == 1
    assert "cluster fn-west: FAILED: read timed out (fn-west)" in out and "cluster fn-east: changes (plan)" in out


def test_plan_json_is_one_document_with_a_report_per_cluster(run: Run, alice) -> None:
    code, out, _ = run("plan", "--output", "json")
    plan = json.loads(out)  # stdout holds the document alone: logs go to stderr
    assert code == 2 and set(plan) == {"fn-east", "fn-west"}
    east = plan["fn-east"]
    assert set(east) >= REPORT_KEYS and east["status"] == "changes"
    assert east["identities"]["status"] == "planned"
    assert {c["arn"] for c in east["identities"]["changes"]} >= {alice}
    assert [(b["action"], b["namespace"], b["clusterRole"]) for b in east["roleBindings"]] == [
        ("create", ns, POD_READER) for ns in PROJECTS
    ]


def test_apply_writes_every_cluster_and_reports_json(run: Run, shell, alice, config_path: Path) -> None:
    code, out, _ = run("apply", "--output", "json", "--config", str(config_path))
    assert code == 0
    assert {r["identities"]["status"] for r in json.loads(out).values()} == {"written"}
    for name in shell.clusters:
        assert alice in mapped(shell, name) and len(shell.clusters[name].bindings.owned()) == 2


def test_apply_with_one_cluster_named_leaves_the_other(run: Run, shell, alice) -> None:
    code, out, _ = run("apply", "--cluster", "fn-west")
    assert code == 0 and "fn-east" not in out
    assert alice in mapped(shell, "fn-west") and alice not in mapped(shell, "fn-east")


def test_apply_stops_at_the_deletion_breaker_until_forced(run: Run, shell, alice) -> None:
    shell.iam_port.add_user("bob", groups=[GROUP])
    assert run("apply")[0] == 0
    for name in ("alice", "bob"):
        shell.iam_port.remove_from_group(name, GROUP)
    code, out, _ = run("apply")
    assert code == 1 and "! refused (deletion-breaker)" in out and alice in mapped(shell)
    code, out, err = run("apply", "--force")
    assert code == 0 and "--force lifts the deletion breaker" in err
    assert alice not in mapped(shell)


def test_explain_a_mapped_user(run: Run, alice) -> None:
    run("apply")
    code, out, _ = run("explain", "alice", "--cluster", "fn-east")
    assert code == 0, out
    assert "cluster fn-east: mapped through aws-auth" in out
    assert f"  {alice} (aws-auth mapUsers), in place now: yes" in out
    assert f"    because: identities.groups[{GROUP}]" in out
    for namespace in PROJECTS:
        assert f"+ namespace {namespace}: ClusterRole {POD_READER} via group rbac-bttrm-web-ro-group" in out
    assert "can pods: get, list, watch" in out


def test_explain_before_apply_says_not_in_aws_auth_and_names_a_missing_cluster_role(run: Run, shell, alice) -> None:
    del shell.clusters["fn-east"].cluster_roles.roles[POD_READER]
    code, out, _ = run("explain", alice, "--cluster", "fn-east")
    assert code == 0
    assert "in place now: NO" in out and f"(cannot read ClusterRole {POD_READER}: 404" in out


def test_explain_an_unknown_principal_exits_1_with_its_refusals(run: Run, shell) -> None:
    shell.iam_port.add_user("mallory", tags={"eks-access/kube-system": "pods-ro"})
    code, out, _ = run("explain", "nobody-at-all")
    assert code == 1 and "nobody-at-all: no mapping" in out
    code, out, _ = run("explain", "mallory", "--cluster", "fn-east")
    assert code == 1 and "refused (denied-namespace)" in out


def test_backups_lists_each_kept_version(run: Run, shell, alice) -> None:
    code, out, _ = run("backups")
    assert code == 0 and out.count("no backups yet") == 2
    run("apply")
    code, out, _ = run("backups", "--cluster", "fn-east")
    assert code == 0
    [line] = [line for line in out.splitlines() if line.startswith("      1  ")]
    assert "1 entries" in line and "eks-iam-sync apply" in line


def test_backups_with_a_corrupt_slot_lists_the_intact_ones_and_marks_it(run: Run, shell, alice) -> None:
    run("apply")
    shell.iam_port.add_user("bob", groups=[GROUP])
    run("apply")
    east = shell.clusters["fn-east"].config_maps
    east.seed("kube-system", backup_name(2), {"sequence": "2"})
    east.seed("kube-system", f"{BACKUP_NAME_PREFIX}hour-03", {"sequence": "x", "takenAt": "?"})
    code, out, _ = run("backups", "--cluster", "fn-east")
    assert code == 0, out
    assert f"! {backup_name(2)}: CORRUPT: backup ConfigMap {backup_name(2)} cannot be read" in out
    assert f"! {BACKUP_NAME_PREFIX}hour-03: CORRUPT:" in out
    [first] = [line for line in out.splitlines() if line.startswith("      1  ")]  # the ring, the hour, foreign
    assert "(the last version not written by eks-iam-sync)" in first
    assert "FAILED" not in out


def test_backups_exits_1_when_a_cluster_cannot_be_read(run: Run, shell, alice) -> None:
    run("apply")
    shell.fail("cluster", "timeout", target="fn-west", always=True)
    code, out, _ = run("backups")
    assert code == 1 and "cluster fn-west: FAILED" in out
    assert "      1  " in out  # fn-east is still listed


def test_restore_brings_back_a_backup_and_keeps_the_replaced_version(run: Run, shell, alice) -> None:
    east = shell.clusters["fn-east"].config_maps
    original = east.get()
    assert original is not None
    run("apply")
    code, out, _ = run("restore", "1", "--cluster", "fn-east")
    assert code == 0, out
    assert "cluster fn-east: restore of backup 1: written" in out
    assert "the version it replaced is backup 2 (restore it to undo)" in out
    restored = east.get()
    assert restored is not None and restored.data == original.data and mapped(shell) == {NODE_ROLE}
    assert alice in mapped(shell, "fn-west")  # the other cluster is not touched


def test_restore_needs_one_cluster_and_a_kept_backup(run: Run, shell, alice) -> None:
    run("apply")
    code, out, _ = run("restore", "1")
    assert code == 1 and "restore works on one cluster" in out
    code, out, _ = run("restore", "7", "--cluster", "fn-east")
    assert code == 1 and "no backup 7 is kept (kept: 1)" in out
    assert shell.clusters["fn-east"].config_maps.writes[-1] == f"update {AWS_AUTH_NAME}"  # from apply, not restore


def test_validate_a_configuration_file(run: Run, config_path: Path) -> None:
    code, out, _ = run("validate", str(config_path))
    assert code == 0 and out.startswith(f"{config_path}: valid: 2 clusters, 1 IAM group mapping")


def test_validate_reports_every_problem_with_its_line(run: Run, config_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(config_path.read_text().replace("rbac-bttrm-web-ro-group", "system:masters", 1))
    code, _, err = run("validate", str(bad))
    assert code == 1 and f"{bad}:" in err and "kubernetesGroups[0]" in err and "invalid (1 problem)" in err
    code, _, err = run("plan", "--config", str(bad))
    assert code == 1 and "system:masters" in err


def test_validate_live_checks_iam_cluster_roles_and_namespaces(run: Run, shell) -> None:
    code, out, err = run("validate", "--live")
    assert code == 0 and "live checks: ok" in out, err
    shell.iam_port.delete_group(GROUP)
    del shell.clusters["fn-west"].cluster_roles.roles[POD_READER]
    shell.clusters["fn-east"].bindings.delete_namespace(PROJECTS[1])
    code, out, err = run("validate", "--live")
    assert code == 1 and "live checks: 3 problem(s)" in out
    assert f"IAM group '{GROUP}' does not exist" in err
    assert f"cluster fn-west: ClusterRole '{POD_READER}': missing" in err
    assert f"cluster fn-east: namespace '{PROJECTS[1]}' does not exist" in err


def test_rbac_prints_the_least_privilege_manifest(run: Run) -> None:
    code, out, _ = run("rbac")
    assert code == 0
    documents = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out)}
    [bind] = [r for r in documents["ClusterRole", "eks-iam-sync"]["rules"] if "bind" in r["verbs"]]
    assert bind["resourceNames"] == [POD_READER]
    [named] = [r for r in documents["Role", "eks-iam-sync-aws-auth"]["rules"] if "resourceNames" in r]
    names = named["resourceNames"]
    assert names[0] == AWS_AUTH_NAME and {backup_name(slot) for slot in range(10)} <= set(names)
    assert all(n == AWS_AUTH_NAME or n.startswith(BACKUP_NAME_PREFIX) for n in names)  # ConfigMaps by name only


@pytest.mark.parametrize(
    ("operation", "argv"),
    [
        ("iam", ("plan",)),
        ("iam", ("apply", "--output", "json")),
        ("iam", ("explain", "alice")),
        ("own_arn", ("plan",)),
        ("own_arn", ("apply",)),
        ("own_arn", ("restore", "1", "--cluster", "fn-east")),
    ],
)
def test_an_operator_error_is_one_line_on_stderr_and_exit_1(run: Run, shell, alice, operation, argv) -> None:
    shell.fail(operation, Forbidden("no AWS credentials found (set AWS_PROFILE)"), always=True)
    code, out, err = run(*argv)
    assert (code, out) == (1, "")
    assert err == "eks-iam-sync: error: no AWS credentials found (set AWS_PROFILE)\n"
    assert shell.writes() == {name: [] for name in shell.clusters}


def test_validate_live_without_credentials_is_an_operator_error(run: Run, shell) -> None:
    shell.fail("iam", Forbidden("no AWS credentials found"), always=True)
    code, out, err = run("validate", "--live")
    assert code == 1 and ": valid: " in out  # the file itself was checked first
    assert err == "eks-iam-sync: error: no AWS credentials found\n"


def test_a_corrupt_backup_on_restore_is_an_operator_error(run: Run, shell, alice) -> None:
    run("apply")
    shell.clusters["fn-east"].config_maps.seed("kube-system", backup_name(1), {"sequence": "1", "data.json": "{"})
    code, out, err = run("restore", "1", "--cluster", "fn-east")
    assert code == 1 and out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("eks-iam-sync: error: backup ConfigMap eks-iam-sync-aws-auth-backup-1 cannot be read")


@pytest.mark.parametrize("argv", [("plan",), ("apply",), ("backups",), ("explain", "alice"), ("restore", "1")])
def test_a_cluster_name_that_is_not_configured_is_an_error(run: Run, shell, alice, argv) -> None:
    code, out, err = run(*argv, "--cluster", "fn-typo")
    assert (code, out) == (1, "") and "'fn-typo'" in err and "fn-east, fn-west" in err, err
    assert shell.port_calls() == 0


def test_uninstall_dry_run_lists_exactly_what_the_service_owns_and_uninstall_removes_only_that(
    run: Run, shell: FakeShell, alice: str
) -> None:
    shell.iam_port.add_user("bob", groups=[GROUP])
    foreign = mapped(shell, "fn-east")  # the node role and the caller's own mapping: not the service's
    assert run("apply")[0] == 0
    before = {name: mapped(shell, name) for name in shell.clusters}
    owned = before["fn-east"] - foreign
    assert {alice, user_arn("bob")} <= owned and NODE_ROLE in foreign
    writes = shell.writes()
    code, out, _ = run("uninstall", "--dry-run", "--output", "json")
    assert code == 2 and shell.writes() == writes  # a dry run writes nothing
    east = json.loads(out)["fn-east"]
    assert {(c["action"], c["arn"]) for c in east["identities"]["changes"]} == {("remove", arn) for arn in owned}
    assert {(b["action"], b["namespace"]) for b in east["roleBindings"]} == {("delete", ns) for ns in PROJECTS}

    code, out, _ = run("uninstall", "--cluster", "fn-east")
    assert code == 0, out
    assert mapped(shell, "fn-east") == foreign
    assert not shell.clusters["fn-east"].bindings.owned()
    assert alice in mapped(shell, "fn-west")  # not named: untouched
    assert run("uninstall", "--dry-run", "--cluster", "fn-east")[0] == 0  # nothing of its own is left
    assert run("plan")[0] == 2  # the configuration still wants them: a paused-free apply would map them again


def test_uninstall_removes_the_backups_after_the_entries_and_only_the_labelled_ones(
    run: Run, shell: FakeShell, alice: str
) -> None:
    store = shell.clusters["fn-east"].config_maps
    assert run("apply")[0] == 0
    run("apply")  # nothing to write: still the one backup of the first write
    owned_slots = {name for (ns, name) in store.objects if name.startswith(BACKUP_NAME_PREFIX)}
    assert owned_slots, "apply kept no backup to remove"
    # Someone else's ConfigMaps in kube-system: one that merely looks like a backup slot (no label), one not.
    store.seed("kube-system", backup_name(40), {"note": "not the service's"})
    store.seed("kube-system", "coredns", {"Corefile": "."}, labels={"app.kubernetes.io/managed-by": "someone"})
    foreign = {key: store.objects[key] for key in (("kube-system", backup_name(40)), ("kube-system", "coredns"))}

    code, out, _ = run("uninstall", "--dry-run", "--cluster", "fn-east", "--output", "json")
    assert code == 2 and set(json.loads(out)["fn-east"]["backups"]["removed"]) == owned_slots
    code, out, _ = run("uninstall", "--dry-run", "--cluster", "fn-east")
    assert {line.split()[-1] for line in out.splitlines() if "would remove" in line} == owned_slots
    assert {name for (_, name) in store.objects} >= owned_slots  # a dry run deletes nothing

    code, out, _ = run("uninstall", "--cluster", "fn-east")
    assert code == 0, out
    left = {name for (_, name) in store.objects}
    # Every slot the service wrote is gone, the one uninstall's own aws-auth write just took included.
    assert not {n for n in left if n.startswith(BACKUP_NAME_PREFIX)} - {backup_name(40)}
    assert {key: store.objects[key] for key in foreign} == foreign
    assert alice not in mapped(shell, "fn-east") and AWS_AUTH_NAME in left
    deletes = [w for w in store.writes if w.startswith("delete")]
    assert store.writes.index(deletes[0]) > max(i for i, w in enumerate(store.writes) if w == f"update {AWS_AUTH_NAME}")
    assert run("uninstall", "--dry-run", "--cluster", "fn-east")[0] == 0


def test_uninstall_keep_backups_keeps_them_and_a_failed_removal_keeps_them_too(
    run: Run, shell: FakeShell, alice: str
) -> None:
    east, west = shell.clusters["fn-east"].config_maps, shell.clusters["fn-west"].config_maps
    assert run("apply")[0] == 0
    assert run("uninstall", "--cluster", "fn-east", "--keep-backups")[0] == 0
    assert alice not in mapped(shell, "fn-east") and not [w for w in east.writes if w.startswith("delete")]
    assert any(name.startswith(BACKUP_NAME_PREFIX) for (_, name) in east.objects)
    # aws-auth's write refused: its entries stay, so its backups must stay too.
    west.fail("update", Forbidden("403 update configmaps aws-auth"), always=True)
    code, _, _ = run("uninstall", "--cluster", "fn-west")
    assert code == 1 and west.calls["delete"] == 0 and alice in mapped(shell, "fn-west")
    # A delete that fails is reported, and the command fails.
    west.faults.clear()
    west.fail("delete", Forbidden("403 delete configmaps"), always=True)
    code, out, _ = run("uninstall", "--cluster", "fn-west", "--output", "json")
    assert code == 1 and "403 delete configmaps" in json.loads(out)["fn-west"]["backups"]["error"]


def test_a_failure_is_printed_once_not_again_as_a_json_log_line(run: Run, shell, alice) -> None:
    shell.fail("cluster", "timeout", target="fn-west", always=True)
    code, out, err = run("plan")
    assert code == 1 and out.count("read timed out") == 1
    assert "read timed out" not in err and not [line for line in err.splitlines() if line.startswith("{")]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version  # noqa: PLC0415

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"eks-iam-sync {version('eks-iam-sync')}\n"
