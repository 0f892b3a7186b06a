"""The report's figures, drawn with matplotlib (Agg): inline SVG for the pages, files for papers.

Every chart is a function from plain data to a matplotlib Figure; `svg()` turns one into markup
fit to inline in a page that forbids outside loads (no XML prolog, no metadata, text as text).
Scatter plots are thinned to a fixed number of dots per island so a page stays small however
long the run, and every new best is always drawn.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from evolve.report.run_data import Point, RunData  # noqa: E402

plt.rcParams.update(
    {
        "svg.fonttype": "none",  # text stays text: smaller, and selectable
        "svg.hashsalt": "evolve",  # stable ids, so a rewritten report only differs in data
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
    }
)

MAX_DOTS_PER_ISLAND = 1200
# Above this many new bests the best-so-far curve draws them as its corners only, not as dots
# too: a thousand dots on a step line show nothing more and cost the page ~100 KB per chart.
MAX_BEST_DOTS = 300
BEST = "#1a7f37"
SEED = "#6e7781"
KNOWN = "#cf222e"
FAIL = "#d1242f"
ISLAND_COLOURS = plt.get_cmap("tab10").colors


_SIX_DECIMALS = re.compile(r"(\d\.\d\d)\d+")


def svg(fig: Figure) -> str:
    """The figure as inline SVG markup (closes the figure)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = re.sub(r"<!--.*?-->\s*", "", text, flags=re.S)
    # matplotlib writes six decimals of a point; two are a hundredth of a pixel at any zoom a
    # page is read at, and a scatter of a few thousand dots is smaller by a tenth. Inside tags
    # only: a figure's text (a label, "best known 0.380871") keeps every digit.
    text = re.sub(r"<[^>]*>", lambda tag: _SIX_DECIMALS.sub(r"\1", tag.group()), text)
    return text.strip()


def _thin(points: Sequence[Point], limit: int) -> list[Point]:
    """At most about `limit` points, evenly spread."""
    if len(points) <= limit:
        return list(points)
    step = math.ceil(len(points) / limit)
    return list(points[::step])


def _step_series(xs: list[float], ys: list[float], x_end: float) -> tuple[list, list]:
    """Best-so-far as a step line that runs on to the end of the run."""
    if not xs:
        return [], []
    return [*xs, max(x_end, xs[-1])], [*ys, ys[-1]]


# A legend on a white backing: "best" placement still lands on a line now and then (the best
# known value along the empty corner), which then struck its text through.
LEGEND = {"fontsize": 7, "loc": "best", "frameon": True, "framealpha": 0.85, "edgecolor": "none"}

CLOCKS = {
    "evaluation": "evaluations",
    "seconds": "wall time (s)",
    "dollars": "LLM cost ($)",
}


def best_so_far(data: RunData, clock: str) -> Figure:
    """The run's best score against one clock, with the seed, the best known value and the
    run's events (new bests, migrations, resets, literature checks) drawn in."""
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    xs = [getattr(p, clock) for p in data.new_bests]
    ys = [p.score for p in data.new_bests]
    x_end = getattr(data.points[-1], clock) if data.points else 0.0
    sx, sy = _step_series(xs, ys, x_end)
    if sx:
        if len(xs) <= MAX_BEST_DOTS:
            ax.step(sx, sy, where="post", color=BEST, lw=1.6, label="best so far")
            ax.plot(xs, ys, "o", color=BEST, ms=3.5, label="new best")
        else:
            ax.step(sx, sy, where="post", color=BEST, lw=1.6,
                    label=f"best so far ({len(xs)} new bests, each a step)")  # fmt: skip
    if data.seed is not None and data.seed.score is not None:
        ax.axhline(data.seed.score, color=SEED, ls=":", lw=1, label="seed")
    _best_known(
        ax,
        data.best_known if data.best_known_comparable else None,
        [*ys, *([data.seed.score] if data.seed and data.seed.score is not None else [])],
    )
    for k, m in enumerate(data.migrations):
        ax.axvline(
            m[clock], color="#0969da", alpha=0.25, lw=0.8, label="migration" if k == 0 else None
        )
    for k, r in enumerate(data.resets):
        ax.axvline(
            r[clock], color="#bf8700", ls="-.", lw=1, label="island reset" if k == 0 else None
        )
    # each check marked on the program it checked, where that program sits on the curve (the
    # check's own figure may be a test-set score on another scale; it may run long after)
    checked = [c["program_point"] for c in data.checks if c.get("program_point") is not None]
    checked = [p for p in checked if p.score is not None]
    if checked:
        ax.plot(
            [getattr(p, clock) for p in checked],
            [p.score for p in checked],
            "D",
            mfc="none",
            color="#8250df",
            ms=5,
            label="literature check",
        )
    ax.set_xlabel(CLOCKS[clock])
    ax.set_ylabel(f"score ({'higher' if data.direction == 'max' else 'lower'} is better)")
    if clock == "dollars" and data.cost == 0:
        ax.set_xlim(0, 1)
        ax.set_title("no LLM cost recorded (a local or free model)", fontsize=8, color=SEED)
    ax.legend(**LEGEND)
    return fig


