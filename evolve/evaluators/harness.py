"""The trusted-scoring harness: run a child in the sandbox, then score only what it returned."""

from __future__ import annotations

from typing import TYPE_CHECKING

from evolve.evaluators.evaluation import Evaluation
from evolve.sandbox import SandboxRequest, SandboxResult, run

if TYPE_CHECKING:
    from evolve.problem import Problem


def sandbox_request(problem: Problem, code: str, timeout: float | None = None) -> SandboxRequest:
    return SandboxRequest(
        code=code,
        entrypoint=problem.entrypoint,
        harness=problem.harness.read_text() if problem.harness else None,
        inputs=dict(problem.params),
        time_s=float(timeout if timeout is not None else problem.limits.time_s),
        memory_mb=problem.limits.memory_mb,
    )


def score_sandbox_result(problem: Problem, result: SandboxResult) -> Evaluation:
    """Turn a sandbox result into an Evaluation; only the arrays are ever scored."""
    timing = {
        "wall_s": result.wall_s,
        "cpu_s": result.cpu_s,
        "peak_memory_mb": result.peak_memory_mb,
    }
    if result.status != "ok":
        feedback = result.error
        if result.stderr_tail.strip():
            feedback += "\nstderr (tail):\n" + result.stderr_tail.strip()[-1000:]
        ev = Evaluation.failed(result.status, result.error or result.status, feedback=feedback)
    else:
        ev = problem.score(result.outputs)
    ev.metrics.update({f"eval_{k}": float(v) for k, v in timing.items()})
    if result.stdout_tail:
        ev.artifacts.setdefault("stdout_tail", result.stdout_tail[-1000:])
    return ev


def evaluate_code(problem: Problem, code: str, timeout: float | None = None) -> Evaluation:
    """Run `code` in a fresh sandbox process and score its outputs with the trusted evaluator."""
    try:
        compile(code, "program.py", "exec")
    except SyntaxError as exc:
        return Evaluation.failed("syntax_error", f"line {exc.lineno}: {exc.msg}")
    return score_sandbox_result(problem, run(sandbox_request(problem, code, timeout)))
