"""deadlines: the scope the adapters consult before every request, and settings' sizing of it."""

from __future__ import annotations

import time

import pytest

from chalicelib.config.settings import Timeouts
from chalicelib.errors import TransientError
from chalicelib.model import deadlines


def test_a_scope_stops_after_its_first_transport_failure_and_only_itself() -> None:
    with deadlines.scope("invocation", None) as outer:
        with deadlines.scope("cluster a", None) as budget:
            budget.check()
            budget.trip("read timed out")
            budget.trip("a later failure")
            with pytest.raises(TransientError, match=r"^cluster a: stopped after a transport failure: read timed out$"):
                budget.check()
        with deadlines.scope("cluster b", None) as other:
            other.check()
            assert deadlines.current() is other
        outer.check()
    assert deadlines.current() is None


def test_no_request_starts_that_its_bound_would_carry_past_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKS_IAM_SYNC_CONNECT_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("EKS_IAM_SYNC_READ_TIMEOUT_SECONDS", "2")
    with deadlines.scope("cluster a", time.monotonic() + 3.5) as budget:
        budget.check()  # 3.5 s left, a request's bound is 3 s
    with (
        deadlines.scope("cluster a", time.monotonic() + 2.5) as budget,
        pytest.raises(
            TransientError, match=r"stopped with 2 s left in this invocation, under one request's bound \(3 s"
        ),
    ):
        budget.check()


def test_a_nested_scope_never_outlives_the_invocation() -> None:
    now = time.monotonic()
    with deadlines.scope("invocation", now + 10), deadlines.scope("cluster a", now + 60) as budget:
        assert budget.deadline == now + 10
        assert budget.until(30) == now + 10
    with deadlines.scope("invocation", now + 10), deadlines.scope("cluster a", None) as budget:
        assert budget.deadline == now + 10
    with deadlines.scope("cli", None) as budget:
        assert budget.left() is None and now + 5 <= budget.until(5) < now + 6


@pytest.mark.parametrize(
    ("bounds", "attempts"),
    [(Timeouts(), 2), (Timeouts(5, 5), 3), (Timeouts(0.5, 1), 2), (Timeouts(30, 1), 1)],
)
def test_botocore_attempts_that_time_out_fit_one_cluster_s_budget(bounds: Timeouts, attempts: int) -> None:
    assert bounds.attempts == attempts
    assert bounds.attempts * max(bounds.connect, bounds.read) <= bounds.budget
    assert bounds.request == bounds.connect + bounds.read < bounds.budget
