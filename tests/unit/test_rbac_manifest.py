"""The service's own RBAC: the shipped manifest is exactly what the seed configuration needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chalicelib.cli import main
from chalicelib.config import DEFAULT_CONFIG_PATH, load_config
from chalicelib.rbac_manifest import render_manifest

SHIPPED = Path(__file__).parents[2] / "infra" / "kubernetes" / "rbac.yaml"


def test_the_shipped_manifest_is_the_rendering_of_the_seed_config() -> None:
    assert SHIPPED.read_text() == render_manifest(load_config(DEFAULT_CONFIG_PATH))


def test_least_privilege() -> None:
    documents = [d for d in yaml.safe_load_all(SHIPPED.read_text()) if d]
    rules = [rule for d in documents if "rules" in d for rule in d["rules"]]
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in rules)
    [bind] = [r for r in rules if "bind" in r["verbs"]]
    assert bind["resourceNames"] == ["rbac-bttrm-pods-ro-cluster-role"]
    assert "escalate" not in {v for r in rules for v in r["verbs"]}
    subjects = [s for d in documents for s in d.get("subjects", [])]
    assert {(s["kind"], s["name"]) for s in subjects} == {("Group", "eks-iam-sync")}
    [configmaps] = [r for r in rules if r["resources"] == ["configmaps"] and "get" in r["verbs"]]
    # aws-auth, the ring of 10 newest versions, and one slot per hour of the day
    assert configmaps["resourceNames"][0] == "aws-auth" and len(configmaps["resourceNames"]) == 1 + 10 + 24
    assert "system:masters" not in SHIPPED.read_text()


def test_rbac_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rbac", str(DEFAULT_CONFIG_PATH)]) == 0
    assert capsys.readouterr().out == SHIPPED.read_text()
