"""Read the runs `bench/search.py --keep DIR` kept: how long each stayed stagnant, whom it bred from.

    python bench/stagnation.py DIR [--patience 20]

Per selection rule (read from each run's config.yaml) it prints, per run: the counted
evaluations made while the best had gone `patience` evaluations without improving (when the
elitist rule's explore share is drawn), the number of such stagnation episodes, the new bests,
and the children whose parent was below the best when the child was recorded (an explore-share
parent, or a best already superseded while the child was in flight), with how those children
scored against the best of their time. The replay is from the database's order of record
(`seq`), so it approximates the island's own clock; for the exact effect of the explore share
compare runs of the same seed with it switched off (runs are reproducible from their seed).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
from pathlib import Path

import yaml


def replay(db_path: Path, patience: int) -> dict:
    """One run's stagnation and below-the-best children, replayed in order of record."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT id, parent_id, valid, fitness, status, mode FROM programs ORDER BY seq"
    ).fetchall()
    db.close()
    fitness = {r[0]: r[3] for r in rows}
    best: float | None = None
    n = last_improvement = stagnant_evals = episodes = new_bests = below_new_best = 0
    was_stagnant = False
    below: list[float | None] = []  # child fitness - best of its time; None: invalid child
    for _id, parent, valid, fit, status, mode in rows:
        if parent is None:  # the seed program
            best = fit
            continue
        if status == "rejected" or mode == "migrant":
            continue
        stagnant = n - last_improvement >= patience
        episodes += stagnant and not was_stagnant
        was_stagnant = stagnant
        stagnant_evals += stagnant
        n += 1
        parent_fitness = fitness.get(parent)
        is_below = parent_fitness is not None and best is not None and parent_fitness < best
        if is_below:
            below.append(fit - best if valid and fit is not None else None)
        if valid and fit is not None and (best is None or fit > best):
            new_bests += 1
            below_new_best += is_below
            best, last_improvement = fit, n
    return {
        "evaluations": n,
        "stagnant": stagnant_evals,
        "episodes": episodes,
        "new_bests": new_bests,
        "below": len(below),
        "below_new_best": below_new_best,
        "below_gaps": [g for g in below if g is not None],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="the folder given to bench/search.py --keep")
    ap.add_argument("--patience", type=int, default=20)
    args = ap.parse_args()
    by_rule: dict[str, list[dict]] = {}
    for db_path in args.root.glob("*/*/*/evolve.db"):
        cfg = yaml.safe_load((db_path.parent / "config.yaml").read_text())
        run = {"seed": int(cfg["seed"]), **replay(db_path, args.patience)}
        by_rule.setdefault(cfg["search"]["selection"], []).append(run)
    if not by_rule:
        raise SystemExit(f"no run databases under {args.root}: give the folder of --keep")
    for rule, runs in by_rule.items():
        runs.sort(key=lambda r: r["seed"])
        print(f"{rule}: {len(runs)} runs")
        for key in ("seed", "stagnant", "episodes", "new_bests", "below", "below_new_best"):
            print(f"  {key:15s}", [r[key] for r in runs])
        gaps = [g for r in runs for g in r["below_gaps"]]
        if gaps:
            better = sum(g > 0 for g in gaps) / len(gaps)
            print(
                f"  below-the-best children: {len(gaps)} valid, fitness - best median "
                f"{statistics.median(gaps):.4g}, {better:.0%} beat the best of their time"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
