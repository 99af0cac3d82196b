"""The deployable artifact: `chalice package` with the merge template, and every template through cfn-lint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.events import EVENT_PATTERN
from chalicelib.ownership import SERVICE_GROUP

ROOT = Path(__file__).parents[2]
TEMPLATES = ROOT / "infra" / "cloudformation"
BIN = Path(sys.executable).parent


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub, ...) as plain data."""


CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=CfnLoader)
    return data


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("package") / "out"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    merge = str(TEMPLATES / "chalice-merge.yaml")
    subprocess.run(
        [str(BIN / "chalice"), "package", "--stage", "dev", "--merge-template", merge, str(out)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out


def test_chalice_package_merges_roles_dead_letters_retries_and_alarms(packaged: Path) -> None:
    template = load(packaged / "sam.yaml")
    resources = template["Resources"]
    assert {"OnIamEvent", "ReconcileAll", "OnIamEventRole", "ReconcileAllRole"} <= set(resources)
    assert {
        "EventsDeadLetterQueue",
        "OnIamEventInvokeConfig",
        "ReconcileAllInvokeConfig",
        "DeadLettersAlarm",
        "OnIamEventErrorsAlarm",
        "ReconcileAllErrorsAlarm",
        "GuardrailRefusalsAlarm",
        "ReconcileFailuresAlarm",
    } <= set(resources)
    rule = resources["OnIamEvent"]["Properties"]["Events"]["OnIamEventEvent"]["Properties"]
    assert rule["Pattern"] == EVENT_PATTERN  # the merge kept Chalice's pattern
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] == 185 and "DeadLetterConfig" in rule
    assert resources["OnIamEvent"]["Properties"]["Handler"] == "app.on_iam_event"
    assert resources["ReconcileAll"]["Properties"]["Handler"] == "app.reconcile_all"
    assert (packaged / "deployment.zip").stat().st_size > 1_000_000


def test_every_template_passes_cfn_lint(packaged: Path) -> None:
    templates = [packaged / "sam.yaml", TEMPLATES / "event-forwarder.yaml", TEMPLATES / "cluster-bootstrap.yaml"]
    result = subprocess.run([str(BIN / "cfn-lint"), *map(str, templates)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_forwarder_uses_on_iam_event_s_pattern() -> None:
    rule = load(TEMPLATES / "event-forwarder.yaml")["Resources"]["ForwardIamEvents"]["Properties"]
    assert rule["EventPattern"] == EVENT_PATTERN


def test_the_bootstrap_maps_both_roles_to_the_service_group() -> None:
    resources = load(TEMPLATES / "cluster-bootstrap.yaml")["Resources"]
    entries = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EKS::AccessEntry"]
    assert len(entries) == 2 and all(e["KubernetesGroups"] == [SERVICE_GROUP] for e in entries)
