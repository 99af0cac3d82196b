"""``rbac``: the service's own least-privilege RBAC manifest for a configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.config import Config
from chalicelib.deploy.rbac_manifest import manifest_documents, render_manifest


@dataclass(frozen=True)
class Manifest:
    text: str  # YAML, as `kubectl apply -f -` takes it
    documents: tuple[dict[str, Any], ...]


def rbac(config: Config) -> Manifest:
    return Manifest(render_manifest(config), tuple(manifest_documents(config)))