def _best_known(ax, best_known: float | None, values: list[float]) -> None:
    """The best known value as a dashed line, or, when it is far off the run's scale (it would
    flatten every curve), as a note at the edge it lies beyond."""
    if best_known is None:
        return
    lo, hi = (min(values), max(values)) if values else (best_known, best_known)
    span = hi - lo
    if not values or lo - 1.5 * span <= best_known <= hi + 1.5 * span or span == 0:
        ax.axhline(best_known, color=KNOWN, ls="--", lw=1, label="best known")
        return
    below = best_known < lo
    ax.annotate(
        f"best known {best_known:.6g} {'below' if below else 'above'} the scale",
        # the left edge: a curve that falls (min) or rises (max) leaves that corner empty
        xy=(0.01, 0.02 if below else 0.98),
        xycoords="axes fraction",
        ha="left",
        va="bottom" if below else "top",
        fontsize=7,
        color=KNOWN,
    )


def island_scores(data: RunData) -> Figure:
    """Every scored child per island against evaluations; failures as crosses under the axis."""
    islands = sorted({p.island for p in data.points if p.island is not None}) or [0]
    n = len(islands)
    fig, axes = plt.subplots(n, 1, figsize=(7.5, 1.2 + 1.4 * n), sharex=True, squeeze=False)
    scored = [p.score for p in data.points if p.score is not None]
    lo = min(scored) if scored else 0.0
    hi = max(scored) if scored else 1.0
    pad = (hi - lo) * 0.08 or 0.05
    fail_y = lo - pad if data.direction == "max" else hi + pad
    for ax, isl in zip(axes[:, 0], islands, strict=True):
        pts = [p for p in data.points if p.island == isl]
        # new bests need no dot of their own in the thinned scatter: each has its circle below
        ok = _thin([p for p in pts if p.score is not None], MAX_DOTS_PER_ISLAND)
        bad = _thin([p for p in pts if p.score is None], MAX_DOTS_PER_ISLAND // 3)
        colour = ISLAND_COLOURS[int(isl or 0) % len(ISLAND_COLOURS)]
        ax.plot([p.evaluation for p in ok], [p.score for p in ok], ".", ms=2.5, color=colour,
                alpha=0.6, label="scored child")  # fmt: skip
        bests = [p for p in data.new_bests if p.island == isl]
        if bests:
            ax.plot([p.evaluation for p in bests], [p.score for p in bests], "o", mfc="none",
                    color=BEST, ms=5, label="new run best")  # fmt: skip
        if bad:
            ax.plot([p.evaluation for p in bad], [fail_y] * len(bad), "x", ms=3, color=FAIL,
                    alpha=0.7, label=f"failed ({sum(p.score is None for p in pts)})")  # fmt: skip
        ax.set_ylabel(f"island {isl}\nscore")
        ax.legend(**LEGEND)
    axes[-1, 0].set_xlabel("evaluations")
    return fig


def grid_map(grid: dict[str, Any], direction: str) -> Figure:
    """One island's MAP-Elites grid at the end: each occupied cell coloured by its elite's
    score, axes labelled with the feature names and bin edges."""
    axes_info = grid.get("axes") or []
    cells = grid["cells"]
    coords = [[int(x) for x in str(c["cell"]).split(",") if x != ""] for c in cells]
    ndim = max([len(c) for c in coords] + [len(axes_info)] + [1])
    fig, ax = plt.subplots(figsize=(3.6, 3.0))
    names = [a.get("name", f"dim {k}") for k, a in enumerate(axes_info)] or [
        f"dimension {k}" for k in range(ndim)
    ]
    bins = [int(a.get("bins") or 0) for a in axes_info]
    if ndim >= 2:
        nx = max([bins[0] if bins else 0] + [c[0] + 1 for c in coords if c])
        ny = max([bins[1] if len(bins) > 1 else 0] + [c[1] + 1 for c in coords if len(c) > 1])
        mat = np.full((ny, nx), np.nan)
        for c, cell in zip(coords, cells, strict=True):
            s = cell.get("score")
            if len(c) >= 2 and s is not None:
                cur = mat[c[1], c[0]]  # with more than two dimensions, the best over the rest
                if np.isnan(cur) or (s > cur if direction == "max" else s < cur):
                    mat[c[1], c[0]] = s
        cmap = "viridis" if direction == "max" else "viridis_r"
        # a mesh of vector cells: imshow would embed a PNG in the SVG
        im = ax.pcolormesh(
            np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, np.ma.masked_invalid(mat), cmap=cmap
        )
        bar = fig.colorbar(im, ax=ax, label="elite score")
        if bar.solids is not None:
            bar.solids.set_rasterized(False)  # the same for a long colour bar
            bar.solids.set_edgecolor("face")  # no seams between its vector bands
        _edge_ticks(ax.set_xticks, ax.set_xticklabels, axes_info[0] if axes_info else None, nx)
        if len(axes_info) > 1:
            _edge_ticks(ax.set_yticks, ax.set_yticklabels, axes_info[1], ny)
        ax.set_xlabel(names[0] if names else "dimension 0")
        ax.set_ylabel(names[1] if len(names) > 1 else "dimension 1")
        ax.grid(False)
        if ndim > 2:
            ax.set_title(f"best over {', '.join(names[2:])}", fontsize=8)
    else:
        nx = max([bins[0] if bins else 0] + [c[0] + 1 for c in coords if c] + [1])
        vals = [np.nan] * nx
        for c, cell in zip(coords, cells, strict=True):
            if c and cell.get("score") is not None:
                vals[c[0]] = cell["score"]
        ax.bar(range(nx), [0 if np.isnan(v) else v for v in vals], color=BEST)
        _edge_ticks(ax.set_xticks, ax.set_xticklabels, axes_info[0] if axes_info else None, nx)
        ax.set_xlabel(names[0])
        ax.set_ylabel("elite score")
    ax.set_title(f"island {grid['island']}: {len(cells)} cells occupied", fontsize=9, loc="left")
    return fig


def _edge_ticks(set_ticks, set_labels, axis: dict[str, Any] | None, n: int) -> None:
    edges = (axis or {}).get("edges") or []
    if len(edges) == n + 1:
        set_ticks([k - 0.5 for k in range(n + 1)])
        set_labels([f"{e:.3g}" for e in edges], fontsize=7, rotation=45)
    else:
        set_ticks(range(n))


def failures_over_time(data: RunData) -> Figure:
    """Failures by kind per slice of the run (stacked)."""
    fig, ax = plt.subplots(figsize=(7.5, 2.6))
    n = max(1, len(data.points))
    width = max(1, math.ceil(n / 40))
    edges = list(range(0, n + width, width))
    kinds = [f["kind"] for f in data.failures if f["kind"] != "rejected"]
    bottom = np.zeros(len(edges) - 1)
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    cmap = plt.get_cmap("tab10")
    for k, kind in enumerate(kinds):
        counts = np.histogram([p.evaluation for p in data.points if p.status == kind], bins=edges)[
            0
        ]
        ax.bar(centres, counts, width=width * 0.9, bottom=bottom, color=cmap(k % 10), label=kind)
        bottom += counts
    if not kinds:
        ax.set_title("no failed evaluation", fontsize=8, color=SEED)
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"failures per {width}")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.5 of a failure
    if kinds:
        ax.legend(fontsize=7, frameon=False, ncol=min(4, len(kinds)))
    return fig


