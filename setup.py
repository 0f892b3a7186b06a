"""Build step: ship the top-level conf/ and problems/ inside the package.

The repository keeps them at the top level (that layout is fixed); an installed evolve finds
them as package data under `evolve/_data/` (see evolve/paths.py). An editable install copies
nothing and keeps using the repository's folders. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("conf", "problems")
# Caches made by running problems in place (numba, bytecode) are not part of the package.
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc", ".*")


class build_py_with_data(build_py):
    """build_py, plus conf/ and problems/ copied to evolve/_data/ in the build folder."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in SHIPPED:
            source = ROOT / name
            if not source.is_dir():  # building from an sdist that lacks them would ship nothing
                raise SystemExit(f"setup.py: {source} is missing; build from a full checkout")
            target = Path(self.build_lib) / "evolve" / "_data" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=IGNORE)


setup(cmdclass={"build_py": build_py_with_data})
