"""Every request the service makes, Kubernetes or AWS, is bounded three ways:

- its attempts: botocore's configuration is built here only (standard retries, as many attempts as
  fit one cluster's budget, the service's connect and read timeouts);
- its scope (``chalicelib.model.deadlines``): no request is sent after a transport failure in the same
  cluster, or when one request's bound no longer fits before the invocation's deadline;
- its total time: urllib3's timeouts (and its ``Timeout(total=...)``) apply per socket read, so an
  endpoint trickling a byte every few seconds keeps a request open for ever. A watchdog thread shuts
  down the socket of any request still open past ``connect + read`` seconds (or the deadline), and
  the read in progress fails at once like any dropped connection.

Both SDKs reach the network through urllib3 connection pools; the watchdog is installed by giving
their pool managers pool classes whose connections arm it at every request and disarm it when
they go back to the pool.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from typing import Any

import boto3
from botocore.awsrequest import AWSHTTPConnection, AWSHTTPConnectionPool, AWSHTTPSConnection, AWSHTTPSConnectionPool
from botocore.config import Config as BotoConfig
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection

from chalicelib.config.settings import timeouts
from chalicelib.model import deadlines
from chalicelib.model.deadlines import Budget


def boto_config(**extra: Any) -> BotoConfig:
    """The one botocore configuration of the service (``extra``: e.g. signature_version)."""
    bounds = timeouts()
    return BotoConfig(
        retries={"mode": "standard", "max_attempts": bounds.attempts},
        connect_timeout=bounds.connect,
        read_timeout=bounds.read,
        **extra,
    )


def bounded_client(session: boto3.Session, service: str, region: str | None = None, **kwargs: Any) -> Any:
    """A boto3 client with the service's configuration, checked against the current budget before
    every attempt, and its requests bounded in total time."""
    client: Any = session.client(service, region_name=region, config=boto_config(), **kwargs)  # type: ignore[call-overload]
    client.meta.events.register("before-send", _before_send)
    client.meta.events.register("before-parse", _complete)
    client.meta.events.register("after-call-error", _after_call_error)
    # botocore offers no public way to choose its connection classes; its session keeps the pool
    # classes in this dict, shared with its pool managers, and creates pools at the first request.
    pools = getattr(getattr(client, "_endpoint", None), "http_session", None)
    classes = getattr(pools, "_pool_classes_by_scheme", None)
    if not isinstance(classes, dict) or set(classes) != {"http", "https"}:
        raise RuntimeError(f"botocore changed: cannot bound the total time of {service} requests")
    classes.update({"http": _BoundedAwsPool, "https": _BoundedAwsHttpsPool})
    return client


def bound_pool_manager(manager: PoolManager) -> None:
    """Gives a kubernetes client's pool manager connections bounded in total time. A new dict: the
    one it holds is urllib3's module-wide default."""
    manager.pool_classes_by_scheme = {"http": _BoundedPool, "https": _BoundedHttpsPool}


def transport_failed(reason: str) -> None:
    """Records the first transport failure of the current scope: its other requests are not sent."""
    budget = deadlines.current()
    if budget is not None:
        budget.trip(reason)


def _before_send(**_: Any) -> None:
    budget = deadlines.current()
    if budget is not None:
        budget.check()  # a TransientError here is not retried by botocore and reaches the adapter as is


class IncompleteAnswer(HTTPClientError):
    """botocore reads answers without checking their length (urllib3's enforce_content_length is
    off): an answer cut short, by the watchdog or the network, would reach the parser as a
    ResponseParserError, which is no BotoCoreError. This makes it the transport failure it is."""

    fmt = "the answer ended after {received} of its {expected} bytes (cut, or the connection dropped)"


class NotAnApiAnswer(HTTPClientError):
    """An HTML page where an AWS API answer belongs (a proxy, a load balancer or a wrong endpoint in
    the way, or a server's crash page): botocore's parser would fail on it with a ResponseParserError,
    which no adapter translates. No AWS API answers with an HTML document."""

    fmt = "HTTP {status} with {content_type}: not an AWS API answer (a proxy or a wrong endpoint in the way?)"


