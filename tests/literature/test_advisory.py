"""The optional LLM advisory, through real litellm HTTP to the stub server; never changes a verdict."""

from __future__ import annotations

import numpy as np
import pytest
from llm_stub import cut_off, garbage, rate_limited, reply, server_error, slow, truncated

from evolve.literature import check
from evolve.problem import load_problem


def _opts(stub, **extra):
    return {"api_base": stub.api_base, "api_key": "sk-test", **extra}


def test_advisory_is_stored_with_the_model_and_never_changes_the_verdict(llm_stub):
    llm_stub.script(
        reply("Haugland 2016 gives 0.380927; this value appears in no prior work I know.")
    )
    p = load_problem("erdos/min_overlap")
    outs = {"h": np.full(10, 0.5)}
    ev = p.score(outs)
    plain = check(p, outs, ev)
    with_llm = check(p, outs, ev, llm="openai/stub", llm_options=_opts(llm_stub))
    assert plain.advisory is None
    assert with_llm.status == plain.status == "below_known"
    assert with_llm.advisory["model"] == "openai/stub"
    assert with_llm.advisory["note"].startswith("Haugland 2016 gives 0.380927")
    assert with_llm.advisory["error"] == "" and with_llm.advisory["completion_tokens"] > 0
    assert {k: v for k, v in with_llm.to_dict().items() if k != "advisory"} == {
        k: v for k, v in plain.to_dict().items() if k != "advisory"
    }
    (req,) = llm_stub.requests
    assert req.path == "/v1/chat/completions" and req.body["model"] == "stub"
    assert (
        "Erdős minimum overlap" in req.prompt and "0.5" in req.prompt and "0.380871" in req.prompt
    )
    assert req.headers.get("authorization") == "Bearer sk-test"


def test_advisory_cannot_upgrade_an_unconfirmed_improvement(llm_stub, tiny):
    llm_stub.script(reply("This is certainly a new record and a discovery."))
    outs = {"x": np.arange(6)}
    v = check(tiny, outs, tiny.score(outs), llm="openai/stub", llm_options=_opts(llm_stub))
    assert v.status == "matches_known" and v.unconfirmed_improvement
    assert "new record" in v.advisory["note"]  # stored as said, as advice
    assert "record" not in v.message().lower()


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (rate_limited(retry_after=1), "RateLimitError"),
        (server_error(500), "InternalServerError"),
        (server_error(503, "overloaded"), "ServiceUnavailableError"),
        (garbage(), "Error"),
        (cut_off(), "Error"),
    ],
    ids=["429", "500", "503", "garbage", "cut-off"],
)
def test_advisory_failures_are_recorded_once_without_retries(llm_stub, tiny, behaviour, expected):
    llm_stub.script(behaviour)
    outs = {"x": np.array([1, 2])}
    v = check(
        tiny, outs, tiny.score(outs), llm="openai/stub", llm_options=_opts(llm_stub, timeout=10)
    )
    assert v.status == "below_known"
    assert v.advisory["note"] == "" and expected in v.advisory["error"]
    assert len(llm_stub.requests) == 1  # one request, not a stack of retries


def test_slow_model_times_out_into_the_record(llm_stub, tiny):
    llm_stub.script(slow(3.0, "too late"))
    outs = {"x": np.array([1, 2])}
    v = check(
        tiny, outs, tiny.score(outs), llm="openai/stub", llm_options=_opts(llm_stub, timeout=0.5)
    )
    assert v.status == "below_known"
    assert "Timeout" in v.advisory["error"] and v.advisory["latency_s"] < 3.0


def test_truncated_answer_is_kept_and_flagged(llm_stub, tiny):
    llm_stub.script(truncated("Prior work includes"))
    outs = {"x": np.array([1, 2])}
    v = check(tiny, outs, tiny.score(outs), llm="openai/stub", llm_options=_opts(llm_stub))
    assert v.advisory["note"] == "Prior work includes" and v.advisory["truncated"] is True
