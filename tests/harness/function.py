"""The Lambda functions as deployed: app.py through chalice.test.Client, on the function role's
own (emulated) credentials, reaching the real apiserver with its own EKS token."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from chalice import local as chalice_local
from chalice import test as chalice_test
from chalice.test import Client

from chalicelib.config import DEFAULT_CONFIG_PATH
from chalicelib.entry import service as service_module
from tests.harness.cloudtrail import scheduled_event
from tests.harness.kube import ControlPlane
from tests.harness.principals import credentials_env
from tests.harness.service import Service


def cluster_config(plane: ControlPlane, base: str | None = None) -> str:
    """The seed configuration, its cluster reached at the test apiserver (no DescribeCluster)."""
    text = base or DEFAULT_CONFIG_PATH.read_text()
    return text.replace(
        "    region: us-east-2\n",
        f"    region: us-east-2\n    endpoint: {plane.endpoint}\n    certificateAuthorityData: {plane.ca_data}\n",
        1,
    )


LAMBDA_TIMEOUT_MS = 120_000


@dataclass
class Function:
    client: Client

    def invoke(self, name: str, payload: dict[str, Any] | None = None) -> Any:
        return self.client.lambda_.invoke(name, payload or scheduled_event()).payload


@contextmanager
def deployed(service: Service, config_text: str, workdir: Path) -> Iterator[Function]:
    from app import app  # noqa: PLC0415 - imported once the environment is set, as on Lambda

    config_file = workdir / "eks-iam-sync.yaml"
    config_file.write_text(config_text)
    project = workdir / "project"
    (project / ".chalice").mkdir(parents=True, exist_ok=True)
    stage = {
        "environment_variables": {
            "EKS_IAM_SYNC_CONFIG": str(config_file),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "EksIamSync",
        }
    }
    (project / ".chalice" / "config.json").write_text(
        json.dumps({"version": "2.0", "app_name": "eks-iam-sync", "stages": {"local": stage}})
    )
    function_env = credentials_env(service.principal)
    saved = {k: os.environ.get(k) for k in function_env}
    os.environ.update(function_env)
    service_module._config.clear()
    # chalice.test gives every invocation a 3 s context whatever lambda_timeout says; runs derive their
    # deadline from it, so the harness gives them the event function's deployed 120 s.
    deployed_timeout = functools.partial(chalice_local.LambdaContext, max_runtime_ms=LAMBDA_TIMEOUT_MS)
    try:
        with (
            mock.patch.object(chalice_test, "LambdaContext", deployed_timeout),
            Client(app, stage_name="local", project_dir=str(project)) as client,
        ):
            yield Function(client)
    finally:
        service_module._config.clear()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
