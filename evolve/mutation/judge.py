"""The judge: a second model that checks a proposed child before it runs.

After AlphaEvolve (a second model filters the proposer's suggestions) and AlphaResearch (each
idea scored before it is executed). The judge sees the problem, the parent's score, the edit
and the resulting block, and answers accept or reject with a short reason and a predicted
chance that the child beats its parent. A child whose predicted chance is below
`search.judge.threshold` is recorded as rejected with the judge's reason and never run; the
judge's calls are recorded and counted in costs and budgets like every call.

Offline the local provider judges deterministically (`evolve-local/judge`): an edit that
cannot change what the program computes (only comments, docstrings or layout change, or only
a name that nothing reads) gets chance 0; any other edit gets an uninformed 0.5.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

from evolve.program import find_blocks

LOCAL_JUDGE = "evolve-local/judge"
PARENT_HEADING = "## Parent program"
CHILD_HEADING = "## Proposed program"


@dataclass
class Judgement:
    """What the judge said about one child."""

    accept: bool
    p_improve: float
    reason: str
    parsed: bool = True  # False: the answer could not be read (the child is then accepted)


def build_messages(
    problem, parent_code: str, parent_score: float | None, diff: str, child_code: str
) -> list[dict[str, str]]:
    """The judge's prompt: the problem, the parent's score, the edit and the proposed program."""
    score = "invalid" if parent_score is None else f"{parent_score:.10g}"
    word = "lower" if problem.direction == "min" else "higher"
    user = (
        f"## Problem: {problem.title}\n{problem.description}\n\n"
        f"{PARENT_HEADING}\nScore: {score} ({word} is better)\n```python\n{parent_code.rstrip()}\n```\n\n"
        f"## The edit\n```diff\n{diff.rstrip()}\n```\n\n"
        f"{CHILD_HEADING}\n```python\n{child_code.rstrip()}\n```\n\n"
        "## Task\nWill the proposed program score better than its parent? Running it costs "
        "time, so reject edits that cannot help: no change in behaviour, a clear error, an "
        "idea already refuted by the parent's score. Answer with one JSON object and nothing "
        'else: {"verdict": "accept" or "reject", "p_improve": a probability from 0 to 1, '
        '"reason": "one sentence"}'
    )
    system = "You review proposed program edits before they are run. You are terse and calibrated."
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse(text: str | None) -> Judgement:
    """Read the judge's answer; an answer that cannot be read accepts the child (the judge is
    a filter, never a reason to lose a child to a formatting slip) and says so."""
    if not text:
        return Judgement(True, 0.5, "the judge gave no answer", parsed=False)
    for candidate in re.findall(r"\{.*?\}", text, flags=re.S) or []:
        try:
            d = json.loads(candidate)
        except ValueError:
            continue
        if not isinstance(d, dict):
            continue
        verdict = str(d.get("verdict", "")).strip().lower()
        try:
            p = float(d.get("p_improve"))
        except (TypeError, ValueError):
            p = 0.0 if verdict == "reject" else 0.5
        p = min(max(p, 0.0), 1.0) if p == p else 0.5  # NaN: uninformed
        reason = " ".join(str(d.get("reason", "")).split())[:300]
        if verdict in ("accept", "reject"):
            return Judgement(verdict == "accept", p, reason or verdict)
    return Judgement(True, 0.5, f"unreadable judge answer: {text.strip()[:120]!r}", parsed=False)


def _block_tree(code: str) -> str | None:
    """The blocks' syntax tree without docstrings, as text (None if it does not parse)."""
    try:
        blocks = find_blocks(code)
        src = "\n".join(code[b.start : b.end] for b in blocks) if blocks else code
        tree = ast.parse(src)
    except Exception:  # noqa: BLE001 - anything unparsable is judged on its own elsewhere
        return None
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(getattr(body[0], "value", None), ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body.pop(0)
    return ast.dump(tree, include_attributes=False)


def _dead_names(code: str) -> set[str]:
    """Names assigned in the program that nothing reads."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    stored, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (stored if isinstance(node.ctx, ast.Store) else loaded).add(node.id)
    return stored - loaded


def local_judgement(parent_code: str, child_code: str) -> Judgement:
    """The offline judge: 0 for an edit that cannot change what the program computes."""
    a, b = _block_tree(parent_code), _block_tree(child_code)
    if a is not None and a == b:
        return Judgement(False, 0.0, "only comments, docstrings or layout change")
    dead = _dead_names(child_code) & _dead_names(parent_code)
    if dead and a is not None and b is not None:
        # Same program once assignments to dead names are dropped: the edit touched only them.
        def without(code: str) -> str | None:
            tree = ast.parse(code)
            for node in ast.walk(tree):
                body = getattr(node, "body", None)
                if isinstance(body, list):
                    node.body = [
                        s
                        for s in body
                        if not (
                            isinstance(s, ast.Assign)
                            and all(isinstance(t, ast.Name) and t.id in dead for t in s.targets)
                        )
                    ] or [ast.Pass()]
            return ast.dump(tree, include_attributes=False)

        if without(parent_code) == without(child_code):
            return Judgement(
                False, 0.0, f"only {', '.join(sorted(dead))} changes, which nothing reads"
            )
    return Judgement(True, 0.5, "the edit changes what the program computes")


def local_answer(prompt: str) -> str:
    """The local provider's answer to a judge prompt (JSON, as a model would give)."""
    parent = _fenced_after(prompt, PARENT_HEADING)
    child = _fenced_after(prompt, CHILD_HEADING)
    if parent is None or child is None:
        j = Judgement(True, 0.5, "the prompt shows no parent and proposed program")
    else:
        j = local_judgement(parent, child)
    return json.dumps(
        {
            "verdict": "accept" if j.accept else "reject",
            "p_improve": j.p_improve,
            "reason": j.reason,
        }
    )


def _fenced_after(prompt: str, heading: str) -> str | None:
    at = prompt.find(heading)
    start = prompt.find("```python\n", at) if at >= 0 else -1
    end = prompt.find("\n```", start + 10) if start >= 0 else -1
    if start < 0 or end < 0:
        return None
    return prompt[start + len("```python\n") : end] + "\n"
