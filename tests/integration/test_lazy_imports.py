"""Cold paths in a new interpreter (a child process): what an irrelevant event loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tools.package import SMOKE_IMPORTS

ROOT = Path(__file__).parents[2]


def test_an_irrelevant_event_never_imports_the_kubernetes_client() -> None:
    script = (
        "import json, sys, app\n"
        "from chalicelib.entry.service import handle_iam_event\n"
        "from tests.harness.cloudtrail import iam_event\n"
        "result = handle_iam_event(iam_event('AddUserToGroup', {'groupName': 'other', 'userName': 'x'}))\n"
        "print(json.dumps([result['reason'], sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes')]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "EKS_IAM_SYNC_CONFIG"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["not-configured", []]


def test_the_lambda_paths_never_import_what_the_zip_drops() -> None:
    """tools/package.py drops the CLI, report and deploy code, Jinja2 and Powertools' router from the zip:
    the handlers' module, an event handled and the cluster path import none of them."""
    script = (
        "import importlib, json, sys, app\n"
        "from tests.harness.cloudtrail import iam_event\n"
        "app.on_iam_event(iam_event('AddUserToGroup', {'groupName': 'other', 'userName': 'x'}), None)\n"
        f"[importlib.import_module(m) for m in {SMOKE_IMPORTS!r}]\n"
        "dropped = ('jinja2', 'markupsafe', 'aws_lambda_powertools.event_handler', 'chalicelib.deploy', 'chalicelib.__main__',"
        " 'chalicelib.entry.')\n"
        "kept = ('chalicelib.entry.service',)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(dropped) and m not in kept)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "EKS_IAM_SYNC_CONFIG"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
