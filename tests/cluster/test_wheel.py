"""A plain (non-editable) install works from any folder: conf/ and problems/ ship inside the
wheel, found through the package. This is what every worker node of a cluster runs."""

from __future__ import annotations

import json
import os
import shutil
import site
import sqlite3
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# What a build needs; runs/, build/ and caches in the checkout stay out of the copy.
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "evolve", "conf", "problems")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "_data", "*.nbi", "*.nbc")


def _clean_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EVOLVE_", "PYTHON", "VIRTUAL_ENV", "RAY_ADDRESS"))
    }
    env.update(HOME=str(home), LITELLM_LOCAL_MODEL_COST_MAP="True", RAY_AUTH_MODE="disabled")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment holding evolve installed from a wheel built here."""
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORE)
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    dist = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        + ["-w", str(dist), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("evolve-*.whl")
    env_dir = tmp / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    target = next(env_dir.glob("lib/python*/site-packages"))
    # The dependencies come from the environment running this test, never from an index; a
    # plain path line (not a site dir) so this environment's editable evolve stays out.
    deps = [p for p in [*site.getsitepackages(), site.getusersitepackages()] if Path(p).is_dir()]
    (target / "deps_from_test_env.pth").write_text("\n".join(deps) + "\n")
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return env_dir


@pytest.mark.slow
def test_wheel_install_runs_from_an_empty_folder(installed, tmp_path):
    py, evolve = installed / "bin" / "python", installed / "bin" / "evolve"
    empty = tmp_path / "empty"
    empty.mkdir()
    env = _clean_env(tmp_path)

    where = subprocess.run(
        [
            str(py),
            "-c",
            "import evolve.paths as p; print(p.PACKAGE_DIR, p.conf_dir(), p.problems_dir())",
        ],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    package, conf, problems = where.stdout.split()
    assert str(installed) in package, "the wheel's evolve, not the checkout's"
    assert conf == f"{package}/_data/conf" and problems == f"{package}/_data/problems"

    listed = subprocess.run(
        [str(evolve), "problems"], cwd=empty, env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    for name in ("erdos/min_overlap", "erdos/golomb", "packing/circles"):
        assert name in listed.stdout

    run = subprocess.run(
        [str(evolve), "run", "budget.evaluations=20", "search.islands=1", "sandbox.workers=1"]
        + ["cluster.num_cpus=2", "report.live=false", "literature.enabled=false"],
        cwd=empty,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (db,) = (empty / "runs").glob("erdos-min_overlap/*/evolve.db")
    with sqlite3.connect(db) as con:
        counted = con.execute("SELECT COUNT(*) FROM programs WHERE status != 'rejected'").fetchone()
    assert counted[0] == 20


@pytest.mark.slow
def test_env_overrides_still_win(installed, tmp_path):
    """EVOLVE_PROBLEMS_DIR points an installed evolve at another folder of problems."""
    mine = tmp_path / "mine" / "toy" / "same"
    shutil.copytree(REPO / "problems" / "erdos" / "min_overlap", mine, ignore=IGNORE)
    env = {**_clean_env(tmp_path), "EVOLVE_PROBLEMS_DIR": str(tmp_path / "mine")}
    listed = subprocess.run(
        [str(installed / "bin" / "evolve"), "problems"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert "toy/same" in listed.stdout and "erdos/golomb" not in listed.stdout


# A child that knows where a wheel keeps the held-out test data tries to read it; the trusted
# side of the same installation reads it (the test set loads), so the refusal is the sandbox's.
HELD_OUT_SCRIPT = """
import json, os
from evolve.paths import problems_dir
from evolve.problem import load_problem
from evolve.sandbox import Sandbox, SandboxRequest
problem = load_problem("scheduling/binpacking_online")
data = problems_dir() / "scheduling" / "binpacking_online" / "data"
paths = sorted(str(p) for p in data.rglob("*.txt")) + [str(data)]
code = (
    "import json, os\\n"
    f"PATHS = {paths!r}\\n"
    "def solve():\\n"
    "    seen = {}\\n"
    "    for p in PATHS:\\n"
    "        try:\\n"
    "            seen[p] = os.listdir(p) if os.path.isdir(p) else open(p).read(50)\\n"
    "        except OSError as exc:\\n"
    "            seen[p] = type(exc).__name__\\n"
    "    print(json.dumps(seen))\\n"
    "    return {'h': [1]}\\n"
)
with Sandbox(preload=("numpy",)) as sb:
    res = sb.run(SandboxRequest(code))
print(json.dumps({"data": str(data), "test_instances": len(problem.instances("test")),
                  "landlock": sb.features.get("landlock"), "status": res.status,
                  "error": res.error, "seen": json.loads(res.stdout_tail.strip() or "{}")}))
"""


@pytest.mark.slow
def test_a_child_cannot_read_the_held_out_data_of_an_installed_problem(installed, tmp_path):
    env = _clean_env(tmp_path)
    r = subprocess.run(
        [str(installed / "bin" / "python"), "-c", HELD_OUT_SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if not out["landlock"]:
        pytest.skip("Landlock is not available here; without it installed files stay readable")
    assert out["data"].startswith(str(installed)) and "/evolve/_data/problems/" in out["data"]
    assert out["test_instances"] == 85  # OR1-OR4 (4 x 20) and Weibull 5k (5): the trusted side
    assert out["status"] == "ok", out["error"]
    seen = out["seen"]
    assert len(seen) == 10, seen  # 9 files and their folder
    assert all(v in ("PermissionError", "FileNotFoundError") for v in seen.values()), seen
