"""The check stage: compare one result with what is known and decide its verdict.

Order: a value beyond a proven bound (`contradicts_bound`, logged as an error: no valid result
can be there), rediscovery (canonical form equal to a published construction), then value
against the best known. A value that beats the best known by more than the tolerance becomes
`improves_known` only after every gate passes: the exact verifier accepts it and confirms the
value, and the program, re-run in a fresh sandbox, gives identical outputs. A result that fails
a gate keeps the reason and is never called an improvement.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evolve.evaluators.spec import OutputError
from evolve.literature.advisory import ask, build_prompt
from evolve.literature.canonical import canonical_form, canonical_source, same_form
from evolve.literature.known import KnownResult, KnownTable, known_table, strongest
from evolve.literature.verdict import Verdict

if TYPE_CHECKING:
    from evolve.evaluators.evaluation import Evaluation
    from evolve.problem import Problem

log = logging.getLogger(__name__)


def outcome(direction: str, score: float, reference: float, tolerance: float) -> str:
    """improves, matches or below: `score` against `reference`, with a relative tolerance."""
    tol = tolerance * max(1.0, abs(reference))
    diff = score - reference if direction == "max" else reference - score
    if diff > tol:
        return "improves"
    if diff >= -tol:
        return "matches"
    return "below"


def _compared(
    r: KnownResult, against: str, direction: str, score: float, tol: float
) -> dict[str, Any] | None:
    ref = strongest(r, direction)
    if ref is None:
        return None
    return {
        "against": against,
        "value": ref,
        "published": r.value,
        "citation": r.citation,
        "status": r.status,
        "note": r.note,
        "outcome": outcome(direction, score, ref, tol),
    }


def _outputs_differ(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> str:
    """Why two sets of outputs are not identical ('' if they are)."""
    if set(a) != set(b):
        return f"output names {sorted(a)} vs {sorted(b)}"
    for name in sorted(a):
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.shape != y.shape:
            return f"output {name!r} has shape {x.shape} then {y.shape}"
        if x.dtype.kind != y.dtype.kind:
            return f"output {name!r} has dtype {x.dtype} then {y.dtype}"
        if not np.array_equal(x, y):
            n = int(np.count_nonzero(x != y))
            return f"output {name!r} differs at {n} of {x.size} positions"
    return ""


def _verify(problem: Problem, outputs: dict[str, np.ndarray]) -> tuple[dict[str, Any] | None, str]:
    """Run the problem's exact verifier: (its Verification as a dict, or None; why it failed)."""
    fn = getattr(problem.evaluator_module, "verify", None)
    if not callable(fn):
        return (
            None,
            f"problem {problem.name} has no exact verifier (its evaluator.py defines no verify())",
        )
    try:
        ver = fn(outputs, dict(problem.params))
    except Exception as exc:  # a bug in the verifier: recorded, never an improvement
        return None, f"the exact verifier raised {type(exc).__name__}: {exc}"
    d = ver.to_dict() if hasattr(ver, "to_dict") else dict(vars(ver))
    if not d.get("valid"):
        return d, f"the exact verifier rejects the outputs: {d.get('reason') or 'no reason given'}"
    if d.get("value") is None or not math.isfinite(float(d["value"])):
        return d, "the exact verifier gave no finite value"
    return d, ""


