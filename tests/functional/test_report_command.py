"""``eks-iam-sync report`` on the in-memory fakes: the HTML and JSON it writes, what it finds, and that
it is read-only: not one write is attempted on any fake, whatever the clusters hold."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import Config
from chalicelib.entry.accessreport.readonly import WriteRefused, read_only
from chalicelib.entry.cli import main
from chalicelib.run.reconcile import Options, reconcile_cluster
from tests.functional.fakes import (
    GROUP,
    KUBERNETES_GROUP,
    NS3,
    POD_READER,
    PROFILE,
    PROJECTS,
    ROLE,
    TAG_PREFIX,
    FakeCluster,
    FakeShell,
    RecordingObserver,
    user_arn,
)

Run = Callable[..., tuple[int, str, str]]
WRITES = {"update", "create", "put", "delete", "tag"}  # every writing operation of every port


def write_calls(shell: FakeShell) -> dict[str, int]:
    """Calls of writing operations, attempted or not, on every fake of every cluster."""
    counted: dict[str, int] = {}
    for name, cluster in shell.clusters.items():
        fakes: list[Any] = [cluster.config_maps, cluster.bindings, cluster.cluster_roles]
        fakes += [cluster.access_entries] if cluster.access_entries else []
        for fake in fakes:
            for operation in WRITES & set(fake.OPERATIONS):
                counted[f"{name} {type(fake).__name__}.{operation}"] = fake.calls[operation]
    return counted


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], use_shell, monkeypatch: pytest.MonkeyPatch) -> Run:
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def world(run: Run, shell: FakeShell, config_path: Path) -> FakeShell:
    """alice in the seed group, also tagged into NS3 and (refused) kube-system; applied; then bob joins
    (pending), and someone maps mallory by hand into the seed's Kubernetes group on fn-east."""
    iam = shell.iam_port
    iam.add_user("alice", groups=[GROUP], tags={f"{TAG_PREFIX}{NS3}": PROFILE, f"{TAG_PREFIX}kube-system": PROFILE})
    assert run("apply", "--config", str(config_path))[0] == 0
    iam.add_user("bob", groups=[GROUP])
    east = shell.clusters["fn-east"]
    mallory = f"- userarn: {user_arn('mallory')}\n  username: mallory\n  groups: [{KUBERNETES_GROUP}]\n"
    east.config_maps.edit({"mapUsers": east.aws_auth.data["mapUsers"] + mallory})
    return shell


def test_report_writes_one_html_page_and_nothing_anywhere_else(
    run: Run, world: FakeShell, config_path: Path, tmp_path: Path
) -> None:
    before = write_calls(world)
    output = tmp_path / "access.html"
    code, out, _ = run("report", "--config", str(config_path), "--output", str(output))
    assert code == 0, out
    assert write_calls(world) == before, "the report attempted a write"
    assert f"access report (html): {output}" in out
    assert "cluster fn-east: read" in out and "cluster fn-west: read" in out
    assert f"sha256 {hashlib.sha256(config_path.read_bytes()).hexdigest()}" in out
    html = output.read_text()
    assert html.startswith("<!DOCTYPE html>") and hashlib.sha256(config_path.read_bytes()).hexdigest() in html
    data = json.loads(re.findall(r'<script type="application/json" id="matrix-data">(.*?)</script>', html)[0])
    assert {row[0] for row in data["rows"]} == {
        "alice",
        "bob",
        "mallory",
        ROLE,
        "eks-node-group",
    }  # every mapping is a row
    refusals = html[html.index('id="findings-refusal"') : html.index("</details>", html.index('id="findings-refusal"'))]
    assert "denied-namespace" in refusals and user_arn("alice") in refusals


