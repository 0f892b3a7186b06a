"""The meta-scratchpad: what worked and what failed so far, as a note later prompts carry.

After ShinkaEvolve's meta-scratchpad and AlphaEvolve's meta-prompting. Every
`search.scratchpad.every` evaluations the run's recent children (their diffs, scores against
their parents, statuses and failure reasons) are digested: which kinds of edits improved,
which failed and why. With a model the digest and examples go to it and its answer is the note
(the call recorded and costed like every call); offline the local provider answers with the
digest itself, deterministic. Each version of the note is stored with the evaluation count
where it began; `evolve show` prints it.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

DIGEST_HEADING = "## Digest"
EXAMPLES_HEADING = "## Examples"
NOTES_HEADING = "## Notes from this run so far"
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+\.?\d*(?:[eE][-+]?\d+)?")


def edit_kind(diff: str) -> str:
    """What an edit changed: 'constants' (numbers only), 'operators', or 'structure'."""
    removed = [
        ln[1:] for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")
    ]
    added = [ln[1:] for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    if not removed and not added:
        return "none"
    if len(removed) != len(added):
        return "structure"
    strip = [
        (_NUMBER.sub("N", a), _NUMBER.sub("N", b)) for a, b in zip(removed, added, strict=True)
    ]
    if all(a == b for a, b in strip):
        return "constants"
    ops = re.compile(r"[+\-*/<>=%]+|\b(min|max|sin|cos|floor|ceil)\b")
    if all(ops.sub("O", a) == ops.sub("O", b) for a, b in strip):
        return "operators"
    return "structure"


def digest(children: list[dict[str, Any]], direction: str) -> str:
    """A deterministic summary of recent children: each a dict with diff, status, reason,
    score and parent_score (scores in the problem's own direction)."""
    if not children:
        return "No children yet."
    better = (lambda a, b: a > b) if direction == "max" else (lambda a, b: a < b)
    tried: Counter = Counter()
    improved: Counter = Counter()
    failed: Counter = Counter()
    reasons: Counter = Counter()
    for c in children:
        kind = edit_kind(c.get("diff") or "")
        tried[kind] += 1
        if c.get("status") == "ok":
            s, p = c.get("score"), c.get("parent_score")
            if s is not None and p is not None and better(s, p):
                improved[kind] += 1
        elif c.get("status") not in (None, "rejected"):
            failed[kind] += 1
            reason = " ".join(str(c.get("reason") or c["status"]).split())[:80]
            reasons[f"{c['status']}: {reason}"] += 1
    n = len(children)
    lines = [f"Of the last {n} children, {sum(improved.values())} beat their parent."]
    for kind in sorted(tried, key=lambda k: (-tried[k], k)):
        lines.append(
            f"- edits of {kind}: {tried[kind]} tried, {improved[kind]} improved, "
            f"{failed[kind]} failed"
        )
    if reasons:
        lines.append("Most frequent failures:")
        lines += [f"- {r} ({k}x)" for r, k in reasons.most_common(3)]
    best_kind = max(tried, key=lambda k: (improved[k] / tried[k], k)) if tried else None
    if best_kind and improved[best_kind]:
        lines.append(f"Edits of {best_kind} have paid off best so far.")
    return "\n".join(lines)


def build_messages(
    problem, children: list[dict[str, Any]], examples: int = 3
) -> list[dict[str, str]]:
    """The prompt that asks a model to write the note (the local provider returns the digest)."""
    text = digest(children, problem.direction)

    def improved(c: dict[str, Any]) -> bool:
        s, p = c.get("score"), c.get("parent_score")
        if c.get("status") != "ok" or s is None or p is None:
            return False
        return s > p if problem.direction == "max" else s < p

    good = [c for c in children if improved(c)][:examples]
    bad = [c for c in children if c.get("status") not in ("ok", "rejected")][:examples]
    parts = [f"## Problem: {problem.title}", f"{DIGEST_HEADING}\n{text}", EXAMPLES_HEADING]
    for label, group in (("improved", good), ("failed", bad)):
        for c in group:
            parts.append(
                f"### An edit that {label} ({c.get('status')}: {str(c.get('reason') or '')[:120]})\n"
                f"```diff\n{(c.get('diff') or '').strip()[:1500]}\n```"
            )
    parts.append(
        "## Task\nWrite a short note (at most 10 lines) for the engineers making the next "
        "edits: what kinds of change have worked, what has failed and why, what to try next. "
        "Plain text, no code."
    )
    return [
        {"role": "system", "content": "You keep a lab notebook of an evolutionary search."},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def local_answer(prompt: str) -> str:
    """The local provider's note: the digest in the prompt, as it stands."""
    at = prompt.find(DIGEST_HEADING)
    if at < 0:
        return "No digest in the prompt."
    end = prompt.find(EXAMPLES_HEADING, at)
    return prompt[at + len(DIGEST_HEADING) : end if end > 0 else None].strip()


def section(note: str) -> str:
    """The note as a prompt section ('' for no note)."""
    return f"{NOTES_HEADING}\n{note.strip()}\n\n" if note and note.strip() else ""
