"""Trusted scoring has a time bound: past limits.score_time_s the child is `score_timeout` and
the worker goes on scoring the next child. Real processes throughout: the sandbox runs the
child, a scoring process of its own runs the problem's evaluator, and is killed at the limit."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest

import evolve
from evolve.evaluators.harness import evaluate_code
from evolve.evaluators.scoring import Scorer

SLOW_EVALUATOR = '''
"""Scores len(x); an entry of 1 stands for outputs that make the kernel run for minutes."""
import time
from evolve.evaluators import Evaluation

def evaluate(outputs, params):
    x = outputs["x"]
    if (x == 1).any():
        time.sleep(600)
    return Evaluation.ok(float(x.size), "max")
'''


@pytest.fixture
def slow_problem(tmp_path):
    root = tmp_path / "slow"
    root.mkdir()
    (root / "problem.yaml").write_text(
        textwrap.dedent("""
            name: test/slow_scoring
            title: A problem whose evaluator can be slow
            direction: max
            entrypoint: solve
            description: "Return {x: array}."
            outputs:
              x: {dtype: int, shape: [null], max_elements: 100}
            limits: {time_s: 20, memory_mb: 1024, score_time_s: 2}
        """)
    )
    (root / "evaluator.py").write_text(SLOW_EVALUATOR)
    (root / "initial.py").write_text(
        "# EVOLVE-BLOCK-START\ndef solve():\n    return {'x': [0, 2]}\n# EVOLVE-BLOCK-END\n"
    )
    return evolve.load_problem(root)


def test_a_slow_scoring_is_a_score_timeout_and_the_next_child_is_scored(slow_problem):
    assert slow_problem.limits.score_time_s == 2
    slow = evaluate_code(slow_problem, "def solve():\n    return {'x': [0, 1, 2]}\n")
    assert slow.status == "score_timeout" and not slow.valid, slow
    assert "limits.score_time_s" in slow.error and "\n" not in slow.error
    fine = evaluate_code(slow_problem, "def solve():\n    return {'x': [0, 2, 3, 4]}\n")
    assert fine.status == "ok" and fine.score == 4.0, fine


def test_the_scoring_process_is_killed_at_the_limit(slow_problem):
    scorer = Scorer(slow_problem)
    assert scorer.score({"x": np.array([5])}).score == 1.0
    pid = scorer.proc.pid
    assert scorer.score({"x": np.array([1])}).status == "score_timeout"
    assert scorer.proc is None
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left sleeping
        os.kill(pid, 0)
    assert scorer.score({"x": np.array([5, 6])}).score == 2.0  # a fresh process
    scorer.close()


def test_score_time_s_must_be_positive(tmp_path, slow_problem):
    yaml_file = slow_problem.path / "problem.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("score_time_s: 2", "score_time_s: 0"))
    with pytest.raises(evolve.ProblemError, match="score_time_s: must be positive"):
        evolve.load_problem(slow_problem.path)


KERNEL_MODULE = """
import numpy as np
from numba import njit

@njit(cache=True)
def total(x):
    s = 0.0
    for v in x:
        s += v
    return s
"""

LOAD_AND_REPORT = """
import importlib.util, json, sys
from evolve.evaluators.scoring import load_cached_kernels
spec = importlib.util.spec_from_file_location("kernels", sys.argv[1])
module = sys.modules["kernels"] = importlib.util.module_from_spec(spec)  # as Problem does
spec.loader.exec_module(module)
loaded = load_cached_kernels(module)
stats = module.total.stats
print(json.dumps({
    "loaded": loaded,
    "signatures": len(module.total.signatures),
    "hits": sum(stats.cache_hits.values()),
    "misses": sum(stats.cache_misses.values()),
}))
"""


def _kernels_report(path) -> dict:
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", LOAD_AND_REPORT, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cached_kernels_are_loaded_before_their_first_call_and_nothing_is_compiled(tmp_path):
    """The scoring process loads its evaluator's cached kernels before it says ready (the
    first score would otherwise pay for it); a kernel with nothing cached, or cached for a
    source that has since changed, is left to its first call: nothing is compiled ahead."""
    import subprocess
    import sys

    path = tmp_path / "kernels.py"
    path.write_text(KERNEL_MODULE)
    # Nothing cached yet: nothing loaded, nothing compiled.
    assert _kernels_report(path) == {"loaded": 0, "signatures": 0, "hits": 0, "misses": 0}
    # A first call in another process writes the cache.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, numpy as np; sys.path.insert(0, sys.argv[1]);"
            " import kernels; kernels.total(np.ones(3))",
            str(tmp_path),
        ],
        check=True,
        timeout=120,
    )
    # A new process loads it from the cache, before any call: a hit, never a compile.
    assert _kernels_report(path) == {"loaded": 1, "signatures": 1, "hits": 1, "misses": 0}
    # The source changed: its old machine code is not loaded (nor anything compiled).
    path.write_text(KERNEL_MODULE.replace("s += v", "s += 2 * v"))
    assert _kernels_report(path) == {"loaded": 0, "signatures": 0, "hits": 0, "misses": 0}
