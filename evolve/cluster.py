"""Running on a Ray cluster: joining it, naming its nodes, and getting the problem to each node.

A run either starts Ray on this machine or joins a running cluster; `ray.init` refuses the
start-up arguments (CPUs, object store size) when joining, so they are passed only when
starting. Every node resolves the run's problem on its own: a built-in or an installed plug-in
by name through that node's own evolve install, and a plug-in folder given by path (installed
nowhere) travels with the run as its files, unpacked once per node into a temporary folder, so
no node ever assumes a shared filesystem.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import os
import socket
import stat
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from evolve.problem import Problem, ProblemError, list_problems, load_problem

log = logging.getLogger(__name__)

# A plug-in folder is sent to every actor that loads it; anything larger belongs in a package
# installed on each node (entry point `evolve.problems`).
MAX_SHIPPED_BYTES = 20 * 1024 * 1024
_SKIPPED_DIRS = {"__pycache__", ".git", "runs"}
_SKIPPED_SUFFIXES = (".pyc", ".nbi", ".nbc")


# --- Ray ------------------------------------------------------------------------------------
def ray_init_kwargs(cluster: dict[str, Any]) -> dict[str, Any]:
    """Arguments for `ray.init` that are valid for what it will do: start or join."""
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": bool(cluster.get("log_to_driver", False)),
        "logging_level": logging.ERROR,  # Ray's start-up notices are not for the run's console
    }
    address = joined_address(cluster)
    if address:
        # Joining: the cluster's nodes already fixed their CPUs and object store.
        kwargs["address"] = address
    else:
        # A Ray of this run's own: ray.init() alone would silently join any cluster that
        # `ray start` left running on this machine; joining is what cluster.address is for.
        kwargs["address"] = "local"
        if cluster.get("num_cpus"):
            kwargs["num_cpus"] = int(cluster["num_cpus"])
    return kwargs


def joined_address(cluster: dict[str, Any]) -> str | None:
    """The running cluster a run joins (cluster.address, else $RAY_ADDRESS); None: the run
    starts a Ray of its own on this machine."""
    return cluster.get("address") or os.environ.get("RAY_ADDRESS") or None


def init_ray(cluster: dict[str, Any]) -> bool:
    """Start or join Ray; returns True if this call connected (and so should disconnect)."""
    import ray

    if ray.is_initialized():  # a sweep job running as a Ray task: already inside the cluster
        return False
    kwargs = ray_init_kwargs(cluster)
    if kwargs["address"] != "local":
        check_head_answers(kwargs["address"])
    lean = kwargs["address"] == "local" and bool(cluster.get("lean_start", True))
    with _lean_start(kwargs["log_to_driver"]) if lean else contextlib.nullcontext():
        ray.init(**kwargs)
    return True


HEAD_PROBE_S = 5.0  # a head on the network answers a TCP connect well within this


def check_head_answers(address: str, timeout_s: float = HEAD_PROBE_S) -> None:
    """Raise RunError, saying what to fix, if nothing listens at a joined cluster's HOST:PORT.

    Given an address where no head runs, `ray.init` retries for ever, printing a warning every
    few seconds; one TCP connect tells a typo or a head that is down in seconds. "auto" (the
    head this machine's `ray start` recorded) and Ray Client addresses (ray://) are Ray's to
    resolve."""
    from evolve.engine.budget import RunError

    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RunError(
            f"cluster.address {address!r} must be the head's HOST:PORT (e.g. 10.0.0.5:6379, "
            "as `ray start --head` prints it), auto, or ray://HOST:PORT"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise RunError(
            f"no Ray head answers at {address} ({why}): start one there with `ray start "
            f"--head --port={port}`, or set cluster.address (or $RAY_ADDRESS) to the address "
            "its `ray start` printed"
        ) from exc


# Ray's head processes that a run's own Ray never uses (cluster.lean_start), by the Node method
# that starts each. With the dashboard off, Ray still starts its API server (only its
# usage-statistics module loaded) and waits for it before starting the raylet; the monitor is
# the autoscaler, which a single machine has nothing to scale with; the log monitor streams
# workers' output to the driver, which only log_to_driver shows. Measured on this 2-core
# machine: 1.5 s off the path to the first child and about 3.5 s of CPU at start-up.
# Each with the parameters it has in the Ray this was written against (2.60).
_UNUSED_HEAD_PROCESSES = {
    "start_api_server": {"self", "include_dashboard", "raise_on_failure"},
    "start_monitor": {"self"},
    "start_log_monitor": {"self"},
}


@contextlib.contextmanager
def _lean_start(log_to_driver: bool):
    """While Ray starts a run's own head here: skip the head processes it would start but the
    run never uses. Only on a Ray whose start-up has the shape this was written against (each
    method there, with the parameters it is known by); on any other, Ray starts in full, as
    `ray.init` alone would."""
    from ray._private import node

    skipped = [
        m for m in _UNUSED_HEAD_PROCESSES if not (log_to_driver and m == "start_log_monitor")
    ]
    originals = {m: getattr(node.Node, m, None) for m in skipped}
    known = all(
        callable(fn) and set(inspect.signature(fn).parameters) == _UNUSED_HEAD_PROCESSES[m]
        for m, fn in originals.items()
    )
    if not known:
        import ray

        log.info("Ray %s starts its head differently: started in full", ray.__version__)
        yield
        return
    for m in skipped:
        setattr(node.Node, m, _skip_process)
    try:
        yield
    finally:
        for m, fn in originals.items():
            setattr(node.Node, m, fn)


def _skip_process(self, **_: Any) -> None:
    """Stands in for a Node method that starts a head process the run does not use."""
    return None


def node_id() -> str:
    """The Ray node this process runs on (a hex id; one per raylet, so two nodes on one
    machine differ where their hostname would not)."""
    import ray

    return ray.get_runtime_context().get_node_id()


# --- the problem on every node ----------------------------------------------------------------
def problem_ref(problem: Problem) -> dict[str, Any]:
    """How an actor on any node finds `problem`: its name when every install knows it (a
    built-in, an installed plug-in), else the folder's files."""
    ref: dict[str, Any] = {"path": str(problem.path), "params": dict(problem.params)}
    if problem.inputs_cache is not None:
        ref["inputs"] = problem.inputs_cache  # computed once by the driver, not by every actor
    here = problem.path.resolve()
    for name, folder in list_problems():
        if folder.resolve() == here:
            ref["name"] = name
            return ref
    ref["files"] = pack_folder(problem.path)
    return ref


def load_problem_ref(ref: dict[str, Any]) -> Problem:
    """The problem a `problem_ref` names, loaded on this node."""
    if ref.get("files"):
        folder: str | Path = unpack_folder(ref["files"], Path(ref["path"]).name)
    elif (Path(ref["path"]) / "problem.yaml").exists():
        folder = ref["path"]  # the same install (or this very machine): the very files checked
    else:
        folder = ref["name"]  # another node: its own install of the same evolve
    problem = load_problem(folder, ref.get("params"))
    if ref.get("inputs") is not None:
        problem.inputs_cache = ref["inputs"]
    return problem


def pack_folder(folder: Path) -> dict[str, bytes]:
    """A problem folder's files (relative POSIX path -> bytes), without caches."""
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(p in _SKIPPED_DIRS or p.startswith(".") for p in rel.parts):
            continue
        if not path.is_file() or path.suffix in _SKIPPED_SUFFIXES:
            continue
        data = path.read_bytes()
        total += len(data)
        if total > MAX_SHIPPED_BYTES:
            raise ProblemError(
                f"problem folder {folder} holds over {MAX_SHIPPED_BYTES // 2**20} MB, too much to "
                "send to every node with the run: install it as a package on each node "
                "(entry point group `evolve.problems`) instead"
            )
        files[rel.as_posix()] = data
    return files


def _private_root() -> Path:
    """This user's folder for shipped problems: evaluator code is loaded from it, so it must
    be ours and writable by no one else (a folder another user made in /tmp is refused)."""
    uid = os.getuid()
    root = Path(tempfile.gettempdir()) / f"evolve-problems-{uid}"
    root.mkdir(mode=0o700, exist_ok=True)
    st = root.lstat()
    if stat.S_ISLNK(st.st_mode) or st.st_uid != uid or st.st_mode & 0o022:
        raise ProblemError(
            f"{root} is not a private folder of this user (owner uid {st.st_uid}, mode "
            f"{stat.S_IMODE(st.st_mode):o}); shipped problem code will not be loaded from it: "
            "remove it, or set TMPDIR to a folder of your own"
        )
    return root


def unpack_folder(files: dict[str, bytes], name: str) -> Path:
    """Write shipped problem files once per node (keyed by their content) and return the folder."""
    name = name or "problem"
    digest = hashlib.sha256(name.encode() + b"\0")
    for rel in sorted(files):
        digest.update(rel.encode() + b"\0" + files[rel] + b"\0")
    home = _private_root() / digest.hexdigest()[:20]
    folder = home / name
    if (home / ".complete").exists():
        return folder
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=home, prefix=".unpack-"))
    for rel, data in files.items():
        parts = PurePosixPath(rel).parts
        if PurePosixPath(rel).is_absolute() or ".." in parts:
            raise ProblemError(f"shipped problem file {rel!r} leaves the problem folder")
        target = staging.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    try:
        staging.rename(folder)  # atomic: a second actor on this node finds all files or none
    except OSError:  # another actor unpacked the same files first
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    (home / ".complete").touch()
    return folder
