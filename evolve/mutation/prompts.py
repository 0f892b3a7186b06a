"""Prompts: the parent, its evaluator feedback and inspirations, rendered from template files.

Templates are plain text files with $placeholders (string.Template), so code with braces is
safe. A problem overrides any template by shipping a file of the same name in
`<problem>/prompts/` (system.txt, diff.txt, rewrite.txt, explain.txt, crossover.txt), and may
add templates of its own there. The user templates receive: $title, $description, $score,
$direction_word, $metrics, $code, $feedback (the evaluator's feedback on the parent, capped at
FEEDBACK_CHARS keeping its head and its tail, where a stderr tail sits), $inspirations (a
rendered section, or empty) and, for a crossover, $second_code and $second_score. The engine
picks the template: with `search.prompt_variants` set, a bandit over those (rewarded by
improvement over the parent); otherwise "diff" with probability llm.diff_probability, else
"rewrite".
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

TEMPLATE_DIR = Path(__file__).with_name("templates")
FEEDBACK_CHARS = 1500  # evaluator feedback shown per prompt (errors, constraints, stderr tail)
INSPIRATION_CHARS = 6000  # code shown per inspiration
MODES = ("diff", "rewrite", "explain", "crossover")  # the built-in templates
CURRENT_PROGRAM_HEADING = "## Current program"
SECOND_PARENT_HEADING = "## Second parent"


@dataclass
class ParentView:
    """What the prompt shows of a program."""

    code: str
    score: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    feedback: str = ""


def load_template(name: str, problem_dir: Path | None = None) -> Template:
    """The problem's own `prompts/NAME.txt` if it has one, else evolve's."""
    if problem_dir is not None:
        override = problem_dir / "prompts" / f"{name}.txt"
        if override.exists():
            return _read_template(override, override.stat().st_mtime_ns)
    path = TEMPLATE_DIR / f"{name}.txt"
    return _read_template(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _read_template(path: Path, mtime_ns: int) -> Template:
    # Keyed by modification time too: an edited template is read again.
    return Template(path.read_text())


def cap(text: str, limit: int) -> str:
    """`text` cut to about `limit` characters, keeping the first third and the last two
    thirds: an error's headline and a traceback's or stderr's tail both survive."""
    if len(text) <= limit:
        return text
    head = limit // 3
    tail = limit - head
    return f"{text[:head]}\n... ({len(text) - limit} characters omitted) ...\n{text[-tail:]}"


def _fmt_metrics(metrics: dict[str, float]) -> str:
    # Validation and test scores never reach the model: the search must not fit them.
    shown = {
        k: v
        for k, v in metrics.items()
        if not k.startswith(("eval_", "validation", "test", "stage_", "instances_", "cascade_"))
    }
    return json.dumps({k: round(v, 10) for k, v in shown.items()}) if shown else "(none)"


def template_names(problem_dir: Path | None = None) -> list[str]:
    """Every user template a request can use: the built-in ones and the problem's own."""
    names = list(MODES)
    if problem_dir is not None and (problem_dir / "prompts").is_dir():
        own = sorted(p.stem for p in (problem_dir / "prompts").glob("*.txt"))
        names += [n for n in own if n not in names and n != "system"]
    return names


def build_messages(
    problem,
    parent: ParentView,
    inspirations: list[ParentView] = (),
    mode: str = "diff",
    second: ParentView | None = None,
    notes: str = "",
) -> list[dict[str, str]]:
    """The chat messages for one mutation request (`mode`: a template name, e.g. "diff",
    "rewrite", "explain" or, with a `second` parent, "crossover")."""
    if mode not in MODES and not (problem.path / "prompts" / f"{mode}.txt").exists():
        raise ValueError(
            f"prompt template {mode!r} is unknown; use one of {template_names(problem.path)}"
        )
    if mode == "crossover" and second is None:
        raise ValueError("a crossover prompt needs a second parent")
    insp = ""
    if inspirations:
        parts = ["\n## Other programs for inspiration"]
        for i, p in enumerate(inspirations, 1):
            score = "invalid" if p.score is None else f"{p.score:.10g}"
            code = cap(p.code.rstrip(), INSPIRATION_CHARS)
            parts.append(f"### Inspiration {i} (score {score})\n```python\n{code}\n```")
        insp = "\n".join(parts) + "\n"
    feedback = cap((parent.feedback or "").strip() or "(none)", FEEDBACK_CHARS)
    template = load_template(mode, problem.path)
    user = template.safe_substitute(
        title=problem.title,
        description=problem.description,
        score="invalid" if parent.score is None else f"{parent.score:.10g}",
        direction_word="lower" if problem.direction == "min" else "higher",
        metrics=_fmt_metrics(parent.metrics),
        code=parent.code.rstrip("\n"),
        feedback=feedback,
        inspirations=insp,
        second_code=(second.code.rstrip("\n") if second else ""),
        second_score=(
            "invalid" if second is None or second.score is None else f"{second.score:.10g}"
        ),
    )
    if notes.strip():  # the run's scratchpad, just before the program it is about
        from evolve.mutation.scratchpad import section

        at = user.find(CURRENT_PROGRAM_HEADING)
        at = at if at >= 0 else len(user)
        user = user[:at] + section(notes) + user[at:]
    system = load_template("system", problem.path).safe_substitute()
    return [{"role": "system", "content": system.strip()}, {"role": "user", "content": user}]


def extract_current_program(prompt: str) -> str | None:
    """The parent code from a prompt built by `build_messages` (used by the local mutator)."""
    at = prompt.find(CURRENT_PROGRAM_HEADING)
    if at < 0:
        return None
    start = prompt.find("```python\n", at)
    if start < 0:
        return None
    start += len("```python\n")
    end = prompt.find("\n```", start)
    if end < 0:
        return None
    return prompt[start:end] + "\n"


def extract_second_parent(prompt: str) -> str | None:
    """The second parent's code from a crossover prompt (used by the local mutator)."""
    at = prompt.find(SECOND_PARENT_HEADING)
    if at < 0:
        return None
    start = prompt.find("```python\n", at)
    end = prompt.find("\n```", start + 10) if start >= 0 else -1
    if start < 0 or end < 0:
        return None
    return prompt[start + len("```python\n") : end] + "\n"
