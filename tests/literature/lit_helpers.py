"""The tiny test problem used by the literature tests (importable as `lit_helpers`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

TINY_EVALUATOR = '''
"""Tiny test problem: the score is the number of entries; entries must be non-negative."""
import numpy as np
from evolve.evaluators import Evaluation
from evolve.evaluators.verification import Verification

def evaluate(outputs, params):
    x = outputs["x"]
    if np.any(x < 0):
        return Evaluation.failed("invalid", "negative entry")
    return Evaluation.ok(float(x.size), "max", metrics={"n": float(x.size)})
'''

TINY_VERIFY = """
def verify(outputs, params):
    x = [int(v) for v in outputs["x"]]
    if 7 in x:  # stands for a constraint only the exact check catches
        return Verification(False, method="integer arithmetic", reason="entry 7 is forbidden")
    if 13 in x:  # stands for a float score that the exact value does not bear out
        return Verification(True, 5.0, "5", "integer arithmetic", "exact value is 5")
    return Verification(True, float(len(x)), str(len(x)), "integer arithmetic", "")
"""

TINY_KNOWN = """
id: tiny_test
as_of: "2026-08"
direction: max
best_known:
  value: 5
  bound_kind: lower
  citation: "Test and Example, J. Tiny Problems 1 (2020)"
  date: "2020"
  status: verified_recomputed
claimed:
  - value: 7
    citation: "Dubious et al., arXiv:2501.00000 (2025)"
    date: "2025"
    status: disputed
    note: "the published data recomputes to 4"
history:
  - {value: 3, citation: "Folklore (1990)"}
  - {value: 5, citation: "Test and Example (2020)"}
constructions:
  - file: constructions/five.json
"""


def make_tiny_problem(root: Path, *, verify: bool = True, known: bool = True) -> Path:
    """A problem folder: maximise the length of a list of non-negative integers; known best 5."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "problem.yaml").write_text(
        textwrap.dedent(
            """
            name: test/tiny
            title: Tiny test problem
            direction: max
            tolerance: 0.0
            description: "Return x, a list of non-negative integers; the score is their number."
            outputs:
              x: {dtype: int, shape: [null], max_elements: 1000}
            limits: {time_s: 20, memory_mb: 1024}
            """
        )
    )
    (root / "initial.py").write_text(
        "import numpy as np\n\ndef solve():\n    return {'x': np.arange(3)}\n"
    )
    (root / "evaluator.py").write_text(TINY_EVALUATOR + (TINY_VERIFY if verify else ""))
    if known:
        (root / "known.yaml").write_text(TINY_KNOWN)
        (root / "constructions").mkdir(exist_ok=True)
        (root / "constructions" / "five.json").write_text(
            '{"attribution": "Test and Example (2020)", "published_value": 5, "data": {"x": [0, 1, 2, 3, 4]}}'
        )
    return root
