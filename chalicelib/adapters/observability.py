"""Powertools Logger and Metrics, created once. Pure modules never log: they return reports that
the shell passes to ``Observer``."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from chalicelib.config.settings import instance

SERVICE = "eks-iam-sync"
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "EksIamSync")


class _CurrentStdout(io.TextIOBase):
    """Writes to whatever sys.stdout is at the time, so that log lines go where EMF metrics go
    even when stdout is replaced after import (test runners, the chalice local runtime)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


logger = Logger(service=SERVICE, stream=_CurrentStdout())  # type: ignore[arg-type]

# The audit trail: a record of every change the service makes, emitted at INFO whatever the stage's
# POWERTOOLS_LOG_LEVEL says (prod logs at WARNING), so no stage can run without it. Its own logger,
# whose level is set here and nowhere else; its records carry "service": "eks-iam-sync-audit".
AUDIT_SERVICE = f"{SERVICE}-audit"  # not "eks-iam-sync.audit": a child logger would also print through its parent
audit_logger = Logger(service=AUDIT_SERVICE, level="INFO", stream=_CurrentStdout())  # type: ignore[arg-type]
# What the handlers add to the service logger that says which event or item a record belongs to.
_CONTEXT_KEYS = ("correlation_id", "eventName", "actor", "principals", "events", "workItem", "receiveCount")


def metrics_enabled() -> bool:
    """Powertools' own switch; single_metric does not consult it, so it is checked here."""
    return os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() not in ("true", "1")


class LogObserver:
    """The Observer port with Powertools: logs and counts what the shell does. Each metric is
    flushed at once (EMF on stdout), so a count is never lost to a crash and needs no decorator."""

    def __init__(self, cluster: str = "", log: Logger = logger, audit: Logger = audit_logger) -> None:
        self.cluster = cluster
        self.log = log
        self.audit = audit

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        if not metrics_enabled():
            return
        with self._metric(name, value, MetricUnit.Count) as metric:
            for key, dimension in dimensions.items():
                metric.add_dimension(name=key, value=dimension)

    def milliseconds(self, name: str, value: float) -> None:
        if not metrics_enabled():
            return
        with self._metric(name, value, MetricUnit.Milliseconds):
            pass

    def percent(self, name: str, value: float, **dimensions: str) -> None:
        if not metrics_enabled():
            return
        with self._metric(name, value, MetricUnit.Percent) as metric:
            for key, dimension in dimensions.items():
                metric.add_dimension(name=key, value=dimension)

    def info(self, message: str, **fields: Any) -> None:
        self.log.info(message, extra={"cluster": self.cluster, **fields})

    def warning(self, message: str, **fields: Any) -> None:
        self.log.warning(message, extra={"cluster": self.cluster, **fields})

    def error(self, message: str, **fields: Any) -> None:
        self.log.error(message, extra={"cluster": self.cluster, **fields})

    def change(self, message: str, **fields: Any) -> None:
        """A change record (the audit trail): with the event's context, whatever the log level."""
        context = {k: v for k, v in self.log.get_current_keys().items() if k in _CONTEXT_KEYS and v is not None}
        self.audit.info(message, extra={**context, "cluster": self.cluster, **fields})

    @contextmanager
    def _metric(self, name: str, value: float, unit: MetricUnit) -> Iterator[Any]:
        # Every metric carries the install it came from: two installs in one account and region (dev and
        # prod, two teams) never trip each other's alarms, which filter on it.
        dimensions = {"service": SERVICE, "instance": instance(), **({"cluster": self.cluster} if self.cluster else {})}
        with single_metric(
            name=name, unit=unit, value=value, namespace=METRICS_NAMESPACE, default_dimensions=dimensions
        ) as metric:
            yield metric
