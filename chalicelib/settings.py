"""The one place that reads the process environment."""

from __future__ import annotations

import os
from pathlib import Path

from chalicelib.config import DEFAULT_CONFIG_PATH

CONFIG_PATH_VARIABLE = "EKS_IAM_SYNC_CONFIG"


PROJECT_ROOT = Path(__file__).resolve().parent.parent  # /var/task in Lambda


def config_path() -> Path:
    """The configuration file: $EKS_IAM_SYNC_CONFIG, else the seed example shipped in chalicelib/.

    A relative path is taken from the project root, so `chalicelib/my-config.yaml` means the same
    file locally and inside the deployed package.
    """
    configured = os.environ.get(CONFIG_PATH_VARIABLE)
    if not configured:
        return DEFAULT_CONFIG_PATH
    path = Path(configured)
    return path if path.is_absolute() else PROJECT_ROOT / path