# --- several runs --------------------------------------------------------------------------
def _curve_on(xs_grid: np.ndarray, xs: list[float], ys: list[float]) -> np.ndarray:
    """A best-so-far step function sampled on a grid (NaN before the first value)."""
    out = np.full(len(xs_grid), np.nan)
    if not xs:
        return out
    idx = np.searchsorted(np.asarray(xs), xs_grid, side="right") - 1
    ok = idx >= 0
    out[ok] = np.asarray(ys)[idx[ok]]
    return out


def overlay(
    groups: list[tuple[str, list[RunData]]], clock: str, ax=None, title: str | None = None
) -> Figure:
    """Best-so-far of every run (thin lines), each group's median (thick) and min-max band."""
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
    seeds, knowns, direction = [], [], "max"
    for g, (label, runs) in enumerate(groups):
        colour = ISLAND_COLOURS[g % len(ISLAND_COLOURS)]
        ends = [getattr(r.points[-1], clock) for r in runs if r.points]
        x_end = max(ends) if ends else 0.0
        grid = np.linspace(0.0, x_end, 200) if x_end > 0 else np.zeros(1)
        curves = []
        for r in runs:
            direction = r.direction
            xs = [getattr(p, clock) for p in r.new_bests]
            ys = [p.score for p in r.new_bests]
            sx, sy = _step_series(xs, ys, getattr(r.points[-1], clock) if r.points else 0.0)
            if sx:
                ax.step(sx, sy, where="post", color=colour, lw=0.7, alpha=0.45)
            curves.append(_curve_on(grid, xs, ys))
            if r.seed is not None and r.seed.score is not None:
                seeds.append(r.seed.score)
            if r.best_known is not None and r.best_known_comparable:
                knowns.append(r.best_known)
        if curves and len(grid) > 1:
            stack = np.vstack(curves)
            have = ~np.all(np.isnan(stack), axis=0)
            if have.any():
                med = np.nanmedian(stack[:, have], axis=0)
                name = label.replace("$", r"\$")  # no mathtext from a model's name
                ax.plot(grid[have], med, color=colour, lw=2, label=f"{name} (n={len(runs)})")
                if len(runs) > 1:
                    lo = np.nanmin(stack[:, have], axis=0)
                    hi = np.nanmax(stack[:, have], axis=0)
                    ax.fill_between(grid[have], lo, hi, color=colour, alpha=0.15, lw=0)
    if seeds:
        ax.axhline(float(np.median(seeds)), color=SEED, ls=":", lw=1, label="seed")
    values = [y for line in ax.get_lines() for y in np.asarray(line.get_ydata(), float)]
    _best_known(ax, knowns[-1] if knowns else None, [v for v in values if np.isfinite(v)])
    ax.set_xlabel(CLOCKS[clock])
    ax.set_ylabel(f"best score ({'higher' if direction == 'max' else 'lower'} is better)")
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    ax.legend(**LEGEND)
    return fig if fig is not None else ax.figure


def paper_figure(groups: list[tuple[str, list[RunData]]]) -> Figure:
    """`evolve plot`: best-so-far against evaluations (and against cost when any was spent)."""
    with_cost = any(r.cost > 0 for _, runs in groups for r in runs)
    fig, axes = plt.subplots(1, 2 if with_cost else 1, figsize=(9 if with_cost else 5, 3.4),
                             squeeze=False)  # fmt: skip
    overlay(groups, "evaluation", ax=axes[0, 0])
    if with_cost:
        overlay(groups, "dollars", ax=axes[0, 1])
    fig.tight_layout()
    return fig
