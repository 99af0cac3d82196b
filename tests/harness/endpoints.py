"""Misbehaving endpoints on real TCP sockets, for the failure tests: one that accepts and never says a
word, one that answers a byte at a time (each byte well within any read timeout, the answer never
complete), and a TLS proxy in front of a real apiserver that forwards reads and leaves writes
unanswered. Each records what reached it, and lets go of everything when its context ends."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Endpoint:
    url: str
    requests: list[str] = field(default_factory=list)  # request lines, as they arrived


@contextlib.contextmanager
def _serving(handle: Callable[[socket.socket, threading.Event], None], tls: ssl.SSLContext | None) -> Iterator[str]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(32)
    server.settimeout(0.1)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    connections: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                connection = server.accept()[0]
            except OSError:
                continue
            worker = threading.Thread(target=_guarded, args=(handle, connection, stop, tls, connections), daemon=True)
            worker.start()
            threads.append(worker)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        acceptor.join()
        for connection in connections:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)  # unblocks a handler in a read
            with contextlib.suppress(OSError):
                connection.close()
        for worker in threads:
            worker.join(timeout=5)
        server.close()


def _guarded(
    handle: Callable[[socket.socket, threading.Event], None],
    connection: socket.socket,
    stop: threading.Event,
    tls: ssl.SSLContext | None,
    connections: list[socket.socket],
) -> None:
    with contextlib.suppress(OSError, ssl.SSLError, ValueError):
        connection.settimeout(5.0)
        if tls is not None:
            connection = tls.wrap_socket(connection, server_side=True)
        connections.append(connection)
        connection.settimeout(1.0)
        handle(connection, stop)


def _request_line(connection: socket.socket, stop: threading.Event) -> str:
    """Reads one request's head (the body, if any, is left unread: nothing here answers it)."""
    head = b""
    while b"\r\n\r\n" not in head and not stop.is_set():
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        head += chunk
    return head.split(b"\r\n", 1)[0].decode(errors="replace")


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@contextlib.contextmanager
def silent(tls: ssl.SSLContext | None = None) -> Iterator[Endpoint]:
    """Accepts connections (and, with ``tls``, the handshake), reads the request, never answers."""
    endpoint = Endpoint("")

    def handle(connection: socket.socket, stop: threading.Event) -> None:
        endpoint.requests.append(_request_line(connection, stop))
        stop.wait()

    with _serving(handle, tls) as url:
        endpoint.url = url
        yield endpoint


@contextlib.contextmanager
def trickling(every: float = 0.2, tls: ssl.SSLContext | None = None, for_at_most: float = 40.0) -> Iterator[Endpoint]:
    """Answers 200 with a long body, one byte every ``every`` seconds: no read ever waits long, the
    answer never completes (for ``for_at_most`` seconds, so that a client that is not bounded in
    total time makes its test fail, not hang)."""
    endpoint = Endpoint("")

    def handle(connection: socket.socket, stop: threading.Event) -> None:
        endpoint.requests.append(_request_line(connection, stop))
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        until = time.monotonic() + for_at_most
        while not stop.wait(every) and time.monotonic() < until:
            connection.sendall(b" ")

    with _serving(handle, tls) as url:
        endpoint.url = url
        yield endpoint


@contextlib.contextmanager
def html_page(status: int = 502) -> Iterator[Endpoint]:
    """Answers every request with an HTML error page, as a proxy or a load balancer in front of the
    wrong thing does."""
    endpoint = Endpoint("")
    page = b"<!doctype html><html><title>502 Bad Gateway</title><h1>Bad Gateway</h1></html>"

    def handle(connection: socket.socket, stop: threading.Event) -> None:
        endpoint.requests.append(_request_line(connection, stop))
        head = f"HTTP/1.1 {status} Bad Gateway\r\nContent-Type: text/html; charset=utf-8\r\n"
        connection.sendall(f"{head}Content-Length: {len(page)}\r\nConnection: close\r\n\r\n".encode() + page)

    with _serving(handle, None) as url:
        endpoint.url = url
        yield endpoint


@contextlib.contextmanager
def writes_unanswered(upstream: str, ca_file: Path, tls: ssl.SSLContext) -> Iterator[Endpoint]:
    """A TLS proxy to ``upstream``: GETs are forwarded and answered, any other method is read and
    never answered (an apiserver whose writes hang: etcd lost its quorum, an admission webhook down)."""
    endpoint = Endpoint("")
    target = urlsplit(upstream)
    upstream_tls = ssl.create_default_context(cafile=str(ca_file))

    def handle(connection: socket.socket, stop: threading.Event) -> None:
        connection.settimeout(None)  # an idle keep-alive connection waits for its next request
        reader = connection.makefile("rb")
        while not stop.is_set():
            line = reader.readline().decode(errors="replace").rstrip("\r\n")
            if not line:
                return
            headers: dict[str, str] = {}
            while (header := reader.readline().decode(errors="replace").rstrip("\r\n")) != "":
                name, _, value = header.partition(":")
                headers[name.strip()] = value.strip()
            body = reader.read(int(headers.get("Content-Length", "0") or 0))
            endpoint.requests.append(line)
            method, path, _ = line.split(" ", 2)
            if method != "GET":
                stop.wait()
                return
            upstream_connection = http.client.HTTPSConnection(
                target.hostname or "127.0.0.1", target.port, context=upstream_tls, timeout=10
            )
            forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
            upstream_connection.request(method, path, body=body or None, headers=forwarded)
            answer = upstream_connection.getresponse()
            content = answer.read()
            upstream_connection.close()
            head = f"HTTP/1.1 {answer.status} {answer.reason}\r\nContent-Type: {answer.getheader('Content-Type')}\r\n"
            connection.sendall(f"{head}Content-Length: {len(content)}\r\n\r\n".encode() + content)

    with _serving(handle, tls) as url:
        endpoint.url = url
        yield endpoint
