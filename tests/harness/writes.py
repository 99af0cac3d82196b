"""Counting what the functions write to aws-auth, through the real adapter: the harness's one way to
say "at most one aws-auth update per cluster per batch" (tests, the bench and the demo)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from chalicelib.adapters import configmaps


@contextlib.contextmanager
def aws_auth_writes() -> Iterator[list[str]]:
    """The API server endpoint of every aws-auth update sent while inside (dry runs not counted)."""
    writes: list[str] = []
    update = configmaps.ConfigMaps.update

    def recording(
        self: configmaps.ConfigMaps, observed: Any, data: Any, annotations: Any, dry_run: bool = False
    ) -> Any:
        if observed.name == "aws-auth" and not dry_run:
            writes.append(self._core.api_client.configuration.host)
        return update(self, observed, data, annotations, dry_run)

    configmaps.ConfigMaps.update = recording  # type: ignore[method-assign]
    try:
        yield writes
    finally:
        configmaps.ConfigMaps.update = update  # type: ignore[method-assign]
