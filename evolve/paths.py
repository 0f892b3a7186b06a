"""Where the project's own folders are: built-in problems and the Hydra config."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent


def problems_dir() -> Path:
    """The folder of built-in problems (override with EVOLVE_PROBLEMS_DIR)."""
    return Path(os.environ.get("EVOLVE_PROBLEMS_DIR", PROJECT_ROOT / "problems"))


def conf_dir() -> Path:
    """The Hydra config folder (override with EVOLVE_CONF_DIR)."""
    return Path(os.environ.get("EVOLVE_CONF_DIR", PROJECT_ROOT / "conf"))
