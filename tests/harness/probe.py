"""A probe: one question asked again and again on a thread while a test changes something, so the
test can say what was seen at every moment ("a member listing pods every 100 ms never saw a 403
while the scope changed")."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException

T = TypeVar("T")


def list_status(api: client.ApiClient, namespace: str, resource: str = "pods") -> int:
    """The apiserver's answer to listing ``resource`` (pods, secrets or configmaps) in ``namespace``
    with this client's identity: 200, or the error's status (401, 403...)."""
    core = client.CoreV1Api(api)
    lister = {
        "pods": core.list_namespaced_pod,
        "secrets": core.list_namespaced_secret,
        "configmaps": core.list_namespaced_config_map,
    }[resource]
    try:
        lister(namespace, _request_timeout=5)
    except ApiException as err:
        return int(err.status)
    return 200


class Probe(Generic[T]):
    """``ask()`` every ``interval`` seconds on a thread, from ``with Probe(...)`` until the block
    ends; ``seen`` holds (monotonic time, answer) in order. An exception from ``ask`` is kept as the
    answer's place in ``errors`` and the probe goes on. Use one identity's client throughout: a token
    minted once (tokens are signed to the second, so a new one every 100 ms cannot be had)."""

    def __init__(self, ask: Callable[[], T], interval: float = 0.1) -> None:
        self.ask = ask
        self.interval = interval
        self.seen: list[tuple[float, T]] = []
        self.errors: list[tuple[float, Exception]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            at = time.monotonic()
            try:
                self.seen.append((at, self.ask()))
            except Exception as err:  # kept for the test to see; the probe goes on
                self.errors.append((at, err))
            self._stop.wait(self.interval)

    def __enter__(self) -> Probe[T]:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(10)

    def answers(self, since: float = 0.0, until: float = float("inf")) -> list[T]:
        return [answer for at, answer in self.seen if since <= at < until]
