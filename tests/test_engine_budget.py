"""The budget decision as plain functions (evolve/engine/budget.py): no Ray needed."""

from __future__ import annotations

from evolve.engine.budget import Budget, grant, hard_stop, overshoot, tokens_left


def test_tokens_out_count_against_the_evaluation_budget():
    b = Budget(evaluations=10)
    assert tokens_left(b, evaluations=4, llm_calls=0, iterations=0, out=0) == (6, "")
    assert tokens_left(b, evaluations=4, llm_calls=0, iterations=0, out=6)[0] == 0
    room, why = tokens_left(b, evaluations=10, llm_calls=0, iterations=0, out=0)
    assert room == 0 and why == "evaluation budget of 10 reached"
    # An island that holds 3 of the 5 it should, with 1 left in the run: it gets 1.
    assert grant(holding=3, want=5, room=1) == 1
    assert grant(holding=6, want=5, room=9) == 0


def test_the_tightest_budget_names_itself():
    b = Budget(evaluations=100, max_llm_calls=20, max_iterations=1000)
    room, why = tokens_left(b, evaluations=0, llm_calls=18, iterations=18, out=2)
    assert room == 0 and why == "LLM-call budget of 20 reached"
    b = Budget.from_config({"evaluations": 10})
    assert b.max_iterations == 100  # 5 x evaluations + 50: room for rejected edits
    room, why = tokens_left(b, evaluations=1, llm_calls=99, iterations=99, out=1)
    assert room == 0 and why.startswith("iteration cap of 100")


def test_wall_time_and_cost_stop_hard_and_report_the_overshoot():
    b = Budget(evaluations=10, wall_time_s=60, max_cost_usd=2.0)
    assert hard_stop(b, elapsed_s=59.9, cost_usd=1.99) == ""
    assert hard_stop(b, elapsed_s=60.0, cost_usd=0) == "wall-time budget of 60 s reached"
    assert hard_stop(b, elapsed_s=1, cost_usd=2.5) == "cost budget of $2 reached"
    assert overshoot(b, elapsed_s=50, cost_usd=1.0) == ""
    assert overshoot(b, elapsed_s=61.25, cost_usd=2.5) == (
        "1.2 s past the wall-time budget; $0.5000 past the cost budget"
    )