def _rerun(
    problem: Problem,
    code: str,
    outputs: dict[str, np.ndarray],
    score: float,
    timeout_s: float | None = None,
) -> tuple[dict[str, Any], str]:
    """Re-run the child in a fresh sandbox (with the run's time limit, `timeout_s`, when given;
    else the problem's); (what happened, why it fails or '')."""
    from evolve.evaluators.harness import sandbox_request
    from evolve.sandbox import run

    res = run(sandbox_request(problem, code, timeout_s))
    info: dict[str, Any] = {"status": res.status, "wall_s": res.wall_s}
    if res.status != "ok":
        info["error"] = res.error
        return info, f"the re-run in a fresh sandbox ended with {res.status}: {res.error}"
    try:
        fresh = problem.check_outputs(res.outputs)
    except OutputError as exc:
        return info, f"the re-run returned unusable outputs: {exc}"
    why = _outputs_differ(outputs, fresh)
    info["identical"] = not why
    if why:
        info["difference"] = why
        return info, f"the re-run gave different outputs ({why}): the program is not deterministic"
    ev = problem.score(fresh)
    info["rescore"] = ev.score
    if not ev.valid or ev.score is None or ev.score != score:
        return (
            info,
            f"re-scoring the re-run's outputs gave {ev.score if ev.valid else ev.error}, not {score}",
        )
    return info, ""


def _unconfirmed(v: Verdict, matched_value: Any, why: str) -> Verdict:
    """A result that beats the known value but failed a gate: never called an improvement."""
    v.status, v.matched, v.unconfirmed_improvement = "matches_known", matched_value, True
    v.reason = why
    return v


def check(
    problem: Problem | str | Path,
    outputs: dict[str, Any],
    evaluation: Evaluation,
    *,
    code: str | None = None,
    rerun: bool = False,
    llm: str | None = None,
    llm_options: dict[str, Any] | None = None,
    timeout_s: float | None = None,
) -> Verdict:
    """Decide the verdict for a scored result.

    `outputs` are the child's outputs and `evaluation` their trusted (valid) evaluation. With
    `code` and `rerun=True`, an apparent improvement is re-run in a fresh sandbox before it can
    be `improves_known` (within `timeout_s`, the run's `sandbox.timeout_s`, when given). `llm` names a litellm model for an advisory note on prior work
    (`llm_options` may give api_base, api_key, timeout); it never changes the verdict.
    """
    if isinstance(problem, (str, Path)):
        from evolve.problem import load_problem

        problem = load_problem(problem)
    if not evaluation.valid or evaluation.score is None:
        raise ValueError(
            f"the literature check needs a valid evaluation; this one is {evaluation.status}: {evaluation.error}"
        )
    clean = problem.check_outputs(outputs)
    score = float(evaluation.score)
    table = known_table(problem)
    v = _verdict(problem, clean, score, table, code=code, rerun=rerun, timeout_s=timeout_s)
    if llm:
        opts = dict(llm_options or {})
        adv = ask(llm, build_prompt(problem, table, clean, score), **opts)
        v.advisory = adv.to_dict()
    return v


