"""Without Landlock and without root a child has the user's own file rights: refused unless
the user opts in with sandbox.allow_unconfined_files.

A machine without Landlock is made for real: the test's process loads a seccomp filter that
answers landlock_create_ruleset with ENOSYS (what a kernel without Landlock says) before it
starts a sandbox, as an ordinary user (uid 1000 through setpriv when the suite runs as root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("pyseccomp", reason="the test makes Landlock vanish with a seccomp filter")

SCRIPT = """
import errno, json, sys
import pyseccomp as sc
f = sc.SyscallFilter(sc.ALLOW)
f.add_rule(sc.ERRNO(errno.ENOSYS), "landlock_create_ruleset")
f.load()
from evolve.sandbox import Sandbox, SandboxError, SandboxRequest
from evolve.doctor import check_sandbox
out = {"uid": __import__("os").getuid()}
try:
    Sandbox(preload=("numpy",)).close()
    out["refused"] = ""
except SandboxError as exc:
    out["refused"] = str(exc)
with Sandbox(preload=("numpy",), allow_unconfined_files=True) as sb:
    out["features"] = sb.features
    out["status"] = sb.run(SandboxRequest("def solve():\\n    return {'h': [1]}")).status
out["doctor"] = check_sandbox()
print(json.dumps(out))
"""


def test_no_landlock_as_a_user_is_refused_unless_allowed():
    work = Path(tempfile.mkdtemp(prefix="evolve-unconfined-"))
    try:
        work.chmod(0o755)
        script = work / "run.py"
        script.write_text(SCRIPT)
        (work / "cases.json").write_text("{}")
        if os.geteuid() == 0:
            if not (shutil.which("setpriv") and shutil.which("unshare")):
                pytest.skip("needs util-linux to run as an ordinary user")
            from test_nonroot import _run_as_user

            out = _run_as_user(script, work)
        else:
            env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
            proc = subprocess.run(
                [sys.executable, str(script)], capture_output=True, text=True, timeout=240, env=env
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
            out = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert out["uid"] != 0
    refused = out["refused"]
    assert "sandbox.allow_unconfined_files=true" in refused and "\n" not in refused, refused
    assert out["features"]["landlock"] == 0 and not out["features"]["private_uid"], out
    assert any("allow_unconfined_files" in p for p in out["features"]["problems"]), out
    assert out["status"] == "ok"
    doctor = out["doctor"]
    assert doctor["works"], doctor
    assert "file isolation" in {m["layer"] for m in doctor["missing"]}, doctor
