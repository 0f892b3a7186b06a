"""evolve: discover algorithms and constructions by evolution with LLMs.

The child program only produces data; trusted code computes every score.
"""

import os

# litellm must never try the network for its price map; the copy it ships is used instead.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from evolve.evaluators.evaluation import Evaluation  # noqa: E402
from evolve.problem import Problem, ProblemError, list_problems, load_problem  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "Evaluation",
    "Problem",
    "ProblemError",
    "evaluate",
    "list_problems",
    "load_problem",
    "__version__",
]


def evaluate(problem: Problem, code: str, timeout: float | None = None, **kw) -> Evaluation:
    """Run `code` in the sandbox and score what it returns with `problem`'s trusted
    evaluator (evolve.evaluators.harness.evaluate_code: the one entry point from code to a
    score; for a heuristic problem, on every instance set)."""
    from evolve.evaluators.harness import evaluate_code

    return evaluate_code(problem, code, timeout, **kw)
