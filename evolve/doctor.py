"""`evolve doctor`: what this machine gives a run, and how to fix what it lacks.

Starts a real sandbox and runs a trivial child in it, so the layers it reports are the ones a
run would get here. Names the environment variables the LLM presets read and whether each is
set; never prints a value.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

import yaml

from evolve.paths import conf_dir, problems_dir
from evolve.sandbox.runner import UNCONFINED_FILES, describe_layers

# What to do when a layer is missing, in the words of someone fixing their machine.
_FIXES = {
    "pid_namespace": (
        "unprivileged user namespaces look disabled: allow them (Debian: sysctl "
        "kernel.unprivileged_userns_clone=1; Ubuntu 24.04: sysctl "
        "kernel.apparmor_restrict_unprivileged_userns=0) or run as root"
    ),
    "network_namespace": "as for the PID namespace",
    "mount_namespace": "as for the PID namespace; without it the child has no private /tmp",
    "landlock": (
        "Landlock needs Linux >= 5.13 with landlock in the LSM list "
        "(cat /sys/kernel/security/lsm; boot with lsm=...,landlock)"
    ),
    "private_uid": "only as root; as a user, the user namespace and Landlock stand in for it",
    "seccomp": (
        "the seccomp filter needs libseccomp (Debian: apt install libseccomp2) and the "
        "pyseccomp package (pip install pyseccomp)"
    ),
}
_TRIVIAL = "import numpy as np\n\ndef solve():\n    return {'h': np.full(4, 0.5)}\n"


def package_versions() -> dict[str, str]:
    """Versions of evolve and the packages its results depend on (recorded with every run)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in (
        "evolve",
        "numpy",
        "numba",
        "litellm",
        "ray",
        "hydra-core",
        "sqlite-utils",
        "pyseccomp",
    ):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _llm_keys() -> list[dict[str, Any]]:
    """Each preset's key variable and whether it is set (never its value)."""
    rows = []
    for path in sorted((conf_dir() / "llm").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text()) or {}
        models = cfg.get("models") or [cfg]
        for m in models:
            env = m.get("api_key_env")
            if env:
                rows.append(
                    {
                        "preset": path.stem,
                        "model": m.get("model"),
                        "variable": env,
                        "set": bool(os.environ.get(env)),
                    }
                )
    return rows


def check_sandbox() -> dict[str, Any]:
    """Start a sandbox, run a trivial child; the layers in force and what a child costs."""
    from evolve.sandbox import Sandbox, SandboxError, SandboxRequest

    try:
        # Allowed here so that doctor can still list the layers; a run refuses (see below).
        with Sandbox(preload=("numpy",), allow_unconfined_files=True) as sb:
            t0 = time.perf_counter()
            res = sb.run(SandboxRequest(_TRIVIAL, time_s=10))
            wall = time.perf_counter() - t0
            features = dict(sb.features)
    except SandboxError as exc:
        return {"works": False, "error": str(exc), "features": {}, "missing": []}
    missing = [
        {"layer": k, "fix": fix}
        for k, fix in _FIXES.items()
        if not features.get(k) and not (k == "private_uid" and os.geteuid() != 0)
    ]
    if any("allow_unconfined_files" in p for p in features.get("problems") or []):
        missing.append({"layer": "file isolation", "fix": UNCONFINED_FILES})
    return {
        "works": res.status == "ok",
        "error": res.error,
        "features": features,
        "missing": missing,
        "trivial_child_ms": round(wall * 1e3, 2),
    }


def report() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cores": os.cpu_count(),
        "root": os.geteuid() == 0,
        "versions": package_versions(),
        "sandbox": check_sandbox(),
        "llm_keys": _llm_keys(),
        "conf_dir": str(conf_dir()),
        "problems_dir": str(problems_dir()),
    }


def render(r: dict[str, Any]) -> str:
    lines = [
        f"python {r['python']} on {r['platform']}, {r['cores']} cores"
        + (" (root)" if r["root"] else " (not root)"),
        "packages: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()),
    ]
    sb = r["sandbox"]
    if not sb["works"]:
        lines.append(f"sandbox: NOT WORKING: {sb['error']}")
    else:
        lines.append(
            f"sandbox: works (a trivial child took {sb['trivial_child_ms']} ms); "
            f"layers: {describe_layers(sb['features'])}"
        )
    for m in sb["missing"]:
        lines.append(f"  missing {m['layer']}: {m['fix']}")
    keys = r["llm_keys"]
    if keys:
        lines.append("LLM keys (llm=PRESET reads the variable; values are never shown):")
        for k in keys:
            state = "set" if k["set"] else "not set"
            lines.append(f"  {k['preset']:<10} {k['variable']:<22} {state}")
    lines.append("offline runs (llm=local, the default) need no key.")
    return "\n".join(lines)
