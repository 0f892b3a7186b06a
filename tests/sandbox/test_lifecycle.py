"""The warm worker itself: isolation layers in force, restarts, threads, the .npz parser."""

from __future__ import annotations

import io
import os
import signal
import tempfile
import threading
import time
import zipfile

import numpy as np
import pytest

from evolve.sandbox import Sandbox, SandboxRequest
from evolve.sandbox.runner import read_npz

OK = "import numpy as np\ndef solve():\n    return {'h': np.arange(3.0)}\n"


@pytest.fixture(scope="module")
def sb():
    with Sandbox(preload=("numpy",)) as box:
        yield box


@pytest.mark.skipif(os.geteuid() != 0, reason="the full set of layers needs root")
def test_every_layer_is_on_by_default_as_root():
    with Sandbox(preload=("numpy",), strict=True) as box:
        f = box.features
        assert f["pid_namespace"] and f["network_namespace"] and f["mount_namespace"]
        assert f["private_uid"] and f["landlock"] >= 1 and f["seccomp"] and f["problems"] == []
        res = box.run(
            SandboxRequest("import os\ndef solve():\n    return {'h': [os.getpid(), os.getuid()]}")
        )
    pid, uid = res.outputs["h"].tolist()
    assert pid == 1 and uid >= 2_000_000  # PID 1 of its own namespace, an unprivileged uid


def test_restarts_after_the_server_is_killed_between_runs(sb):
    assert sb.run(SandboxRequest(OK)).status == "ok"
    old = sb.server_pid
    os.kill(old, signal.SIGKILL)
    time.sleep(0.05)
    res = sb.run(SandboxRequest(OK))
    assert res.status == "ok" and res.outputs["h"].tolist() == [0.0, 1.0, 2.0]
    assert sb.server_pid != old


def test_server_death_during_a_run_is_an_error_not_a_hang(sb):
    victim = sb.server_pid
    threading.Timer(0.3, os.kill, (victim, signal.SIGKILL)).start()
    # A hang would end at the child's time limit with another status and reason.
    res = sb.run(SandboxRequest("import time\ndef solve():\n    time.sleep(60)\n", time_s=60))
    assert res.status == "error" and "restarted" in res.error, res
    assert sb.run(SandboxRequest(OK)).status == "ok"
    time.sleep(0.2)
    # The dead server's children ran as uids 2_000_000 + 64 * server pid + 0..63: none is left.
    first = 2_000_000 + (victim % 1_000_000) * 64
    left = [p for p in os.listdir("/proc") if p.isdigit() and first <= _ppid_uid(p)[1] < first + 64]
    assert left == []


def _ppid_uid(pid: str) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
        if st["State"].strip().startswith("Z"):  # dead, waiting to be reaped by init
            return -1, -1
        return int(st["PPid"]), int(st["Uid"].split()[0])
    except (OSError, KeyError, ValueError):
        return -1, -1


def test_concurrent_callers_share_one_sandbox(sb):
    results = []

    def call(i: int) -> None:
        code = f"def solve():\n    return {{'h': [{i}.0]}}\n"
        results.append((i, sb.run(SandboxRequest(code))))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for i, _ in results) == list(range(6))
    for i, res in results:
        assert res.status == "ok" and res.outputs["h"].tolist() == [float(i)]


def test_syntax_error_and_missing_entrypoint(sb):
    res = sb.run(SandboxRequest("def solve(:\n"))
    assert res.status == "syntax_error" and "line 1" in res.error
    res = sb.run(SandboxRequest("def other():\n    pass\n"))
    assert res.status == "bad_output" and "no function solve()" in res.error


def test_harness_runs_inside_the_sandbox(sb):
    harness = "def run(program, inputs):\n    return {'h': [program['f'](inputs['x'])]}\n"
    res = sb.run(
        SandboxRequest("def f(x):\n    return x * 2.0\n", harness=harness, inputs={"x": 21})
    )
    assert res.status == "ok" and res.outputs["h"].tolist() == [42.0]


# --- the trusted-side parser, on bytes a child could forge ---------------------------------
def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_read_npz_round_trip():
    out = read_npz(_npz(h=np.arange(5.0), k=np.array([[1, 2], [3, 4]], dtype=np.int32)), 10**6)
    assert out["h"].tolist() == [0, 1, 2, 3, 4] and out["k"].dtype == np.int32
    assert out["h"].flags.writeable


