"""Fixtures of the functional suite: the whole pipeline on in-memory fakes (tests/functional/fakes.py),
entered the way production enters it (Chalice handlers, ``runner``, ``reconcile_cluster``, the CLI).

Hermetic: no network, no child processes (tests/isolation.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chalice import test as chalice_test
from chalice.local import LambdaContext
from chalice.test import Client

from chalicelib.adapters.observability import logger
from chalicelib.config import Config, load_config
from chalicelib.entry import service
from chalicelib.model.ports import Shell
from chalicelib.model.principals import PrincipalScope
from chalicelib.run.reconcile import ClusterReport, Options, reconcile_cluster
from chalicelib.run.runtime import Runtime, installed
from tests.functional.fakes import FakeShell, RecordingObserver, config_text, seed_world
from tests.harness.cloudtrail import iam_event, scheduled_event
from tests.isolation import isolated

ROOT = Path(__file__).resolve().parents[2]
# The deployed functions' timeout: runs derive their deadline from the context's remaining time.
LAMBDA_TIMEOUT_MS = json.loads((ROOT / ".chalice" / "config.json").read_text())["lambda_timeout"] * 1000

__all__ = ["isolated"]  # an autouse fixture: pytest finds it in this conftest's namespace


@pytest.fixture(autouse=True)
def quiet_and_fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No EMF metrics or X-Ray outside Lambda, a configuration cache emptied around each test, and
    the service logger's level put back (the CLI lowers it to ERROR for the whole process)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.delenv("EKS_IAM_SYNC_CONFIG", raising=False)
    level = logger.log_level
    service._config.clear()
    yield
    service._config.clear()
    logger.setLevel(level or logging.INFO)


@pytest.fixture
def shell() -> FakeShell:
    return seed_world()


@pytest.fixture
def iam_reads_per_run() -> int:
    """How often one invocation reads IAM: once in process (the queued path reads once per cluster's
    work item, tests/functional/queued_lambdas.py)."""
    return 1


@pytest.fixture(params=["configMap", "accessEntries"])
def backend(request: pytest.FixtureRequest, shell: FakeShell) -> str:
    """Each test that asks for it runs on both identity backends (access entries: API_AND_CONFIG_MAP)."""
    if request.param == "accessEntries":
        for cluster in shell.clusters.values():
            cluster.with_access_entries("API_AND_CONFIG_MAP")
    return str(request.param)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Writes a configuration (the shipped one with the test clusters, keys replaced by keyword)."""

    def write(**overrides: Any) -> Path:
        path = tmp_path / "eks-iam-sync.yaml"
        path.write_text(config_text(**overrides))
        service._config.clear()
        return path

    return write


@pytest.fixture
def config_path(write_config: Callable[..., Path]) -> Path:
    return write_config()


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path)


@pytest.fixture
def sleeps() -> list[float]:
    """The identity backends' backoff (aws-auth conflicts, access-entry propagation), recorded
    instead of slept: the runtime's sleep."""
    return []


@pytest.fixture
def shells_made() -> list[Shell]:
    """Every shell the runtime built, in order."""
    return []


@pytest.fixture
def runtime(shell: FakeShell, sleeps: list[float], shells_made: list[Shell]) -> Runtime:
    """The fake world's runtime: every shell is the fake (recorded), backoff is recorded, not slept."""

    def make() -> Shell:
        shells_made.append(shell)
        return shell

    return Runtime(shell=make, sleep=sleeps.append)


@pytest.fixture
def use_shell(runtime: Runtime, shells_made: list[Shell]) -> Iterator[list[Shell]]:
    """The handlers and the CLI run with the fake runtime; the list grows by one per shell built."""
    with installed(runtime):
        yield shells_made


@dataclass
class Lambdas:
    """app.py's two functions, invoked through chalice.test.Client as on Lambda."""

    client: Client
    shells_made: list[Shell]
    remaining_ms: int = LAMBDA_TIMEOUT_MS  # what the next invocation's context says is left

    def context(self, function_name: str, memory_size: int, **_: Any) -> LambdaContext:
        return LambdaContext(function_name, memory_size, max_runtime_ms=self.remaining_ms)

    def event(self, name: str, **params: Any) -> dict[str, Any]:
        return self.send(iam_event(name, params))

    def send(self, payload: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.client.lambda_.invoke("on_iam_event", payload).payload
        return result

    def reconcile_all(self) -> dict[str, Any]:
        result: dict[str, Any] = self.client.lambda_.invoke("reconcile_all", scheduled_event()).payload
        return result


@pytest.fixture
def lambdas(
    tmp_path: Path, config_path: Path, use_shell: list[Shell], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Lambdas]:
    from app import app  # noqa: PLC0415 - as on Lambda: imported once the environment is set

    project = tmp_path / "project"
    (project / ".chalice").mkdir(parents=True)
    stage = {
        "environment_variables": {
            "EKS_IAM_SYNC_CONFIG": str(config_path),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    }
    (project / ".chalice" / "config.json").write_text(
        json.dumps({"version": "2.0", "app_name": "eks-iam-sync", "stages": {"functional": stage}})
    )
    with Client(app, stage_name="functional", project_dir=str(project)) as client:
        lambdas = Lambdas(client, use_shell)
        # chalice.test gives every invocation a 3 s context whatever lambda_timeout says.
        monkeypatch.setattr(chalice_test, "LambdaContext", lambdas.context)
        yield lambdas


@dataclass
class Reconciler:
    """reconcile_cluster on one fake cluster, as the service's own identity, with an observer to read
    and the backoff recorded in ``sleeps``."""

    shell: FakeShell
    config: Config
    sleeps: list[float]
    observers: list[RecordingObserver] = field(default_factory=list)

    def __call__(
        self,
        cluster: str = "fn-east",
        scope: PrincipalScope | None = None,
        config: Config | None = None,
        **options: Any,
    ) -> ClusterReport:
        iam = self.shell.iam_port
        snapshot = iam.full_snapshot() if scope is None else iam.scoped_snapshot(scope.users, scope.roles)
        observer = RecordingObserver()
        self.observers.append(observer)
        settings = Options(own_arns=frozenset({self.shell.arn}), sleep=self.sleeps.append, **options)
        ports = self.shell.clusters[cluster].ports()
        return reconcile_cluster(config or self.config, ports, snapshot, observer, scope, settings)

    @property
    def observer(self) -> RecordingObserver:
        return self.observers[-1]


@pytest.fixture
def reconciler(shell: FakeShell, config: Config, sleeps: list[float]) -> Reconciler:
    return Reconciler(shell, config, sleeps)
