"""How the run's problem reaches each node, and what `ray.init` is given: no Ray needed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from evolve.cluster import (
    MAX_SHIPPED_BYTES,
    check_head_answers,
    load_problem_ref,
    pack_folder,
    problem_ref,
    ray_init_kwargs,
)
from evolve.engine.budget import RunError
from evolve.problem import ProblemError, load_problem

REPO = Path(__file__).resolve().parents[2]
MIN_OVERLAP = REPO / "problems" / "erdos" / "min_overlap"


def test_builtin_travels_by_name_and_resolves_where_the_path_is_missing():
    ref = problem_ref(load_problem("erdos/min_overlap"))
    assert ref["name"] == "erdos/min_overlap" and "files" not in ref
    # Another node, whose install lives elsewhere: the driver's path means nothing there.
    elsewhere = {**ref, "path": "/nonexistent/evolve/_data/problems/erdos/min_overlap"}
    assert load_problem_ref(elsewhere).path == MIN_OVERLAP.resolve()


def test_plugin_folder_travels_as_files(tmp_path):
    folder = tmp_path / "my_overlap"
    shutil.copytree(MIN_OVERLAP, folder)
    (folder / "__pycache__").mkdir(exist_ok=True)
    (folder / "__pycache__" / "evaluator.cpython-311.pyc").write_bytes(b"\0cache")
    ref = problem_ref(load_problem(folder))
    assert "name" not in ref and "evaluator.py" in ref["files"]
    assert not any("__pycache__" in f for f in ref["files"])
    shutil.rmtree(folder)  # as on a node that never had the folder
    p = load_problem_ref(ref)
    assert p.path != folder and (p.path / "evaluator.py").exists()
    assert p.score({"h": [0.5] * 10}).score == pytest.approx(0.5)  # its evaluator works
    assert load_problem_ref(ref).path == p.path  # unpacked once per node, then reused


def test_plugin_folder_too_big_to_ship_says_what_to_do(tmp_path):
    folder = tmp_path / "big"
    shutil.copytree(MIN_OVERLAP, folder)
    (folder / "data.bin").write_bytes(b"\0" * (MAX_SHIPPED_BYTES + 1))
    with pytest.raises(ProblemError, match="install it as a package on each node"):
        problem_ref(load_problem(folder))


def test_shipped_file_names_cannot_leave_the_folder():
    ref = problem_ref(load_problem("erdos/min_overlap"))
    files = {"../escape.py": b"x = 1\n"}
    with pytest.raises(ProblemError, match="leaves the problem folder"):
        load_problem_ref({**ref, "files": files})


def test_ray_init_is_given_only_what_joining_allows(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    local = ray_init_kwargs({"address": None, "num_cpus": 2})
    assert local["num_cpus"] == 2 and local["address"] == "local"
    joined = ray_init_kwargs({"address": "10.0.0.1:6379", "num_cpus": 2})
    assert joined["address"] == "10.0.0.1:6379"
    assert not {"num_cpus", "num_gpus", "object_store_memory", "resources"} & set(joined)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.2:6379")
    assert "num_cpus" not in ray_init_kwargs({"address": None, "num_cpus": 2})


def test_cluster_ray_joins_the_cluster_this_machine_belongs_to():
    r = subprocess.run(
        [sys.executable, "-m", "evolve.cli", "run", "cluster=ray", "--cfg", "job"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "cluster:\n  address: auto" in r.stdout


def test_same_files_under_two_names_unpack_to_two_folders(tmp_path):
    ref = problem_ref(load_problem("erdos/min_overlap"))
    files = pack_folder(MIN_OVERLAP)
    a = load_problem_ref({**ref, "files": files, "path": str(tmp_path / "a_name")})
    b = load_problem_ref({**ref, "files": files, "path": str(tmp_path / "b_name")})
    assert (a.path.name, b.path.name) == ("a_name", "b_name")


def test_shipped_problems_unpack_in_a_private_folder_of_this_user(tmp_path, monkeypatch):
    import os
    import stat

    import pytest

    from evolve.cluster import unpack_folder
    from evolve.problem import ProblemError

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    folder = unpack_folder({"problem.yaml": b"name: x\n"}, "x")
    root = tmp_path / f"evolve-problems-{os.getuid()}"
    assert folder.is_relative_to(root) and (folder / "problem.yaml").read_bytes() == b"name: x\n"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    # A folder others may write (as one planted in /tmp would be) is refused, not used.
    root.chmod(0o777)
    with pytest.raises(ProblemError, match="not a private folder"):
        unpack_folder({"problem.yaml": b"name: y\n"}, "y")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again once the socket is


def test_a_cluster_address_where_no_head_answers_is_an_error_not_a_hang() -> None:
    with socket.socket() as head:  # something listening: the check lets ray.init go on
        head.bind(("127.0.0.1", 0))
        head.listen()
        check_head_answers(f"127.0.0.1:{head.getsockname()[1]}")
    port = _closed_port()
    with pytest.raises(RunError, match=rf"no Ray head answers at 127.0.0.1:{port} .*ray start"):
        check_head_answers(f"127.0.0.1:{port}")
    for bad in ("nohost", "10.0.0.5:port", ":6379"):
        with pytest.raises(RunError, match="must be the head's HOST:PORT"):
            check_head_answers(bad)
    check_head_answers("auto")  # Ray's own to resolve
    check_head_answers("ray://10.0.0.5:10001")


def test_run_joining_a_head_that_is_not_there_stops_in_one_line(tmp_path) -> None:
    # ray.init would retry for ever, printing a warning every few seconds.
    port = _closed_port()
    r = subprocess.run(
        [sys.executable, "-m", "evolve.cli", "run", "cluster=ray",
         f"cluster.address=127.0.0.1:{port}", f"runs_dir={tmp_path}", "report.live=false"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"error: no Ray head answers at 127.0.0.1:{port}")
    assert "Traceback" not in r.stderr
