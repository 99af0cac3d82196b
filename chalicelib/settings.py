"""The one place that reads the process environment."""

from __future__ import annotations

import os
from pathlib import Path

from chalicelib.config import DEFAULT_CONFIG_PATH

CONFIG_PATH_VARIABLE = "EKS_IAM_SYNC_CONFIG"


def config_path() -> Path:
    """The configuration file: $EKS_IAM_SYNC_CONFIG, else the seed example shipped in chalicelib/."""
    return Path(os.environ.get(CONFIG_PATH_VARIABLE) or DEFAULT_CONFIG_PATH)