def _verdict(
    problem: Problem,
    outputs: dict[str, np.ndarray] | None,
    score: float,
    table: KnownTable,
    *,
    code: str | None,
    rerun: bool,
    no_outputs: str = "",
    timeout_s: float | None = None,
) -> Verdict:
    direction = table.direction or problem.direction
    v = Verdict(
        status="unreferenced",
        problem=problem.name,
        score=score,
        instance=table.instance,
        direction=direction,
        as_of=table.as_of,
        erdos_problem=table.erdos_problem,
        erdos_status=table.erdos.status if table.erdos else None,
        canonical=canonical_source(problem),
    )
    best = table.best
    if best is not None:
        v.best_known = best.number
        v.reference_value = strongest(best, direction)
        v.best_known_status = best.status
        v.bound_kind = best.bound_kind
        v.citation = best.citation
        if best.date and not v.as_of:
            v.as_of = best.date
    tol = problem.tolerance
    if v.reference_value is not None:
        comp = _compared(
            best,
            "verified" if best.status.startswith("verified") else "best_known",
            direction,
            score,
            tol,
        )
        v.compared_against = [comp] if comp else []
    for c in table.claimed:
        comp = _compared(c, "claimed", direction, score, tol)
        if comp:
            v.compared_against.append(comp)

    # 0. Beyond a proven bound: impossible for a valid result, so the evaluator, the instance
    # data or the bound is wrong. Checked first: nothing else about such a result is meaningful.
    bound = table.proven_bound
    if bound is not None and bound.number is not None:
        v.proven_bound, v.proven_bound_citation = bound.number, bound.citation
        if outcome(direction, score, bound.number, tol) == "improves":
            v.status = "contradicts_bound"
            inst = f" ({table.instance})" if table.instance else ""
            v.reason = f"check the evaluator and the data of {problem.name}{inst}"
            log.error("literature check: %s: %s", problem.name, v.message())
            return v

    # 1. Rediscovery: equal to a published construction under the problem's symmetries.
    if table.constructions and outputs is not None:
        mine = canonical_form(problem, outputs)
        for c in table.constructions:
            if same_form(canonical_form(problem, c.outputs), mine, problem.tolerance):
                v.status = "rediscovers_known"
                v.matched = {
                    "kind": "construction",
                    "file": c.file,
                    "name": c.name,
                    "attribution": c.attribution,
                    "value": c.value,
                }
                v.reason = f"equal to {c.file} under {v.canonical}, within the tolerance {problem.tolerance:g}"
                return v

    # 2. Value against the best known.
    if v.reference_value is None:
        if not table.sources:
            v.reason = f"problem {problem.name} has no known.yaml and no catalogue entry"
        elif best is None:
            inst = f" for instance {table.instance}" if table.instance else ""
            v.reason = f"no best known value{inst} in {', '.join(table.sources)}"
        else:
            v.reason = f"the best known value {best.value!r} is not a number"
        return v
    matched_value = {
        "kind": "value",
        "value": v.reference_value,
        "citation": best.citation,
        "status": best.status,
    }
    first = outcome(direction, score, v.reference_value, tol)
    if first == "matches":
        v.status, v.matched = "matches_known", matched_value
        return v
    if first == "below":
        v.status = "below_known"
        return v

    # 3. It beats the best known: every gate must pass before it is called an improvement.
    if outputs is None:
        return _unconfirmed(v, matched_value, no_outputs)
    ver, why = _verify(problem, outputs)
    v.verification = ver
    if ver is not None and not why:
        exact = float(ver["value"])
        again = outcome(direction, exact, v.reference_value, tol)
        if again != "improves":
            v.status = "matches_known" if again == "matches" else "below_known"
            v.matched = matched_value if again == "matches" else None
            v.reason = (
                f"the exact verifier gives {exact!r}, which does not beat {v.reference_value!r}"
            )
            return v
    elif ver is not None:  # rejected by the exact verifier: not a valid construction
        v.status, v.reason = "below_known", why
        return v
    if not why:
        if code is None:
            why = "no program was given to re-run"
        elif not rerun:
            why = "the re-run in a fresh sandbox was not requested"
        else:
            v.rerun, why = _rerun(problem, code, outputs, score, timeout_s)
    if why:
        return _unconfirmed(v, matched_value, why)
    v.status, v.reverified = "improves_known", True
    v.reason = f"re-run identical, exact verifier: {ver.get('method') or 'no method given'}"
    return v


