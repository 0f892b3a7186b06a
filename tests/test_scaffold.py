"""A new plug-in from the template checks out, and evolves through the real engine."""

from __future__ import annotations

import sqlite3

import pytest

from evolve.cli import main
from evolve.scaffold import ScaffoldError, check_problem, new_problem


def test_new_problem_passes_every_check(tmp_path):
    folder = new_problem("my_points", tmp_path)
    assert (folder.parent / "pyproject.toml").read_text().count('"my_points" = "my_points"') == 1
    checks = check_problem(folder)
    assert [c.name for c in checks if not c.ok] == []
    with pytest.raises(ScaffoldError):
        new_problem("my_points", tmp_path)


def test_a_name_with_a_group_gives_a_loadable_problem(tmp_path):
    """A namespaced name (group/name, as the built-in problems have) once made a title with a
    colon, which broke problem.yaml."""
    from evolve.problem import load_problem

    folder = new_problem("lab/points", tmp_path)
    assert load_problem(str(folder)).title == "Lab / points"


def test_check_problem_catches_a_broken_seed(tmp_path):
    folder = new_problem("broken", tmp_path)
    init = folder / "initial.py"
    init.write_text(
        init.read_text().replace("0.0, 1.0)", "-1.0, 2.0)").replace("jitter = 0.05", "jitter = 0.5")
    )
    bad = {c.name: c for c in check_problem(folder) if not c.ok}
    assert "seed runs" in bad and "outside the unit square" in bad["seed runs"].detail
    assert main(["check-problem", str(folder)]) == 1


@pytest.mark.slow
def test_plugin_evolves_with_the_engine(ray_session, tmp_path):
    folder = new_problem("spread", tmp_path / "plugins")
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "run",
                "problem=custom",
                f"problem.name={folder}",
                f"runs_dir={runs}",
                "report.live=false",
                "budget.evaluations=30",
            ]
        )
        == 0
    )
    (db,) = runs.glob("*/*/evolve.db")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT problem FROM runs").fetchone()[0] == "spread"
    assert conn.execute("SELECT COUNT(*) FROM programs WHERE status = 'ok'").fetchone()[0] >= 10


@pytest.mark.slow
def test_published_plugin_is_found_by_name(tmp_path):
    """pip-install the template project; its entry point makes the problem loadable by name."""
    import os
    import subprocess
    import sys

    project = new_problem("pub_points", tmp_path / "src").parent
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(project),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = subprocess.run(
        [sys.executable, "-m", "evolve.cli", "check-problem", "pub_points"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all checks passed" in r.stdout
