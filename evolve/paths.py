"""Where the project's own folders are: built-in problems and the Hydra config.

An installed evolve (a wheel, `pip install .`) carries both inside the package, as
`evolve/_data/conf` and `evolve/_data/problems` (copied there by the build step in setup.py);
an editable install or a source checkout uses the repository's top-level `conf/` and
`problems/`. `EVOLVE_CONF_DIR` and `EVOLVE_PROBLEMS_DIR` override either.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
PACKAGED_DATA = PACKAGE_DIR / "_data"


def _shipped(name: str) -> Path:
    # The packaged copy first: beside an installed package, PROJECT_ROOT is site-packages,
    # where a folder called conf/ or problems/ would belong to some other distribution.
    packaged = PACKAGED_DATA / name
    return packaged if packaged.is_dir() else PROJECT_ROOT / name


def problems_dir() -> Path:
    """The folder of built-in problems (override with EVOLVE_PROBLEMS_DIR)."""
    return Path(os.environ.get("EVOLVE_PROBLEMS_DIR") or _shipped("problems"))


def conf_dir() -> Path:
    """The Hydra config folder (override with EVOLVE_CONF_DIR)."""
    return Path(os.environ.get("EVOLVE_CONF_DIR") or _shipped("conf"))
