"""Keeps tests/unit and tests/functional hermetic: no network, no child processes.

Those suites run on in-memory fakes (and moto's in-process ``mock_aws``, which opens no socket), so
a connection or a child process there means a test silently depends on something outside the
process: a local server, a binary, the internet. It would then be slow, flaky, or pass only on
machines that happen to have it. Such a test belongs in tests/integration.

Enabled by importing ``isolated`` into a directory's conftest.py (``pytest_plugins`` is only
allowed in the root conftest):

    from tests.isolation import isolated as isolated

The fixture is autouse, so every test of that directory gets it; it also checks the test's path
itself, so importing it anywhere else cannot block the integration suites by accident.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

MESSAGE = (
    "tests/unit and tests/functional may not use the network / child processes: move this test to tests/integration"
)
TESTS = Path(__file__).resolve().parent
HERMETIC = (TESTS / "unit", TESTS / "functional")


class IsolationError(RuntimeError):
    """A hermetic test tried to reach outside its process."""


def _blocked(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise IsolationError(f"{MESSAGE} (attempted {what})")

    return refuse


def applies_to(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(root) for root in HERMETIC)


def block(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replaces every way out of the process this project (and its libraries) could take."""
    # socket.socket is a Python subclass of _socket.socket: patching it covers plain, SSL
    # (SSLSocket.connect ends in socket.connect) and urllib3/http.client connections alike.
    monkeypatch.setattr(socket.socket, "connect", _blocked("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", _blocked("socket.connect_ex"))
    # Refused before name resolution, which is network traffic of its own.
    monkeypatch.setattr(socket, "create_connection", _blocked("socket.create_connection"))
    # _execute_child is where every Popen (run, call, check_output, `from subprocess import Popen`)
    # actually forks; Popen.__init__ closes the pipes it opened when it raises.
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _blocked("subprocess.Popen"))
    for name in ("system", "fork", "forkpty", "posix_spawn", "posix_spawnp", "execv", "execve"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _blocked(f"os.{name}"))


@pytest.fixture(autouse=True)
def isolated(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if applies_to(request.node.path):
        block(monkeypatch)
