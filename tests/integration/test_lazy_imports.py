"""Cold paths in a new interpreter (a child process): what an irrelevant event loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
