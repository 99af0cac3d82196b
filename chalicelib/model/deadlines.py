"""How much time a request may still take, and whether it should be sent at all.

The runner opens a ``scope`` per cluster (the service one per invocation) with the invocation's
deadline; the adapters consult the current scope before every request, Kubernetes and AWS alike,
and record there the first transport failure (a timeout, a refused or dropped connection). So a
cluster stops at its first transport failure instead of waiting out a timeout per remaining request,
and no request starts that could run past the deadline. A context variable, not a parameter: the
ports' signatures stay what the core needs, and each thread (and each test) has its own scope.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from chalicelib.config.settings import timeouts
from chalicelib.errors import TransientError


@dataclass
class Budget:
    what: str  # "cluster NAME", "invocation": said in every error
    deadline: float | None  # time.monotonic(); None: no deadline (the CLI)
    failure: str | None = None  # the first transport failure in this scope

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check(self) -> None:
        """Before a request: raises TransientError when an earlier request of this scope failed in
        transport, or when one request's bound no longer fits before the deadline."""
        if self.failure is not None:
            raise TransientError(f"{self.what}: stopped after a transport failure: {self.failure}")
        left = self.left()
        bound = timeouts().request
        if left is not None and left < bound:
            raise TransientError(
                f"{self.what}: stopped with {max(left, 0):.0f} s left in this invocation, under one request's "
                f"bound ({bound:.0f} s: connect + read timeout)"
            )

    def until(self, seconds: float) -> float:
        """The moment a request started now must be over: ``seconds`` from now, or the deadline."""
        end = time.monotonic() + seconds
        return end if self.deadline is None else min(end, self.deadline)

    def trip(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason


_current: ContextVar[Budget | None] = ContextVar("eks_iam_sync_budget", default=None)


def current() -> Budget | None:
    return _current.get()


@contextmanager
def scope(what: str, deadline: float | None) -> Iterator[Budget]:
    """A budget for the requests made inside; nested, it never extends the enclosing deadline, and
    its transport failures stay its own (one cluster's never stops the next)."""
    outer = _current.get()
    if outer is not None and outer.deadline is not None:
        deadline = outer.deadline if deadline is None else min(deadline, outer.deadline)
    budget = Budget(what, deadline)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
