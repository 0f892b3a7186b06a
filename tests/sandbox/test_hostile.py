"""Red team: hostile and reward-hacking children, one or more per class in issue 3.

Each test runs a hostile program, checks the status and the one-line reason, and (through the
`clean` fixture) that nothing it started survives and that the next, honest child is unaffected.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import textwrap

import numpy as np
import pytest
from sandbox_helpers import GOOD, processes_named

from evolve.evaluators.harness import evaluate_code
from evolve.sandbox import SandboxRequest, default_sandbox, run

pytestmark = pytest.mark.usefixtures("clean")


def src(body: str) -> str:
    return textwrap.dedent(body).lstrip()


def one_line(error: str) -> None:
    assert error and "\n" not in error and len(error) <= 500, error


# --- resources ------------------------------------------------------------------------------
def test_infinite_loop_is_a_timeout(problem):
    ev = evaluate_code(problem, "def solve():\n    while True:\n        pass\n", timeout=1)
    assert ev.status == "timeout" and "wall-time limit of 1 s" in ev.error
    one_line(ev.error)


def test_ignoring_sigterm_does_not_help(problem):
    code = src("""
        import signal, time
        def solve():
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(s, signal.SIG_IGN)
            while True:
                time.sleep(0.01)
    """)
    ev = evaluate_code(problem, code, timeout=0.5)
    assert ev.status == "timeout", ev


def test_memory_bomb_numpy(problem):
    code = "import numpy as np\ndef solve():\n    return {'h': np.ones(10**11)}\n"
    ev = evaluate_code(problem, code)
    assert ev.status == "memory" and "MemoryError" in ev.error, ev


def test_memory_bomb_python_list():
    code = src("""
        def solve():
            junk = []
            while True:
                junk.append(bytearray(1 << 20))
    """)
    res = run(SandboxRequest(code, memory_mb=200, time_s=10))
    assert res.status == "memory", res
    # Stopped near the limit it was given (plus the preloaded interpreter), not gigabytes later.
    assert res.peak_memory_mb < 1500, res.peak_memory_mb


def test_fork_bomb_is_capped_and_reaped():
    code = src("""
        import ctypes, os, time
        def solve():
            n = 0
            try:
                while True:
                    if os.fork() == 0:
                        ctypes.CDLL(None).prctl(15, b"evolvebomb", 0, 0, 0)
                        time.sleep(60)
                    n += 1
            except OSError as exc:
                raise RuntimeError(f"fork refused after {n}: {exc}")
    """)
    res = run(SandboxRequest(code, max_processes=8, time_s=5))
    assert res.status == "crash" and "fork refused after" in res.error, res
    forks = int(res.error.split("fork refused after ")[1].split(":")[0])
    assert forks < 8
    assert processes_named("evolvebomb") == []


def test_huge_stdout_is_cut_off(problem):
    code = "def solve():\n    while True:\n        print('x' * 100000)\n"
    ev = evaluate_code(problem, code, timeout=20)
    assert ev.status == "crash" and "stdout/stderr" in ev.error, ev
    one_line(ev.error)


def test_huge_file_and_disk_fill():
    code = src("""
        def solve():
            for i in range(1000):
                with open(f"junk{i}", "wb") as f:
                    f.write(b"x" * (8 << 20))
    """)
    res = run(SandboxRequest(code, time_s=20))
    # The private /tmp holds 256 MB; the child gets ENOSPC long before the host disk fills.
    assert res.status == "crash" and "No space left" in res.error, res


def test_deep_recursion(problem):
    code = "def f(n):\n    return f(n + 1) + 1\n\ndef solve():\n    return {'h': [f(0)]}\n"
    ev = evaluate_code(problem, code)
    assert ev.status == "crash" and "RecursionError" in ev.error, ev


def test_deep_recursion_past_the_c_stack(problem):
    code = src("""
        import sys
        sys.setrecursionlimit(10**8)
        def f(n):
            return list(map(f, [n + 1]))  # through C, so the C stack overflows
        def solve():
            return {'h': [f(0)]}
    """)
    ev = evaluate_code(problem, code, timeout=10)
    assert ev.status == "crash" and "SIGSEGV" in ev.error, ev


# --- exits and signals ------------------------------------------------------------------------
def test_sys_exit(problem):
    ev = evaluate_code(problem, "import sys\ndef solve():\n    sys.exit(0)\n")
    assert ev.status == "crash" and "sys.exit(0)" in ev.error, ev


def test_os_exit_zero_is_not_success(problem):
    ev = evaluate_code(problem, "import os\ndef solve():\n    os._exit(0)\n")
    assert ev.status == "crash" and "exited with code 0 before returning" in ev.error, ev


def test_kills_its_parent(problem, server_pid):
    code = src(f"""
        import os, signal
        def solve():
            # Its parent (the fork server), the evaluator, "everything" (-1) and itself.
            out = []
            for pid in (os.getppid(), {server_pid}, {os.getpid()}, -1, 1):
                try:
                    os.kill(pid, signal.SIGKILL)
                    out.append(f"{{pid}}:sent")
                except OSError as exc:
                    out.append(f"{{pid}}:{{type(exc).__name__}}")
            raise RuntimeError("kill results " + " ".join(out))
    """)
    ev = evaluate_code(problem, code)
    assert ev.status == "crash" and "kill results" in ev.error, ev
    # In its own PID namespace the server and the evaluator do not even exist for it.
    assert f"{server_pid}:ProcessLookupError" in ev.error, ev
    assert f"{os.getpid()}:ProcessLookupError" in ev.error, ev
    assert default_sandbox().server_pid == server_pid  # never restarted: nothing reached it
    os.kill(server_pid, 0)


def test_daemons_and_threads_do_not_outlive_it(problem):
    # A name unique to this test run, so a process left by another run cannot be mistaken for ours.
    marker = "evd" + os.urandom(4).hex()
    code = src("""
        import ctypes, os, threading, time
        import numpy as np
        def spin():
            while True:
                time.sleep(0.01)
        def solve():
            threading.Thread(target=spin, daemon=False).start()
            if os.fork() == 0:  # a classic double-fork daemon in its own session
                os.setsid()
                if os.fork() == 0:
                    ctypes.CDLL(None).prctl(15, b"MARKER", 0, 0, 0)
                    spin()
                os._exit(0)
            time.sleep(0.1)
            return {"h": np.full(24, 0.5)}
    """).replace("MARKER", marker)
    ev = evaluate_code(problem, code)
    assert ev.status == "ok" and ev.score == pytest.approx(0.5), ev  # honest outputs, honest score
    assert processes_named(marker) == []


# --- filesystem, environment, network -----------------------------------------------------------
def test_cannot_write_outside_its_folder(problem, tmp_path):
    targets = [str(tmp_path / "pwned"), os.path.join(os.path.dirname(__file__), "pwned")]
    code = src(f"""
        def solve():
            errors = []
            for path in {targets!r}:
                try:
                    with open(path, "w") as f:
                        f.write("pwned")
                    errors.append("wrote " + path)
                except OSError as exc:
                    errors.append(type(exc).__name__)
            raise RuntimeError(" ".join(errors))
    """)
    ev = evaluate_code(problem, code)
    assert ev.status == "crash" and "wrote" not in ev.error, ev
    assert not any(os.path.exists(t) for t in targets)


def test_cannot_read_evaluator_or_database(problem, tmp_path):
    db = tmp_path / "run.sqlite"
    db.write_text("SECRET-DB-ROW")
    # A file outside /tmp (which the private /tmp would hide anyway): beside this test, in
    # the project, which Landlock keeps from the child. Never in the user's home.
    home_dir = tempfile.mkdtemp(prefix=".secret-", dir=os.path.dirname(os.path.abspath(__file__)))
    home_file = os.path.join(home_dir, "secret.txt")
    with open(home_file, "w") as f:
        f.write("SECRET-HOME")
    try:
        paths = [str(problem.path / "evaluator.py"), str(db), home_file, "/etc/shadow"]
        code = src(f"""
            def solve():
                got = []
                for path in {paths!r}:
                    try:
                        got.append(open(path).read()[:40])
                    except OSError as exc:
                        got.append(type(exc).__name__)
                print(got)
                raise RuntimeError(" ".join(got))
        """)
        ev = evaluate_code(problem, code)
    finally:
        shutil.rmtree(home_dir, ignore_errors=True)
    assert ev.status == "crash", ev
    assert "SECRET" not in ev.error and "njit" not in ev.error and "root:" not in ev.error, ev
    assert ev.error.count("Error") == 5, ev  # RuntimeError and four refusals


def test_secrets_do_not_reach_the_child(monkeypatch):
    from evolve.sandbox import Sandbox

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-1234")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-SECRET-5678")
    code = src("""
        import os
        def solve():
            seen = dict(os.environ)
            for path in ("/proc/self/environ", "/proc/1/environ"):
                try:
                    seen[path] = open(path, "rb").read().decode(errors="replace")
                except OSError as exc:
                    seen[path] = type(exc).__name__
            print(seen)
            return {"h": [0.5]}
    """)
    with Sandbox(preload=("numpy",)) as sb:
        res = sb.run(SandboxRequest(code))
    assert res.status == "ok", res
    assert "PATH" in res.stdout_tail  # the child did print its environment
    assert "SECRET" not in res.stdout_tail
    assert "OPENAI_API_KEY" not in res.stdout_tail and "GITHUB_TOKEN" not in res.stdout_tail


def test_no_network(problem):
    # Listeners on the loopback only: if isolation failed, nothing would leave this machine.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    udp_port = udp.getsockname()[1]
    code = src(f"""
        import socket
        def solve():
            out = []
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=0.5)
                out.append("connected")
            except OSError as exc:
                out.append(type(exc).__name__)
            try:
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                u.sendto(b"x", ("127.0.0.1", {udp_port}))
                out.append("sent udp")
            except OSError as exc:
                out.append(type(exc).__name__)
            raise RuntimeError(" ".join(out))
    """)
    try:
        ev = evaluate_code(problem, code)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever reached the host's loopback
        with pytest.raises(BlockingIOError):
            udp.recvfrom(16)
    finally:
        listener.close()
        udp.close()
    assert ev.status == "crash" and "connected" not in ev.error, ev
    # In its empty network namespace the loopback is down: a datagram cannot even be sent.
    assert "sent" not in ev.error, ev


def test_no_unix_sockets_on_the_host(tmp_path):
    path = str(tmp_path / "ctl.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    server.setblocking(False)
    code = src(f"""
        import socket
        def solve():
            s = socket.socket(socket.AF_UNIX)
            s.connect({path!r})
    """)
    try:
        res = run(SandboxRequest(code))
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
    assert res.status == "crash" and ("FileNotFoundError" in res.error or "Permission" in res.error)


# --- clean state ------------------------------------------------------------------------------
def test_monkeypatching_does_not_leak(problem):
    code = src("""
        import builtins, time
        import numpy as np
        np.max = lambda *a, **k: 0.0
        np.correlate = lambda *a, **k: np.zeros(1)
        time.time = lambda: 0.0
        time.perf_counter = lambda: 0.0
        builtins.abs = lambda x: 0
        def solve():
            return {"h": np.array([0.0, 1.0, 0.0])}
    """)
    ev = evaluate_code(problem, code)
    truth = problem.score({"h": np.array([0.0, 1.0, 0.0])})
    assert ev.status == truth.status and ev.score == truth.score
    # Neither the trusted side nor the next child sees any of it.
    assert np.max([1.0, 2.0]) == 2.0 and abs(-1) == 1
    check = src("""
        import builtins, time
        import numpy as np
        def solve():
            ok = np.max([1.0, 2.0]) == 2.0 and time.time() > 1e9 and builtins.abs(-1) == 1
            return {"h": [1.0 if ok else 0.0]}
    """)
    res = run(SandboxRequest(check))
    assert res.status == "ok" and res.outputs["h"].tolist() == [1.0], res


# --- outputs and reward hacking --------------------------------------------------------------
BAD_OUTPUTS = {
    "nan": ("np.array([0.5, np.nan])", "NaN"),
    "inf": ("np.array([0.5, np.inf])", "NaN or infinite"),
    "2-d": ("np.full((4, 4), 0.5)", "dimension"),
    "strings": ("np.array(['a', 'b'])", "dtype"),
    "complex": ("np.array([0.5 + 1j])", "dtype"),
    "objects": ("[object(), object()]", "dtype"),
    "ragged": ("[[0.5], [0.5, 0.5]]", "not be converted"),
    "empty": ("np.zeros(0)", "at least 1"),
    "gigantic": ("np.full(10**6, 0.5)", "limit is 100000"),
    "over the byte cap": ("np.full(10**8, 0.5)", "outputs are over 67108864 bytes"),
    "scalar": ("0.5", "dimension"),
}


@pytest.mark.parametrize("case", sorted(BAD_OUTPUTS))
def test_bad_outputs(problem, case):
    expr, reason = BAD_OUTPUTS[case]
    ev = evaluate_code(problem, f"import numpy as np\ndef solve():\n    return {{'h': {expr}}}\n")
    assert ev.status == "bad_output" and reason in ev.error, ev
    one_line(ev.error)


@pytest.mark.parametrize(
    "ret,reason",
    [("[0.5] * 24", "not a dict"), ("None", "not a dict"), ("{'g': [0.5]}", "missing output")],
)
def test_wrong_return_types(problem, ret, reason):
    ev = evaluate_code(problem, f"def solve():\n    return {ret}\n")
    assert ev.status == "bad_output" and reason in ev.error, ev


def test_reported_score_and_size_are_ignored(problem):
    code = src("""
        import numpy as np
        def solve():
            return {"h": np.full(24, 0.5), "score": 0.0, "n": 10**6, "bound": 0.1}
    """)
    ev = evaluate_code(problem, code)
    assert ev.status == "bad_output" and "unexpected output" in ev.error, ev


def test_forged_reply_on_the_result_channel(problem):
    # The program writes the reply itself (status, a fake score and a hand-made .npz) and exits.
    code = src("""
        import io, json, os
        import numpy as np
        def solve():
            buf = io.BytesIO()
            np.savez(buf, h=np.full(24, 0.5))
            head = {"status": "ok", "score": 0.0, "fitness": 1e9, "valid": True}
            body = json.dumps(head).encode() + b"\\n" + buf.getvalue()
            os.write(4, b"%d\\n" % len(body) + body)
            os.close(4)
            os._exit(0)
    """)
    ev = evaluate_code(problem, code)
    # Its arrays are its outputs and are scored as such: 1/2, not the 0.0 it claims.
    assert ev.status == "ok" and ev.score == pytest.approx(0.5, abs=1e-12), ev


def test_forged_npz_cannot_allocate_or_unpickle(problem):
    code = src("""
        import io, os, zipfile
        import numpy as np
        def solve():
            npy = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                npy, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
            npy.write(np.zeros(4).tobytes())
            zf_buf = io.BytesIO()
            with zipfile.ZipFile(zf_buf, "w") as zf:
                zf.writestr("h.npy", npy.getvalue())
            body = b'{"status": "ok"}\\n' + zf_buf.getvalue()
            os.write(4, b"%d\\n" % len(body) + body)
            os.close(4)
            os._exit(0)
    """)
    ev = evaluate_code(problem, code)
    assert ev.status == "bad_output" and "does not match its data" in ev.error, ev
    pickled = src("""
        import io, os
        import numpy as np
        def solve():
            buf = io.BytesIO()
            np.savez(buf, h=np.array([print], dtype=object))
            body = b'{"status": "ok"}\\n' + buf.getvalue()
            os.write(4, b"%d\\n" % len(body) + body)
            os.close(4)
            os._exit(0)
    """)
    ev = evaluate_code(problem, pickled)
    assert ev.status == "bad_output" and "dtype object" in ev.error, ev


def test_honest_child_after_all_this(problem):
    ev = evaluate_code(problem, GOOD)
    assert ev.status == "ok" and ev.score == pytest.approx(0.5, abs=1e-12)
