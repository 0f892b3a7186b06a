"""The sandbox run by an ordinary user: a user namespace instead of root, no private uid.

Most researchers run evolve as themselves, not as root. The test suite runs as root here, so
this test starts a real Python process as uid 1000 (setpriv) and runs hostile children
through a Sandbox there. Where the interpreter lives under a home only root may enter
(/root/.pyenv), the process gets a private mount namespace in which that home is
traversable; nothing on the machine changes.
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

import evolve

UID = 1000
REPO = Path(evolve.__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process as another user"),
    pytest.mark.skipif(
        not (shutil.which("setpriv") and shutil.which("unshare")), reason="needs util-linux"
    ),
]

CASES = {
    "ok": "import os\ndef solve():\n    return {'h': [os.getpid(), os.getuid()]}",
    "network": (
        "import socket\ndef solve():\n"
        "    socket.create_connection(('127.0.0.1', 22), timeout=1)\n    return {'h': [1]}"
    ),
    "secret": "import os\ndef solve():\n    return {'h': [float('SECRET_TOKEN' in os.environ)]}",
    "read_repo": f"def solve():\n    open({str(REPO / 'README.md')!r}).read()\n    return {{'h': [1]}}",
    "write_outside": "def solve():\n    open('/var/tmp/evolve-x', 'w').write('x')\n    return {'h': [1]}",
    "private_tmp": (
        "import os\ndef solve():\n    open('f', 'w').write('x')\n    st = os.statvfs('.')\n"
        "    return {'h': [len(os.listdir('.')), st.f_blocks * st.f_frsize / 2**20]}"
    ),
    "fork_bomb": (
        "import os, time\ndef solve():\n    n = 0\n    try:\n        while True:\n"
        "            if os.fork() == 0:\n                time.sleep(30)\n                os._exit(0)\n"
        "            n += 1\n    except OSError as e:\n        return {'h': [n, e.errno]}"
    ),
    "capabilities": "import socket\ndef solve():\n    socket.sethostname('x')\n    return {'h': [1]}",
    # A user namespace inside its own, and with it namespaced admin capabilities: seccomp.
    "nested_userns": (
        "import ctypes\ndef solve():\n    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    ret = libc.unshare(ctypes.c_int(0x10000000 | 0x04000000))\n"
        "    return {'h': [ret, ctypes.get_errno()]}"
    ),
    "daemon": (
        "import os, time\ndef solve():\n    if os.fork() == 0:\n        os.setsid()\n"
        "        if os.fork() == 0:\n            time.sleep(60)\n        os._exit(0)\n"
        "    time.sleep(0.2)\n    return {'h': [1]}"
    ),
}

SCRIPT = """
import json, os, sys, time
from evolve.sandbox import Sandbox, SandboxRequest
cases = json.loads(open(sys.argv[1]).read())
out = {"uid": os.getuid()}
with Sandbox(preload=("numpy",)) as sb:
    out["features"] = sb.features
    for name, code in cases.items():
        r = sb.run(SandboxRequest(code, time_s=10))
        out[name] = [r.status, r.error, {k: v.tolist() for k, v in r.outputs.items()}]
    time.sleep(0.5)
    keep = {os.getpid(), *sb.server_pids}
    survivors = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            st = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
        except OSError:
            continue
        if int(st["Uid"].split()[0]) != os.getuid() or st["State"].strip().startswith("Z"):
            continue
        if int(pid) not in keep and int(st["PPid"]) not in sb.server_pids:
            survivors.append(pid)  # not this script, a server, or a spare child
    out["survivors"] = survivors
print(json.dumps(out))
"""


def _closed_ancestor(path: Path) -> Path | None:
    """The first folder on `path` that other users may not enter (e.g. /root), if any."""
    for parent in reversed(path.parents):
        if not os.stat(parent).st_mode & 0o001:
            return parent
    return None


def _run_as_user(script: Path, work: Path) -> dict:
    python = Path(sys.executable)
    setup = []
    # A virtualenv's python is a symlink, often into a home other users may not enter.
    real = python.resolve()
    closed = _closed_ancestor(real)
    if closed is not None:
        # In a private mount namespace: stage the way to the interpreter, cover the closed
        # folder with an enterable tmpfs, and put the way back.
        inner = closed / real.relative_to(closed).parts[0]
        stage = work / "stage"
        stage.mkdir()
        setup = [
            f"mount --bind {inner} {stage}",
            f"mount -t tmpfs -o mode=0711 none {closed}",
            f"mkdir -p {inner}",
            f"mount --bind {stage} {inner}",
        ]
    if _closed_ancestor(REPO / "evolve") is not None:
        pytest.skip(f"{REPO} is not readable by other users")
    env = (
        f"env -i PATH=/usr/bin:/bin HOME={work} SECRET_TOKEN=sk-should-not-leak "
        f"PYTHONPATH={REPO} LITELLM_LOCAL_MODEL_COST_MAP=True"
    )
    run = (
        f"cd {work} && exec setpriv --reuid={UID} --regid={UID} --clear-groups {env} "
        f"{python} {script} {work / 'cases.json'}"
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec", " && ".join([*setup, run])],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_layer_but_the_private_uid_holds_for_an_ordinary_user():
    work = Path(tempfile.mkdtemp(prefix="evolve-nonroot-"))
    try:
        work.chmod(0o755)
        script = work / "run.py"
        script.write_text(SCRIPT)
        (work / "cases.json").write_text(json.dumps(CASES))
        out = _run_as_user(script, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    f = out["features"]
    assert out["uid"] == UID
    assert f["user_namespace"] and f["pid_namespace"] and f["network_namespace"], f
    assert f["mount_namespace"] and f["landlock"] >= 1 and not f["private_uid"], f
    assert f["seccomp"] and f["problems"] == [], f
    assert out["ok"][0] == "ok" and out["ok"][2]["h"] == [1, UID], out  # PID 1, still the user
    assert out["network"][0] == "crash", out["network"]
    assert out["secret"][2]["h"] == [0.0]
    # Landlock denies it, or (a project under /tmp) the private /tmp hides it.
    status, error, _ = out["read_repo"]
    assert status == "crash" and ("Permission denied" in error or "No such file" in error), error
    assert out["write_outside"][0] == "crash", out["write_outside"]
    assert out["private_tmp"][2]["h"] == [1.0, 256.0]  # a fresh, size-capped tmpfs of its own
    forks, errno = out["fork_bomb"][2]["h"]
    assert out["fork_bomb"][0] == "ok" and forks < 64 and errno == 11  # RLIMIT_NPROC per namespace
    assert "Operation not permitted" in out["capabilities"][1]  # no capabilities left
    assert out["nested_userns"][2]["h"] == [-1, 1], out["nested_userns"]  # EPERM
    assert out["daemon"][0] == "ok"
    assert out["survivors"] == []  # the daemon and the fork bomb died with their namespaces