def check_program(
    problem: Problem,
    db_path: str | Path,
    run_id: str,
    program_id: int,
    *,
    llm: str | None = None,
    llm_options: dict[str, Any] | None = None,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """The check for a program recorded in a run database (the engine calls it on each new best).

    The database keeps code and scores, not outputs, so the program is run again in a fresh
    sandbox to get them; an apparent improvement is then re-run once more (`rerun=True`), so
    two fresh runs must agree. Returns `Verdict.to_dict()` with `program_id` and, if the fresh
    score differs from the recorded one, a note in `reason`.
    """
    from evolve.evaluators.harness import sandbox_request
    from evolve.population.database import Database
    from evolve.sandbox import run

    db = Database(db_path, readonly=True)
    try:
        row = db.scored_program(run_id, program_id)
    finally:
        db.close()
    if row is None:
        raise ValueError(f"no program {program_id} in run {run_id!r} of {db_path}")
    code, recorded, valid = row
    if not valid or recorded is None:
        raise ValueError(f"program {program_id} has no valid score to check")
    table = known_table(problem)
    if problem.heuristic:
        verdict, metrics = check_heuristic(problem, code, table)
        d = verdict.to_dict()
        d["program_id"] = program_id
        d["metrics"] = {k: v for k, v in metrics.items() if not k.startswith("eval_")}
        return d
    res = run(sandbox_request(problem, code, timeout_s))  # the run's limit, not the problem's
    ev = problem.score(res.outputs) if res.status == "ok" else None
    if ev is None or not ev.valid or ev.score is None:
        why = res.error if res.status != "ok" else (ev.error if ev else "")
        v = _verdict(
            problem,
            None,
            float(recorded),
            table,
            code=code,
            rerun=True,
            no_outputs=f"running the program again gave no valid outputs ({res.status}: {why})",
            timeout_s=timeout_s,
        )
        if not v.reason:
            v.reason = f"running the program again gave no valid outputs ({res.status}: {why})"
    else:
        v = check(
            problem,
            res.outputs,
            ev,
            code=code,
            rerun=True,
            llm=llm,
            llm_options=llm_options,
            timeout_s=timeout_s,
        )
        if ev.score != float(recorded):
            note = f"the fresh run scores {ev.score!r}, the run recorded {float(recorded)!r}"
            v.reason = f"{v.reason}; {note}" if v.reason else note
            if v.status == "improves_known":  # the recorded result is not the one re-verified
                v.status, v.reverified, v.unconfirmed_improvement = "matches_known", False, True
                v.matched = {"kind": "value", "value": v.reference_value, "citation": v.citation}
    d = v.to_dict()
    d["program_id"] = program_id
    return d


def check_heuristic(
    problem: Problem, code: str, table: KnownTable | None = None
) -> tuple[Verdict, dict[str, float]]:
    """The check for a heuristic problem's program: scored afresh on every instance set, test
    included, twice in fresh sandboxes; the verdict compares the metric known.yaml names
    (`metric:`, default `test`) with the known values. Returns it with every metric.

    There is no construction to verify exactly: every decision was checked by trusted code, so
    the gate for `improves_known` is that the two fresh evaluations agree on every metric.
    """
    from evolve.evaluators.harness import evaluate_code

    table = table or known_table(problem)
    metric = table.metric or "test"
    first = evaluate_code(problem, code)
    if not first.valid:
        raise ValueError(
            f"the program failed when scored afresh on every set ({first.status}: {first.error})"
        )
    if metric not in first.metrics:
        raise ValueError(
            f"known.yaml names the metric {metric!r}, which {problem.name} does not report "
            f"(it reports {', '.join(sorted(k for k in first.metrics if not k.startswith('eval_')))})"
        )
    score = float(first.metrics[metric])
    v = _verdict(problem, None, score, table, code=code, rerun=True, no_outputs="re-run pending")
    v.reason = f"on {metric}" + (
        f"; {v.reason}" if v.reason and v.reason != "re-run pending" else ""
    )
    if v.unconfirmed_improvement:
        again = evaluate_code(problem, code)
        differ = sorted(
            k
            for k in first.metrics
            if not k.startswith("eval_") and again.metrics.get(k) != first.metrics[k]
        )
        if again.valid and not differ:
            v.status, v.reverified, v.unconfirmed_improvement = "improves_known", True, False
            v.reason = (
                f"on {metric}: two fresh evaluations on every instance agree; every decision "
                "was checked by the trusted evaluator"
            )
        else:
            v.reason = (
                f"on {metric}: a second fresh evaluation differs "
                f"({', '.join(differ) or again.error}): the program is not deterministic"
            )
    return v, first.metrics
