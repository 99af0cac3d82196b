"""The handlers' suites run again through the queued path (issue 21): ``lambdas`` replaced by one whose
events and schedule go to on_iam_event and reconcile_all with the work queue set, each work item then
worked by reconcile_cluster, and the per-cluster results (or failures) put back together as the
in-process handler returns (or raises) them, so that the same assertions hold."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chalicelib.config.settings import WORK_QUEUE_VARIABLE
from chalicelib.engine.workitems import Message
from chalicelib.errors import PermanentError, SyncError, TransientError
from chalicelib.model.ports import Shell
from chalicelib.run import runner
from chalicelib.run.runtime import Runtime, installed
from tests.functional.conftest import Lambdas
from tests.functional.fakes import CLUSTERS

QUEUE_URL = "https://sqs.us-east-2.amazonaws.com/123456789012/eks-iam-sync-functional-work.fifo"


@dataclass
class MemoryQueue:
    sent: list[Message] = field(default_factory=list)

    def send(self, messages: Any) -> None:
        self.sent += messages


@dataclass
class QueuedLambdas(Lambdas):
    queue: MemoryQueue = field(default_factory=MemoryQueue)
    outcomes: list[dict[str, Any] | SyncError] = field(default_factory=list)

    def send(self, payload: dict[str, Any]) -> dict[str, Any]:
        queued = super().send(payload)
        if queued["status"] != "queued":
            return queued
        return {"status": "reconciled", "eventId": queued["eventId"], "clusters": self._work()}

    def reconcile_all(self) -> dict[str, Any]:
        assert super().reconcile_all()["status"] == "queued"
        return {"status": "reconciled", "clusters": self._work()}

    def _work(self) -> dict[str, Any]:
        """Each item as the work queue's mapping hands it over; a failure is raised as the in-process
        run raises it: after every cluster was tried, transient if any was, naming each cluster."""
        items, self.queue.sent = list(self.queue.sent), []
        self.outcomes = []
        for index, item in enumerate(items):
            event = self.client.events.generate_sqs_event(message_bodies=[item.body], queue_name="work.fifo")
            event["Records"][0]["messageId"] = f"m-{index}"
            self.client.lambda_.invoke("reconcile_cluster", event)
        failures = [o for o in self.outcomes if isinstance(o, SyncError)]
        if failures:
            kinds = {type(f) for f in failures}
            transient = any(isinstance(f, TransientError) for f in failures)
            kind = kinds.pop() if len(kinds) == 1 else TransientError if transient else PermanentError
            raise kind("; ".join(str(f) for f in failures))
        merged: dict[str, Any] = {}
        for outcome in self.outcomes:
            assert isinstance(outcome, dict)
            merged |= outcome
        return merged


@pytest.fixture
def lambdas(
    tmp_path: Path, config_path: Path, runtime: Runtime, use_shell: list[Shell], monkeypatch: pytest.MonkeyPatch
) -> Iterator[QueuedLambdas]:
    from chalice import test as chalice_test  # noqa: PLC0415
    from chalice.test import Client  # noqa: PLC0415

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
    import json  # noqa: PLC0415

    (project / ".chalice" / "config.json").write_text(
        json.dumps({"version": "2.0", "app_name": "eks-iam-sync", "stages": {"functional": stage}})
    )
    monkeypatch.setenv(WORK_QUEUE_VARIABLE, QUEUE_URL)
    with Client(app, stage_name="functional", project_dir=str(project)) as client:
        queued = QueuedLambdas(client, use_shell)
        run_item = runner.run_item

        def recording(*args: Any, **kwargs: Any) -> dict[str, Any]:
            try:
                result = run_item(*args, **kwargs)
            except SyncError as err:
                queued.outcomes.append(err)
                raise
            queued.outcomes.append(result)
            return result

        monkeypatch.setattr(runner, "run_item", recording)
        monkeypatch.setattr(chalice_test, "LambdaContext", queued.context)
        with installed(replace(runtime, work_queue=lambda url: queued.queue)):
            yield queued


@pytest.fixture
def iam_reads_per_run() -> int:
    """Each cluster's work item reads IAM for itself (a worker reconciles one cluster): one event or
    one schedule reads IAM once per cluster instead of once per invocation."""
    return len(CLUSTERS)


def through_the_queue(module: ModuleType) -> dict[str, Any]:
    """A suite's tests that invoke the handlers (those taking ``lambdas``) and everything they use but
    other tests."""
    found: dict[str, Any] = {}
    for name, value in vars(module).items():
        if name.startswith("__") or name in ("lambdas", "iam_reads_per_run"):
            continue
        if name.startswith("test_") and (not callable(value) or "lambdas" not in inspect.signature(value).parameters):
            continue
        found[name] = value
    found["iam_reads_per_run"] = iam_reads_per_run
    return found
