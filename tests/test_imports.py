"""What each process imports: start-up is paid per process, so a process imports only what it
uses (the island of an offline run never imports litellm; the live view never imports Ray)."""

from __future__ import annotations

import subprocess
import sys

LOCAL_ISLAND = """
import asyncio, random, sys
from evolve.mutation.client import LLMClient, ModelSpec
from evolve.mutation.prompts import ParentView, build_messages
import evolve

problem = evolve.load_problem("erdos/min_overlap")
messages = build_messages(problem, ParentView(problem.initial_code, 0.5, {}), [], "diff")
client = LLMClient([ModelSpec("evolve-local/mutator")])
call = asyncio.run(client.acomplete(client.choose(random.Random(0)), messages, seed=1))
assert call.text and call.error == "", call
print(sorted(m for m in ("litellm", "ray") if m in sys.modules))
"""


def _imports(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_an_offline_island_never_imports_litellm():
    assert _imports(LOCAL_ISLAND) == "[]"


def test_the_live_view_imports_neither_ray_nor_the_driver():
    code = (
        "import sys, evolve.report.live\n"
        "print(sorted(m for m in ('ray', 'evolve.engine.driver', 'litellm') if m in sys.modules))"
    )
    assert _imports(code) == "[]"
