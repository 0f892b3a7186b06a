"""How many islands an evaluation budget supports: the default island count follows the budget.

Each island is a lineage that improves by a chain of children, one built on the other, and the
chain is only as long as the island's share of the budget. bench/search.py measured that at 150
evaluations two islands (75 each) end behind one island on erdos/min_overlap, where about half
of all children beat their parent and progress is the length of the chain (docs/search.md).
Islands pay off once each has enough evaluations to climb on its own, so a run gets one island
per `per_island` evaluations of its budget, between 1 and `most`.
"""

from __future__ import annotations

PER_ISLAND = 1000  # evaluations of the budget per island
MOST = 2  # islands at most, whatever the budget (more with search.islands=N)


def islands_for_budget(evaluations: int, per_island: int = PER_ISLAND, most: int = MOST) -> int:
    """One island per `per_island` evaluations of the budget, at least 1 and at most `most`.

    Used by conf/search/default.yaml as `${islands_for_budget:${budget.evaluations}}`. A budget
    below 1 gives 1 here: the config's validation then names the bad budget in its own words.
    """
    if not isinstance(per_island, int) or per_island < 1 or not isinstance(most, int) or most < 1:
        raise ValueError(
            f"islands_for_budget: per_island and most must be positive integers, "
            f"got {per_island!r} and {most!r}"
        )
    return max(1, min(most, int(evaluations) // per_island))
