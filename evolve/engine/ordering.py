"""Step order: what makes an island's run the same whatever order its results arrive in.

An island runs up to `lag` iterations at once (its LLM slots, twice over with the pipeline),
and their children come back from evaluation in whatever order the machine's load gives.
Were each result applied to the island as it came, the parent that step k picks would depend
on which earlier children happened to be scored by then, and two runs of one seed would part
at the first such race. `StepOrder` fixes the order of the island's events instead:

    select(0) ... select(lag - 1), apply(0), select(lag), apply(1), select(lag + 1), ...

Step k chooses its parent (and everything else it draws from the island) from the island as
it is after steps 0 .. k - lag have been applied, no more and no fewer; results are applied
in step order, each only once the step `lag - 1` after it has chosen. Children are handed to
evaluation in step order too, so that when two steps of one island make the same program, the
earlier step's child is the one evaluated and counted. The waiting this costs is nothing the
old arrival order did not also pay: step k could not start before some step k - lag finished.

A step that ends without anything to apply (a rejected edit, a failed call, a cancel) still
takes its turn, with nothing to apply. Results are reported to the driver as soon as they
are scored; only their effect on the island waits for its turn. At the end of a run
`settle` applies whatever is still waiting for a step that will never come.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class StepOrder:
    """The turn-taking of one island's iterations (numbered from `first`)."""

    def __init__(self, lag: int, first: int = 0) -> None:
        if lag < 1:
            raise ValueError(f"the pipeline depth must be at least 1, got {lag}")
        self.lag = lag
        self.selected_upto = first  # every step below this has chosen (or never will)
        self.sent_upto = first  # every step below this has handed its child on (or has none)
        self.applied_upto = first  # every step below this has been applied to the island
        self._selected: set[int] = set()
        self._sent: set[int] = set()
        self._pending: dict[int, Callable[[], None] | None] = {}  # step -> its effect
        self._waiters: list[asyncio.Future] = []

    # --- waiting for a turn ---------------------------------------------------------------
    async def until_select(self, step: int) -> None:
        """Until the island holds exactly steps below `step - lag + 1` applied."""
        await self._until(lambda: self.applied_upto >= step - self.lag + 1)

    async def until_send(self, step: int) -> None:
        """Until every earlier step has handed its child to evaluation (or has none)."""
        await self._until(lambda: self.sent_upto >= step)

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            await fut

    # --- marking a step's progress --------------------------------------------------------
    def selected(self, step: int) -> None:
        """Step `step` has drawn what it draws from the island (or never will)."""
        self.selected_upto = _mark(self._selected, step, self.selected_upto)
        self._advance()

    def sent(self, step: int) -> None:
        """Step `step` has handed its child to evaluation (or will not)."""
        self.sent_upto = _mark(self._sent, step, self.sent_upto)
        self._wake()

    def finished(self, step: int, effect: Callable[[], None] | None) -> None:
        """Step `step` is done; `effect` (None: nothing) applies its result to the island, in
        its turn. Marks the step as selected and sent too, if it ended before either."""
        if step < self.applied_upto or step in self._pending:
            return  # already finished (a task's end is reported once, whatever path it took)
        self.selected_upto = _mark(self._selected, step, self.selected_upto)
        self.sent_upto = _mark(self._sent, step, self.sent_upto)
        self._pending[step] = effect
        self._advance()

    def settle(self) -> int:
        """Apply every finished step still waiting for its turn, in step order, up to the
        first step not finished; how many were applied. For the end of a run, when no later
        step will choose."""
        n = 0
        while self.applied_upto in self._pending:
            self._apply_next()
            n += 1
        if n:
            self._wake()
        return n

    @property
    def waiting(self) -> int:
        """Finished steps whose result is not yet applied."""
        return len(self._pending)

    # --- internals -------------------------------------------------------------------------
    def _advance(self) -> None:
        while (
            self.applied_upto in self._pending
            and self.selected_upto >= self.applied_upto + self.lag
        ):
            self._apply_next()
        self._wake()

    def _apply_next(self) -> None:
        step = self.applied_upto
        effect = self._pending.pop(step)
        self.applied_upto += 1
        if effect is None:
            return
        try:
            effect()
        except Exception:  # a bug on our side: logged, and the island's turns go on
            log.exception("applying the result of step %d failed", step)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)


def _mark(done: set[int], step: int, upto: int) -> int:
    """Add `step` to `done`; the new contiguous bound (every step below it is in `done`)."""
    if step >= upto:
        done.add(step)
    while upto in done:
        done.discard(upto)
        upto += 1
    return upto
