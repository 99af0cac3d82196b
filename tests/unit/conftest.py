"""Unit tests are hermetic: no network, no child processes (see tests/isolation.py)."""

from tests.isolation import isolated

__all__ = ["isolated"]  # an autouse fixture: pytest finds it in this conftest's namespace
