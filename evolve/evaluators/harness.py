"""The trusted-scoring harness: run a child in the sandbox, then score only what it returned."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from evolve.evaluators.evaluation import Evaluation
from evolve.evaluators.scoring import bounded_score
from evolve.sandbox import Sandbox, SandboxRequest, SandboxResult, default_sandbox

if TYPE_CHECKING:
    from evolve.problem import Problem


# What trusted code may hand a child as inputs, in all (the request travels as one JSON line).
MAX_INPUT_BYTES = 16 * 1024 * 1024


class InputError(ValueError):
    """A problem's trusted inputs hook returned something that cannot go to a child."""


def encode_inputs(inputs: dict[str, Any], limit: int = MAX_INPUT_BYTES) -> dict[str, Any]:
    """Inputs for the sandbox's data channel: numbers and strings as they are, numeric arrays
    in a JSON form the child side rebuilds (`_child.decode_inputs`); the total size capped."""
    out: dict[str, Any] = {}
    total = 0
    for key, value in inputs.items():
        if isinstance(value, (np.ndarray, list, tuple)):
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise InputError(
                    f"input {key!r} has dtype {arr.dtype}; only numeric arrays go to a child"
                )
            total += arr.nbytes
            value = {
                "__ndarray__": arr.dtype.str,
                "shape": list(arr.shape),
                "data": arr.ravel().tolist(),
            }
        elif isinstance(value, np.generic):
            value = value.item()
        elif not isinstance(value, (int, float, str, bool)) and value is not None:
            raise InputError(
                f"input {key!r} is a {type(value).__name__}; give numbers, strings or arrays"
            )
        else:
            total += len(str(value))
        if total > limit:
            raise InputError(
                f"the inputs for a child are over {limit} bytes (at {key!r}): give it a smaller "
                "instance, or only the arrays it needs"
            )
        out[key] = value
    return out


def sandbox_request(
    problem: Problem,
    code: str,
    timeout: float | None = None,
    inputs: dict[str, Any] | None = None,
) -> SandboxRequest:
    """The request that runs `code` on this problem: its params plus the trusted inputs (the
    evaluator's `inputs(params)` hook, or `inputs` given here, e.g. one instance)."""
    given = problem.child_inputs() if inputs is None else inputs
    return SandboxRequest(
        code=code,
        entrypoint=problem.entrypoint,
        harness=problem.harness.read_text() if problem.harness else None,
        inputs=encode_inputs({**problem.params, **given}),
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
        # In a scoring process of its own, killed past limits.score_time_s (score_timeout).
        ev = bounded_score(problem, result.outputs)
    ev.metrics.update({f"eval_{k}": float(v) for k, v in timing.items()})
    if result.stdout_tail:
        ev.artifacts.setdefault("stdout_tail", result.stdout_tail[-1000:])
    return ev


def evaluate_code(
    problem: Problem,
    code: str,
    timeout: float | None = None,
    *,
    sandbox: Sandbox | None = None,
    sets: tuple[str, ...] = ("train", "validation", "test"),
    context: dict[str, Any] | None = None,
    use_cascade: bool = False,
) -> Evaluation:
    """The one entry point from code to a trusted Evaluation: run `code` in the sandbox (this
    process's default one unless `sandbox` is given) and score what it returns.

    A heuristic problem's child runs on every instance of `sets` (train first, with the
    cascade if `use_cascade`; `context` holds the parent's and island best's metrics for the
    cascade's thresholds).
    """
    try:
        compile(code, "program.py", "exec")
    except SyntaxError as exc:
        return Evaluation.failed("syntax_error", f"line {exc.lineno}: {exc.msg}")
    except (ValueError, TypeError) as exc:  # null bytes in the source
        return Evaluation.failed("syntax_error", str(exc))
    box = sandbox or default_sandbox()
    if problem.heuristic:
        from evolve.evaluators.cascade import evaluate_instances

        return evaluate_instances(
            problem,
            code,
            box.run,
            sets=sets,
            context=context,
            timeout=timeout,
            use_cascade=use_cascade,
        )
    return score_sandbox_result(problem, box.run(sandbox_request(problem, code, timeout)))
