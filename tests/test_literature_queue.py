"""The driver's queue of literature checks: the newest best is checked, never a stale one.

A Ray-free test of `Evolution._literature_check`: the checker actor is a stand-in that records
what it was asked to check.
"""

from __future__ import annotations

from evolve.engine.driver import Evolution
from evolve.engine.progress import Progress


class _Checker:
    """Stands in for the literature actor: `check.remote(pid)` records the program id."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.check = self

    def remote(self, program_id: int) -> str:
        self.asked.append(program_id)
        return f"ref-{program_id}"


def _driver() -> tuple[Evolution, _Checker]:
    evo = Evolution.__new__(Evolution)  # only the literature queue's state, no actors
    checker = _Checker()
    evo._checks, evo.literature, evo._here = True, None, None
    evo._lit_pending = evo._lit_next = None
    evo._literature_actor = lambda here: checker
    evo.progress = Progress("p", 10, 1)
    return evo, checker


def test_a_best_queued_before_the_checker_started_is_dropped_by_a_newer_best():
    evo, checker = _driver()
    evo._literature_check(1)  # the seed, before any child was scored: the checker waits
    assert checker.asked == [] and evo._lit_next == 1
    evo.progress.first_child_s = 1.0
    evo._literature_check(2)  # a child beats the seed: the checker starts on it
    assert checker.asked == [2] and evo._lit_pending == "ref-2"
    assert evo._lit_next is None  # the seed is not checked after it


def test_bests_found_while_a_check_runs_replace_each_other():
    evo, checker = _driver()
    evo.progress.first_child_s = 1.0
    evo._literature_check(1)
    evo._literature_check(2)
    evo._literature_check(3)
    assert checker.asked == [1] and evo._lit_next == 3
