"""The one place that reads the process environment."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from chalicelib.config import DEFAULT_CONFIG_PATH

CONFIG_PATH_VARIABLE = "EKS_IAM_SYNC_CONFIG"


PROJECT_ROOT = Path(__file__).resolve().parents[2]  # /var/task in Lambda


def config_source() -> str:
    """The configuration: $EKS_IAM_SYNC_CONFIG — a file, ``ssm:/parameter/name`` or
    ``s3://bucket/key`` — else the seed example shipped in chalicelib/.

    A relative file path is taken from the project root, so `chalicelib/my-config.yaml` means the same
    file locally and inside the deployed package.
    """
    return resolve_source(os.environ.get(CONFIG_PATH_VARIABLE, ""))


def is_remote(source: str) -> bool:
    """An SSM parameter or an S3 object rather than a file."""
    return source.startswith(("ssm:", "s3://"))


def resolve_source(source: str, root: Path = PROJECT_ROOT) -> str:
    """A configuration source as a file path from ``root``, or the remote source as written; the
    shipped example when unset."""
    if not source:
        return str(DEFAULT_CONFIG_PATH)
    if is_remote(source):
        return source
    path = Path(source)
    return str(path if path.is_absolute() else root / path)


SCHEDULE_VARIABLE = "EKS_IAM_SYNC_SCHEDULE_MINUTES"


def schedule_minutes() -> int:
    """Minutes between full reconciles (read when the app is packaged; default 15)."""
    value = os.environ.get(SCHEDULE_VARIABLE, "15")
    minutes = int(value) if value.isdigit() else 0
    if not 1 <= minutes <= 1440:
        raise ValueError(f"{SCHEDULE_VARIABLE} must be a whole number of minutes from 1 to 1440, not {value!r}")
    return minutes


CONNECT_TIMEOUT_VARIABLE = "EKS_IAM_SYNC_CONNECT_TIMEOUT_SECONDS"
READ_TIMEOUT_VARIABLE = "EKS_IAM_SYNC_READ_TIMEOUT_SECONDS"


@dataclass(frozen=True)
class Timeouts:
    """Bounds on every Kubernetes and AWS request: a cluster that accepts connections and never
    answers costs at most ``read`` seconds per request, never the whole invocation."""

    connect: float = 5.0
    read: float = 20.0

    @property
    def request(self) -> float:
        """One request attempt's total bound, however its answer arrives: ``read`` is per socket
        read, so an endpoint trickling a byte at a time would defeat it without this."""
        return self.connect + self.read

    @property
    def budget(self) -> float:
        """One cluster's budget: the time left below which a cluster is not started."""
        return self.connect + 2 * self.read

    @property
    def attempts(self) -> int:
        """botocore attempts per call: an attempt that times out costs up to ``connect`` (nobody
        answers) or ``read`` (connection accepted, no answer), and that many fit one cluster's
        budget. The retries matter for throttling and 5xx, which answer fast; after a call failed in
        transport its cluster sends nothing more (chalicelib.model.deadlines)."""
        return max(1, int(self.budget // max(self.connect, self.read)))


def timeouts() -> Timeouts:
    return Timeouts(_seconds(CONNECT_TIMEOUT_VARIABLE, 5.0), _seconds(READ_TIMEOUT_VARIABLE, 20.0))


def _seconds(variable: str, default: float) -> float:
    value = os.environ.get(variable, "")
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 300:
        raise ValueError(f"{variable} must be a number of seconds above 0 and at most 300, not {value!r}")
    return seconds


WORK_QUEUE_VARIABLE = "EKS_IAM_SYNC_WORK_QUEUE_URL"


def work_queue_url() -> str | None:
    """The per-cluster work queue (the template sets it): when set, the event and schedule functions
    hand one work item per cluster to the workers instead of reconciling themselves."""
    return os.environ.get(WORK_QUEUE_VARIABLE) or None


INSTANCE_VARIABLE = "EKS_IAM_SYNC_INSTANCE"
DEFAULT_INSTANCE = "default"
# One install of the service: a metric dimension, part of the stack's resource names and the marker on
# every object it owns in a cluster. A DNS label of at most 20 characters: it goes into label values,
# IAM role names (with the region: 64 characters in all) and queue names.
INSTANCE_PATTERN = r"[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?"


def instance() -> str:
    """This install's name: $EKS_IAM_SYNC_INSTANCE, which the stack sets from its ``Instance``
    parameter (the packaged stage unless given); ``default`` where nothing sets it (the CLI, local runs)."""
    value = os.environ.get(INSTANCE_VARIABLE, "") or DEFAULT_INSTANCE
    if not re.fullmatch(INSTANCE_PATTERN, value):
        raise ValueError(
            f"{INSTANCE_VARIABLE} must be 1-20 lower-case letters, digits and '-', starting and ending with a "
            f"letter or digit (a DNS label), not {value!r}"
        )
    return value