def test_read_npz_refuses_a_compressed_bomb():
    buf = io.BytesIO()
    np.savez_compressed(buf, h=np.zeros(10**7))  # 80 MB of zeros in a few kB
    assert len(buf.getvalue()) < 200_000
    with pytest.raises(ValueError, match="unpack to over"):
        read_npz(buf.getvalue(), 10**6)


def test_read_npz_refuses_objects_and_strangers():
    buf = io.BytesIO()
    np.savez(buf, h=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="dtype object"):
        read_npz(buf.getvalue(), 10**6)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("evil.pkl", b"cos\nsystem\n")
    with pytest.raises(ValueError, match="unexpected member"):
        read_npz(zbuf.getvalue(), 10**6)


def test_children_naming_numba_are_served_by_the_server_that_has_it_imported():
    with Sandbox(preload=("numpy", "numba")) as box:
        assert len(box.server_pids) == 1  # the numba server starts when a child needs it
        # Not naming the module: the light server, where it was never imported.
        light = "import sys\ndef solve():\n    return {'h': [float('num' + 'ba' in sys.modules)]}\n"
        res = box.run(SandboxRequest(light))
        assert res.status == "ok" and res.outputs["h"].tolist() == [0.0], res
        # Naming it: imported before the program ran, and compiling works inside the sandbox.
        heavy = (
            "import sys\nPRE = 'numba' in sys.modules\nimport numba\n\n"
            "@numba.njit(cache=False)\ndef f(x):\n    return x + 1.0\n\n"
            "def solve():\n    numba.njit = None  # patched here, pristine for the next child\n"
            "    return {'h': [float(PRE), f(1.0)]}\n"
        )
        for _ in range(2):
            res = box.run(SandboxRequest(heavy))
            assert res.status == "ok" and res.outputs["h"].tolist() == [1.0, 2.0], res
        assert len(set(box.server_pids)) == 2
        assert box.features["network_namespace"] and box.restarts == 0


def test_a_readable_folder_under_tmp_stays_readable_behind_the_private_tmp(tmp_path):
    # A virtualenv or an interpreter under /tmp must not vanish behind the child's own /tmp.
    lib = tmp_path / "site"
    lib.mkdir()
    (lib / "evolve_tmp_module.py").write_text("VALUE = 41\n")
    assert str(lib).startswith("/tmp/")
    code = (
        f"import sys\nsys.path.insert(0, {str(lib)!r})\nimport evolve_tmp_module\n\n"
        "def solve():\n    return {'h': [evolve_tmp_module.VALUE + 1]}\n"
    )
    write = (
        f"def solve():\n    open({str(lib / 'x.py')!r}, 'w').write('x')\n    return {{'h': [1]}}\n"
    )
    with Sandbox(preload=("numpy",), read_paths=(str(lib),)) as box:
        res = box.run(SandboxRequest(code))
        assert res.status == "ok" and res.outputs["h"].tolist() == [42], res
        if box.features["mount_namespace"]:
            # The host's /tmp stays hidden: only the ways back to the folders attached again
            # (this one, and the clone or virtualenv when they live under /tmp) are there.
            with tempfile.NamedTemporaryFile(dir="/tmp", prefix="evolve-host-") as marker:
                probe = f"import os\ndef solve():\n    return {{'h': [os.path.exists({marker.name!r})]}}\n"
                res = box.run(SandboxRequest(probe))
            assert res.status == "ok" and res.outputs["h"].tolist() == [False], res
        res = box.run(SandboxRequest(write))
        assert res.status == "crash" and not (lib / "x.py").exists(), res


def test_numpy_random_is_preloaded_yet_fresh_in_every_child(sb):
    # The server imports numpy.random once (a child would pay ~13 ms for it); its global
    # generator must still differ between children, as it would after a fresh import.
    code = (
        "import sys\nimport numpy as np\n"
        "def solve():\n"
        "    was = 'numpy.random' in sys.modules\n"
        "    return {'h': [float(was), *np.random.rand(3)]}\n"
    )
    a, b = (sb.run(SandboxRequest(code)).outputs["h"] for _ in range(2))
    assert a[0] == 1.0 and b[0] == 1.0  # loaded before the program ran
    assert a[1:].tolist() != b[1:].tolist()