def _complete(response_dict: dict[str, Any], **_: Any) -> None:
    headers = response_dict.get("headers", {})
    body, expected = response_dict.get("body"), headers.get("content-length", "")
    if isinstance(body, bytes) and expected.isdigit() and len(body) < int(expected):
        raise IncompleteAnswer(received=len(body), expected=int(expected))
    # By the body, not the header: some AWS-compatible endpoints (moto among them) label JSON text/html.
    if isinstance(body, bytes) and body[:64].lstrip().lower().startswith((b"<!doctype html", b"<html")):
        raise NotAnApiAnswer(status=response_dict.get("status_code"), content_type=headers.get("content-type", "?"))


def _after_call_error(exception: BaseException, **_: Any) -> None:
    if isinstance(exception, BotoConnectionError | HTTPClientError):
        transport_failed(str(exception))


class _Watchdog:
    """One daemon thread; shuts down the socket of every armed connection whose moment has come."""

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, weakref.ref[Any], Budget | None, float]] = {}
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, connection: Any, until: float, budget: Budget | None, seconds: float) -> None:
        with self._condition:
            self._armed[id(connection)] = (until, weakref.ref(connection), budget, seconds)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="eks-iam-sync-watchdog", daemon=True)
                self._thread.start()
            self._condition.notify()

    def disarm(self, connection: Any) -> None:
        with self._condition:
            self._armed.pop(id(connection), None)

    def _watch(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                for key, (until, ref, budget, seconds) in list(self._armed.items()):
                    if until <= now:
                        del self._armed[key]
                        self._cut(ref(), budget, seconds)
                upcoming = [until for until, *_ in self._armed.values()]
                self._condition.wait(min(upcoming) - now if upcoming else None)

    @staticmethod
    def _cut(connection: Any, budget: Budget | None, seconds: float) -> None:
        sock = getattr(connection, "sock", None)
        if sock is None:
            return
        if budget is not None:
            left = budget.left()
            cause = "the invocation's deadline" if left is not None and left <= 0 else f"its {seconds:g} s bound"
            budget.trip(f"a request was cut at {cause} (connect + read timeout), its answer incomplete")
        # socket.socket's own shutdown, also for an SSLSocket: the TLS layer must not be touched from
        # this thread while the request's thread is inside it; its read returns at once. OSError:
        # closed meanwhile, nothing left to cut.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


WATCHDOG = _Watchdog()


class _Bounded:
    """Arms the watchdog for each request on this connection (a pooled connection serves many), and
    for the TLS handshake before the first: an endpoint trickling its handshake defeats the connect
    timeout the same way."""

    def connect(self) -> None:
        _arm(self)
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _arm(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]


def _arm(connection: Any) -> None:
    seconds = timeouts().request
    budget = deadlines.current()
    until = budget.until(seconds) if budget is not None else time.monotonic() + seconds
    WATCHDOG.arm(connection, until, budget, seconds)


class _Returned:
    """Disarms when a connection goes back to its pool: its response was read to the end."""

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            WATCHDOG.disarm(conn)
        super()._put_conn(conn)  # type: ignore[misc]


class _BoundedConnection(_Bounded, HTTPConnection):
    pass


class _BoundedHttpsConnection(_Bounded, HTTPSConnection):
    pass


class _BoundedAwsConnection(_Bounded, AWSHTTPConnection):  # type: ignore[misc]
    pass


class _BoundedAwsHttpsConnection(_Bounded, AWSHTTPSConnection):  # type: ignore[misc]
    pass


class _BoundedPool(_Returned, HTTPConnectionPool):
    ConnectionCls = _BoundedConnection


class _BoundedHttpsPool(_Returned, HTTPSConnectionPool):
    ConnectionCls = _BoundedHttpsConnection


class _BoundedAwsPool(_Returned, AWSHTTPConnectionPool):
    ConnectionCls = _BoundedAwsConnection


class _BoundedAwsHttpsPool(_Returned, AWSHTTPSConnectionPool):
    ConnectionCls = _BoundedAwsHttpsConnection
