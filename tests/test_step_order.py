"""StepOrder (evolve/engine/ordering.py): an island's turns, without Ray."""

from __future__ import annotations

import asyncio

import pytest

from evolve.engine.ordering import StepOrder


def _run(coro):
    return asyncio.run(coro)


def test_results_are_applied_in_step_order_each_after_the_step_lag_minus_one_later_chose():
    async def main():
        order, applied = StepOrder(lag=2), []
        order.selected(0)
        order.selected(1)
        # Step 1 comes back first: it waits for step 0.
        order.finished(1, lambda: applied.append(1))
        assert applied == []
        order.finished(0, lambda: applied.append(0))
        # Step 0 is applied (step 1 has chosen); step 1 waits until step 2 has chosen.
        assert applied == [0] and order.applied_upto == 1
        order.selected(2)
        assert applied == [0, 1]

    _run(main())


def test_a_step_chooses_only_once_exactly_the_steps_lag_before_it_are_applied():
    async def main():
        order = StepOrder(lag=3)
        seen = {}

        async def step(k):
            await order.until_select(k)
            seen[k] = order.applied_upto
            order.selected(k)

        tasks = [asyncio.create_task(step(k)) for k in range(6)]
        await asyncio.sleep(0)
        assert seen == {0: 0, 1: 0, 2: 0}  # steps 3.. wait for step 0's result
        for k in (2, 0, 1):  # results in any order
            order.finished(k, None)
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        # Step k saw exactly k - lag + 1 steps applied, whatever order they finished in.
        assert seen == {0: 0, 1: 0, 2: 0, 3: 1, 4: 2, 5: 3}

    _run(main())


def test_children_are_handed_on_in_step_order_and_a_step_without_one_takes_its_turn():
    async def main():
        order, sent = StepOrder(lag=4), []

        async def send(k):
            await order.until_send(k)
            sent.append(k)
            order.sent(k)

        late = asyncio.create_task(send(2))
        await asyncio.sleep(0)
        assert sent == []
        order.finished(0, None)  # step 0 was rejected: nothing to send
        await asyncio.sleep(0)
        assert sent == []  # step 1 has not sent yet
        await send(1)
        await late
        assert sent == [1, 2]

    _run(main())


def test_settle_applies_what_no_later_step_will_release_and_stops_at_a_gap():
    order, applied = StepOrder(lag=2), []
    for k in (0, 1):
        order.selected(k)
    order.finished(0, lambda: applied.append(0))
    order.finished(1, lambda: applied.append(1))
    order.finished(3, lambda: applied.append(3))
    assert applied == [0]
    assert order.settle() == 1  # step 1; step 2 never finished, so step 3 stays
    assert applied == [0, 1] and order.waiting == 1


def test_a_failing_effect_is_logged_and_the_turns_go_on(caplog):
    order, applied = StepOrder(lag=1), []
    order.finished(0, lambda: 1 / 0)
    order.finished(1, lambda: applied.append(1))
    order.settle()
    assert applied == [1] and order.applied_upto == 2
    assert "step 0" in caplog.text


def test_a_step_reported_twice_counts_once_and_restored_runs_start_at_their_step():
    order, applied = StepOrder(lag=1, first=7), []
    order.finished(7, lambda: applied.append(7))
    order.finished(7, lambda: applied.append("again"))
    assert applied == [7] and order.applied_upto == 8
    with pytest.raises(ValueError, match="at least 1"):
        StepOrder(lag=0)
