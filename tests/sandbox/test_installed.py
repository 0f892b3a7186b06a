"""A child reads only what it needs to run, also when evolve and problems are installed.

`pip install` puts evolve, a problem plug-in (its evaluator, known.yaml, held-out instances
such as scheduling/binpacking_online's test sets)
and every other library into site-packages, beside numpy. This test builds such an
installation for real: a virtualenv whose site-packages holds a copy of the evolve package,
the built-in problems folder beside it (where `evolve.paths` looks for it) and a plug-in
package, with the outer environment's libraries chained in by a .pth file. A Sandbox started
from that interpreter then runs a child that tries to open each of them.
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import evolve
from evolve.sandbox import Sandbox

REPO = Path(evolve.__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import json, os, sys
    import evolve, numpy
    from evolve.sandbox import Sandbox, SandboxRequest
    site_dir = os.path.dirname(os.path.dirname(evolve.__file__))
    targets = json.loads(sys.argv[1])
    targets.update({
        "installed evolve": os.path.join(site_dir, "evolve", "__init__.py"),
        "installed problem evaluator": os.path.join(
            site_dir, "problems", "erdos", "min_overlap", "evaluator.py"),
        "installed problem known.yaml": os.path.join(
            site_dir, "problems", "erdos", "min_overlap", "known.yaml"),
        "installed held-out test data": os.path.join(
            site_dir, "problems", "scheduling", "binpacking_online", "data", "binpack1.txt"),
        "installed held-out Weibull 5k": os.path.join(
            site_dir, "problems", "scheduling", "binpacking_online", "data", "weibull5k",
            "test_0.txt"),
        "installed data folder listing": os.path.join(
            site_dir, "problems", "scheduling", "binpacking_online", "data"),
        "plug-in evaluator": os.path.join(site_dir, "evolve_secret_plugin", "evaluator.py"),
        "plug-in held-out data": os.path.join(site_dir, "evolve_secret_plugin", "test.txt"),
        "preloaded numpy": numpy.__file__,
        "standard library": os.__file__,
    })
    code = (
        "import json, os\\n"
        f"TARGETS = {targets!r}\\n"
        "def solve():\\n"
        "    seen = {}\\n"
        "    for name, path in TARGETS.items():\\n"
        "        try:\\n"
        "            seen[name] = os.listdir(path) if os.path.isdir(path) else open(path).read(200)\\n"
        "        except OSError as exc:\\n"
        "            seen[name] = type(exc).__name__\\n"
        "    print(json.dumps(seen))\\n"
        "    return {'h': [1]}\\n"
    )
    with Sandbox(preload=("numpy",)) as sb:
        res = sb.run(SandboxRequest(code))
        print(json.dumps({"evolve": evolve.__file__, "features": sb.features,
                          "status": res.status, "error": res.error,
                          "seen": res.stdout_tail.strip()}))
""")


def _landlock() -> int:
    with Sandbox(preload=("numpy",), spares=1) as sb:
        return int(sb.features.get("landlock") or 0)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtualenv with evolve, its problems and a plug-in installed into site-packages."""
    if _landlock() < 1:
        pytest.skip("Landlock is not available here; without it installed files stay readable")
    root = tmp_path_factory.mktemp("installed")
    root.chmod(0o755)
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    (site_dir,) = venv.glob("lib/python3*/site-packages")
    ignore = shutil.ignore_patterns("__pycache__", "*.sqlite*")
    shutil.copytree(REPO / "evolve", site_dir / "evolve", ignore=ignore)
    shutil.copytree(REPO / "problems", site_dir / "problems", ignore=ignore)
    plugin = site_dir / "evolve_secret_plugin"
    plugin.mkdir()
    (plugin / "__init__.py").write_text("")
    (plugin / "evaluator.py").write_text("SECRET_EVALUATOR = 1\n")
    (plugin / "test.txt").write_text("SECRET HELD-OUT INSTANCES\n")
    # The outer environment's libraries (numpy, ray, ...), as a --system-site-packages
    # virtualenv would see them; its own copy of evolve comes first on sys.path.
    outer = [p for p in [*site.getsitepackages(), *sys.path] if p.endswith("-packages")]
    (site_dir / "zz_outer.pth").write_text("\n".join(dict.fromkeys(outer)) + "\n")
    return venv


def test_installed_packages_and_problems_are_hidden_from_the_child(installed):
    import importlib.util

    other = importlib.util.find_spec("sqlite_utils")  # installed, not preloaded
    targets = {
        "installed library": other.origin,
        "site-packages listing": str(Path(other.origin).parents[1]),
        "project problems": str(REPO / "problems" / "erdos" / "min_overlap" / "evaluator.py"),
        "project held-out test data": str(
            REPO / "problems" / "scheduling" / "binpacking_online" / "data" / "binpack3.txt"
        ),
    }
    proc = subprocess.run(
        [str(installed / "bin" / "python"), "-c", SCRIPT, json.dumps(targets)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=str(installed.parent),
        env={"PATH": "/usr/bin:/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["evolve"].startswith(str(installed)), out["evolve"]  # the installed copy ran
    assert out["status"] == "ok" and out["features"]["landlock"] >= 1, out
    seen = json.loads(out["seen"])
    print(json.dumps(seen, indent=1)[:3000])
    # What it needs stays readable (so the refusals below are not a blanket denial).
    assert "NumPy" in seen["preloaded numpy"] and "OS routines" in seen["standard library"], seen
    hidden = [name for name in seen if name not in ("preloaded numpy", "standard library")]
    assert len(hidden) == 12
    for name in hidden:
        assert seen[name] in ("PermissionError", "FileNotFoundError"), (name, seen[name])
