"""What a run needs from the world besides its configuration: resolved once by an entry point (the
Lambda's service layer, the CLI) and passed down, so that nothing below reaches for a global.
AWS's unless the host process installed another (``installed``: the functional tests' fakes).

Cheap to import (the handlers import it): the SDKs are loaded only when a factory is called.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from chalicelib.adapters.observability import LogObserver
from chalicelib.engine.workitems import WorkQueue
from chalicelib.model.ports import Observer, Shell


def aws_shell() -> Shell:
    from chalicelib.adapters.shell import AwsShell  # noqa: PLC0415 - boto3 sessions only when a run needs them

    return AwsShell()


def sqs_work_queue(url: str) -> WorkQueue:
    from chalicelib.adapters.queue import SqsWorkQueue  # noqa: PLC0415 - boto3 only when items are sent

    return SqsWorkQueue(url)


@dataclass(frozen=True)
class Runtime:
    """``shell`` builds the ports of one run (AWS; a kubeconfig's context; the functional tests'
    fakes); ``observer(cluster)`` logs and counts for that cluster ("": the invocation); ``clock``
    is the monotonic clock deadlines are measured on (``time.monotonic`` wherever a deadline comes
    from Lambda: ``chalicelib.model.deadlines`` bounds requests with it); ``sleep`` waits out the
    identity backends' backoff; ``work_queue(url)`` is where the queued path sends work items."""

    shell: Callable[[], Shell] = aws_shell
    observer: Callable[[str], Observer] = LogObserver
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    work_queue: Callable[[str], WorkQueue] = sqs_work_queue


_installed: list[Runtime] = []


def current_runtime() -> Runtime:
    """What the entry points run with: the runtime installed last, else AWS's."""
    return _installed[-1] if _installed else Runtime()


@contextmanager
def installed(runtime: Runtime) -> Iterator[Runtime]:
    """The entry points (the handlers, the CLI) run with ``runtime`` inside this block: how a host
    other than Lambda or a terminal (the functional tests, with in-memory fakes) gives them their
    effects. Blocks nest; the innermost wins."""
    _installed.append(runtime)
    try:
        yield runtime
    finally:
        _installed.remove(runtime)
