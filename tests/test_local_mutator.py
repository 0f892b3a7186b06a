"""The offline local mutator: a real litellm provider producing valid, different programs."""

import litellm

import evolve
from evolve.evaluators.harness import evaluate_code
from evolve.mutation.local import MODEL, register
from evolve.mutation.prompts import ParentView, build_messages, extract_current_program
from evolve.program import EditError, apply_response, code_hash


def _messages(problem, code):
    return build_messages(problem, ParentView(code, 0.5, {"bound": 0.5}, "bound 0.5"))


def test_prompt_round_trips_parent_code():
    p = evolve.load_problem("erdos/min_overlap")
    msgs = _messages(p, p.initial_code)
    assert extract_current_program(msgs[1]["content"]) == p.initial_code
    assert p.description.splitlines()[0] in msgs[1]["content"]


def test_local_mutator_through_litellm_gives_valid_distinct_children():
    register()
    p = evolve.load_problem("erdos/min_overlap")
    msgs = _messages(p, p.initial_code)
    children = set()
    for seed in range(30):
        r = litellm.completion(model=MODEL, messages=msgs, seed=seed)
        text = r.choices[0].message.content
        assert r.usage.prompt_tokens > 0
        try:
            child, mode = apply_response(p.initial_code, text)
        except EditError as exc:  # every answer must be a well-formed edit of this program
            raise AssertionError(f"seed {seed}: {exc}\n{text}") from None
        assert mode == "diff"
        compile(child, "child.py", "exec")
        children.add(code_hash(child))
    assert len(children) >= 20  # different programs, not one edit repeated


def test_local_mutator_is_deterministic_in_seed():
    register()
    p = evolve.load_problem("erdos/min_overlap")
    msgs = _messages(p, p.initial_code)
    a = litellm.completion(model=MODEL, messages=msgs, seed=11).choices[0].message.content
    b = litellm.completion(model=MODEL, messages=msgs, seed=11).choices[0].message.content
    assert a == b


def test_local_mutator_children_score_in_sandbox():
    register()
    p = evolve.load_problem("erdos/min_overlap")
    msgs = _messages(p, p.initial_code)
    statuses = []
    for seed in range(4):
        text = litellm.completion(model=MODEL, messages=msgs, seed=seed).choices[0].message.content
        child, _ = apply_response(p.initial_code, text)
        statuses.append(evaluate_code(p, child).status)
    assert "ok" in statuses
