"""tests/isolation.py bites: in this directory (and tests/unit) a connection, even to 127.0.0.1, and
a child process raise at once with a message saying where such a test belongs; tests/integration
is left alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.isolation import MESSAGE, IsolationError, applies_to

TESTS = Path(__file__).resolve().parents[1]


def test_a_tcp_connection_to_localhost_raises() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(IsolationError, match="integration"):
        sock.connect(("127.0.0.1", 9))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(IsolationError):
        sock.connect_ex(("127.0.0.1", 9))
    with pytest.raises(IsolationError):
        socket.create_connection(("localhost", 443), timeout=0.1)


def test_http_clients_cannot_reach_out_either() -> None:
    import urllib.request  # noqa: PLC0415

    with pytest.raises(IsolationError):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=0.1)


def test_a_child_process_raises() -> None:
    with pytest.raises(IsolationError, match=r"may not use the network / child processes"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    with pytest.raises(IsolationError):
        subprocess.Popen(["true"])
    with pytest.raises(IsolationError):
        os.system("true")


def test_the_message_says_where_the_test_belongs() -> None:
    assert MESSAGE.endswith("move this test to tests/integration")


def test_it_applies_to_unit_and_functional_only() -> None:
    assert applies_to(TESTS / "unit" / "test_config.py")
    assert applies_to(TESTS / "functional" / "test_isolation.py")
    assert not applies_to(TESTS / "integration" / "test_packaging.py")
    assert not applies_to(TESTS / "harness" / "kube.py")


def test_in_process_moto_needs_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_group(GroupName="devs")
        assert [g["GroupName"] for g in iam.list_groups()["Groups"]] == ["devs"]