def test_report_json_is_the_model_the_page_shows(run: Run, world: FakeShell, config_path: Path) -> None:
    before = write_calls(world)
    code, out, err = run("report", "--config", str(config_path), "--format", "json", "--output", "-")
    assert code == 0, err
    assert write_calls(world) == before
    report = json.loads(out)  # stdout holds the document alone; the summary went to stderr
    assert "access report (json): stdout" in err
    assert report["configuration"]["sha256"] == hashlib.sha256(config_path.read_bytes()).hexdigest()
    assert [(c["name"], c["status"]) for c in report["clusters"]] == [("fn-east", "read"), ("fn-west", "read")]
    principals = {p["name"]: p for p in report["principals"]}
    assert set(principals) == {"alice", "bob", "mallory", ROLE, "eks-node-group"}  # every mapping is a row

    def access(name: str, cluster: str) -> dict[str, str]:
        return {a["namespace"]: a["status"] for a in principals[name]["access"] if a["cluster"] == cluster}

    assert access("alice", "fn-east") == dict.fromkeys((*PROJECTS, NS3), "active")
    assert access("bob", "fn-west") == dict.fromkeys(PROJECTS, "pending")
    assert access("mallory", "fn-east") == dict.fromkeys(PROJECTS, "active") and access("mallory", "fn-west") == {}
    assert principals["mallory"]["mechanisms"] == ["not managed"] and not principals["mallory"]["inIam"]

    alice = principals["alice"]["access"][0]
    [path] = [p for p in report["paths"] if p["id"] in alice["paths"]]
    assert [step["what"] for step in path["chain"]] == [
        f"IAM group {GROUP}",
        "aws-auth mapUsers entry",
        f"Kubernetes group {KUBERNETES_GROUP}",
        f"{PROJECTS[0]}/eks-iam-sync:group:{KUBERNETES_GROUP}:{POD_READER} (namespaceGrants[0])",
        POD_READER,
        "pods: get, list, watch; pods/log: get",
    ]
    findings = {(f["kind"], f["reason"], f["cluster"], f["principal"]) for f in report["findings"]}
    assert ("refusal", "denied-namespace", "fn-east", user_arn("alice")) in findings
    assert ("cannot-authenticate", "missing", "fn-west", user_arn("bob")) in findings
    assert ("drift", "identity-add", "fn-west", user_arn("bob")) in findings
    assert ("foreign", "not-managed", "fn-east", user_arn("mallory")) in findings
    assert {f["reason"] for f in report["findings"] if f["kind"] == "size"} == {
        "aws-auth-data",
        "aws-auth-annotations",
    }


def test_report_reads_access_entries_and_finds_a_stale_one(
    run: Run, shell: FakeShell, write_config: Callable[..., Path]
) -> None:
    config_path = write_config()
    west: FakeCluster = shell.clusters["fn-west"]
    entries = west.with_access_entries(mode="API")
    shell.iam_port.add_user("alice", groups=[GROUP])
    assert run("apply", "--config", str(config_path))[0] == 0
    shell.iam_port.delete_user("alice")
    shell.iam_port.add_user("alice", groups=[GROUP])  # recreated: a new unique id, the old entry is stale
    before = write_calls(shell)
    code, out, err = run("report", "--config", str(config_path), "--format", "json", "--output", "-")
    assert code == 0, err
    assert write_calls(shell) == before and entries.calls["list_principals"] == 2  # apply's, then the report's
    report = json.loads(out)
    findings = {
        (f["kind"], f["reason"], f["cluster"]) for f in report["findings"] if f["principal"] == user_arn("alice")
    }
    assert ("cannot-authenticate", "stale-entry", "fn-west") in findings
    assert ("drift", "identity-recreate", "fn-west") in findings
    assert ("foreign", "node", "fn-west") in {(f["kind"], f["reason"], f["cluster"]) for f in report["findings"]}
    west_summary = next(c for c in report["clusters"] if c["name"] == "fn-west")
    assert west_summary["authenticationMode"] == "API" and west_summary["backend"] == "accessEntries"
    assert west.config_maps.calls["read"] == 0  # in API mode EKS ignores aws-auth: neither run read it


def test_a_cluster_not_reached_is_in_the_report_and_the_exit_code(
    run: Run, shell: FakeShell, config_path: Path, tmp_path: Path
) -> None:
    shell.iam_port.add_user("alice", groups=[GROUP])
    shell.fail("cluster", "timeout", target="fn-west", always=True)
    output = tmp_path / "access.html"
    code, out, _ = run("report", "--config", str(config_path), "--output", str(output))
    assert code == 1
    assert "! cluster fn-west: FAILED: TransientError: read timed out (fn-west)" in out
    assert "Not read:</strong> TransientError: read timed out (fn-west)" in output.read_text()
    assert write_calls(shell) == dict.fromkeys(write_calls(shell), 0)


def test_a_read_only_port_refuses_a_write_even_from_a_writing_reconcile(
    shell: FakeShell, config: Config, use_shell
) -> None:
    """The second wall: had the report used the writing applier, the write would have been refused."""
    shell.iam_port.add_user("alice", groups=[GROUP])
    cluster = shell.clusters["fn-east"]
    ports = read_only(cluster.ports())
    with pytest.raises(WriteRefused, match="read-only"):
        reconcile_cluster(config, ports.ports, shell.iam_port.full_snapshot(), RecordingObserver(), None, Options())
    assert write_calls(shell) == dict.fromkeys(write_calls(shell), 0)
    # and every read was made once: the reconcile's and the report's reads share them
    ports.ports.bindings.namespaces()
    ports.ports.config_maps.read("kube-system", "aws-auth")
    assert cluster.bindings.calls["namespaces"] == 1 and cluster.config_maps.calls["read"] == 1
