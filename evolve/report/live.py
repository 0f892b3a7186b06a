"""The live console view of a run, and its closing summary (rich)."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from evolve.engine.progress import Progress

FAILURES = (
    "invalid",
    "bad_output",
    "timeout",
    "memory",
    "crash",
    "syntax_error",
    "rejected",
    "llm_error",
    "error",
)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.10g}"


def render(p: Progress) -> Group:
    head = Table.grid(padding=(0, 2))
    head.add_row(
        f"[bold]{p.problem}[/bold]",
        f"evaluations [bold]{p.evaluations}[/bold]/{p.budget}",
        f"{p.rate:.1f} eval/s",
        f"best [bold green]{_fmt(p.best_score)}[/bold green] (seed {_fmt(p.seed_score)})",
        f"{p.elapsed:.0f} s",
    )
    islands = Table(title="islands", expand=False)
    islands.add_column("island", justify="right")
    islands.add_column("evaluations", justify="right")
    islands.add_column("best score", justify="right")
    for i in range(p.islands):
        islands.add_row(str(i), str(p.island_evals.get(i, 0)), _fmt(p.island_best.get(i)))
    fails = Table(title="outcomes", expand=False)
    fails.add_column("status")
    fails.add_column("count", justify="right")
    for status, n in sorted(p.statuses.items(), key=lambda kv: -kv[1]):
        style = "green" if status == "ok" else "red" if status in FAILURES else ""
        fails.add_row(f"[{style}]{status}[/{style}]" if style else status, str(n))
    side = Table.grid(padding=(0, 4))
    side.add_row(islands, fails)
    llm = f"LLM calls {p.llm_calls} (errors {p.llm_errors}), cost ${p.cost_usd:.4f}, migrations {p.migrations}, island resets {p.resets}"
    parts = [head, side, llm]
    if p.verdicts:
        parts.append(f"literature: {p.verdicts[-1]}")
    return Group(*parts)


class LiveView:
    """Redraws the progress at most `refresh_per_second` times; plain lines when not a TTY."""

    def __init__(
        self, console: Console, refresh_per_second: float = 4.0, enabled: bool = True
    ) -> None:
        self.console = console
        self.interval = 1.0 / max(refresh_per_second, 0.1)
        self.enabled = enabled
        self.live: Live | None = None
        self._last = 0.0
        self._last_line = 0.0

    def __enter__(self) -> LiveView:
        if self.enabled and self.console.is_terminal:
            self.live = Live(console=self.console, auto_refresh=False, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, p: Progress) -> None:
        now = time.monotonic()
        if self.live is not None:
            if now - self._last >= self.interval:
                self.live.update(render(p), refresh=True)
                self._last = now
        elif self.enabled and now - self._last_line >= 10.0:
            self.console.print(
                f"[{p.elapsed:5.0f} s] evaluations {p.evaluations}/{p.budget}  {p.rate:.1f} eval/s  "
                f"best {_fmt(p.best_score)}  failures {sum(n for s, n in p.statuses.items() if s != 'ok')}"
            )
            self._last_line = now


def generalisation(metrics: dict[str, float]) -> str:
    """'train X, validation Y, test Z' from a heuristic problem's metrics ('' if none)."""
    return ", ".join(
        f"{name} {_fmt(metrics[name])}"
        for name in ("train", "validation", "test")
        if name in metrics
    )


def summary(p: Progress, run_dir: Path, best_file: Path | None, direction: str) -> Panel:
    gained = ""
    if p.best_score is not None and p.seed_score is not None:
        delta = p.best_score - p.seed_score
        gained = f" ({'+' if delta >= 0 else ''}{delta:.6g} vs the seed's {p.seed_score:.10g}; {'lower' if direction == 'min' else 'higher'} is better)"
    fails = ", ".join(f"{s} {n}" for s, n in sorted(p.statuses.items()) if s != "ok") or "none"
    lines = [
        f"[bold]best program[/bold]: #{p.best_program_id}  score [bold green]{_fmt(p.best_score)}[/bold green]{gained}",
        f"evaluations: {p.evaluations} in {p.elapsed:.0f} s ({p.rate:.1f}/s); stopped: {p.stop_reason or 'done'}",
        f"failures by kind: {fails}",
        f"LLM calls: {p.llm_calls} (errors {p.llm_errors}), cost ${p.cost_usd:.4f}; migrations: {p.migrations}",
    ]
    if p.cancelled_calls:
        lines.append(
            f"{p.cancelled_calls} LLM requests cancelled in flight at the limit "
            "(charged their prompts' estimated price)"
        )
    if p.overshoot:
        lines.append(f"[yellow]over budget[/yellow]: {p.overshoot}")
    sets = generalisation(p.best_metrics)
    if sets:
        chosen = "validation" if "validation" in p.best_metrics else "train"
        seed = generalisation({k: v for k, v in p.seed_metrics.items() if k != "test"})
        lines.append(
            f"picked by {chosen} (the search optimised train; test is held out): {sets}"
            + (f"; the seed: {seed}" if seed else "")
        )
    saved = p.statuses.get("stopped", 0)
    if saved:
        lines.append(f"cascade: {saved} children stopped after a cheap stage")
    if p.verdicts:
        lines.append(f"literature: {p.verdicts[-1]}")
    if p.sandbox_problems:
        lines.append(f"[yellow]sandbox layers missing[/yellow]: {'; '.join(p.sandbox_problems)}")
    lines += [
        f"run folder: {run_dir}",
        "  evolve.db (every child, LLM call and verdict), config.yaml, run.log"
        + (f", {best_file.name}" if best_file else ""),
        f"inspect: evolve show {run_dir}",
        f"run longer: evolve run budget.evaluations={max(p.budget * 10, 3000)}   "
        f"or continue this one: evolve run resume={run_dir} budget.evaluations={p.budget * 5}",
    ]
    return Panel("\n".join(lines), title="evolve: run finished", expand=False)
