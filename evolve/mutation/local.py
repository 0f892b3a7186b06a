"""The offline local mutator: a litellm custom provider that edits code without any LLM.

It reads the parent program from the prompt, applies one real program transformation inside
the EVOLVE-BLOCK (perturbing numeric constants, swapping an operator, inserting a list
element) and answers with a SEARCH/REPLACE edit, exactly as a model would. A run on the local
mutator therefore takes the same path as one on GPT or Claude: prompt, response, diff, child.

Model string: `evolve-local/mutator`. Deterministic given the request's `seed`.

A problem plug-in may add structure-aware moves where perturbing constants is not enough: a
`mutations.py` in its folder defining `propose(code: str, rng: random.Random) -> tuple[str,
str] | None` (a description and the whole new program, or None). It is trusted code, like the
evaluator, and runs in the island's process; half of the local mutator's answers then come
from it (answered as a full rewrite), the rest from the generic moves.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import random
import time
import tokenize
from collections.abc import Callable
from pathlib import Path

from evolve.mutation.prompts import extract_current_program, extract_second_parent
from evolve.program import find_blocks

PROVIDER = "evolve-local"
MODEL = f"{PROVIDER}/mutator"

_SWAPS = {"+": "-", "-": "+", "*": "/", "/": "*", "<": "<=", "<=": "<", ">": ">=", ">=": ">"}
_NAME_SWAPS = {
    "min": "max",
    "max": "min",
    "sin": "cos",
    "cos": "sin",
    "floor": "ceil",
    "ceil": "floor",
}


def _format_number(value: float, like: str) -> str:
    if "." not in like and "e" not in like.lower():
        return str(int(round(value)))
    text = f"{value:.6g}"
    if "." not in text and "e" not in text and "inf" not in text and "nan" not in text:
        text += ".0"
    return text


class Mutation:
    """One transformation of the block: the changed line range and its new text."""

    def __init__(self, description: str, line_no: int, new_line: str) -> None:
        self.description = description
        self.line_no = line_no
        self.new_line = new_line


def _tokens_in_block(code: str) -> list[tokenize.TokenInfo]:
    blocks = find_blocks(code)
    line_starts = [0]
    for line in code.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))

    def offset(tok: tokenize.TokenInfo) -> int:
        return line_starts[tok.start[0] - 1] + tok.start[1]

    toks = list(tokenize.generate_tokens(io.StringIO(code).readline))
    if not blocks:
        return toks
    return [t for t in toks if any(b.start <= offset(t) < b.end for b in blocks)]


def _replace_span(line: str, col0: int, col1: int, text: str) -> str:
    return line[:col0] + text + line[col1:]


def propose(code: str, rng: random.Random) -> Mutation | None:
    """Pick and apply one transformation; None if the block offers nothing to change."""
    try:
        toks = _tokens_in_block(code)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    lines = code.splitlines()
    numbers = [t for t in toks if t.type == tokenize.NUMBER and "j" not in t.string.lower()]
    floats = [t for t in numbers if "." in t.string or "e" in t.string.lower()]
    ops = [t for t in toks if t.type == tokenize.OP and t.string in _SWAPS]
    names = [t for t in toks if t.type == tokenize.NAME and t.string in _NAME_SWAPS]
    choices = []
    if numbers:
        choices += [("perturb", 0.62), ("perturb_line", 0.18), ("insert", 0.05)]
    if ops:
        choices.append(("swap_op", 0.1))
    if names:
        choices.append(("swap_name", 0.05))
    if not choices:
        return None
    kind = rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]
    scale = rng.choice((0.02, 0.08, 0.25))

    def perturbed(tok: tokenize.TokenInfo) -> str:
        value = float(eval(tok.string, {"__builtins__": {}}))  # a NUMBER token: a literal
        if "." not in tok.string and "e" not in tok.string.lower():
            return str(max(0, int(value) + rng.choice((-2, -1, 1, 2))))
        new = value * (1.0 + scale * rng.gauss(0, 1)) + scale * 0.1 * rng.gauss(0, 1)
        return _format_number(new, tok.string)

    if kind == "perturb":
        tok = rng.choice(floats or numbers)
        row, c0 = tok.start
        new = _replace_span(lines[row - 1], c0, tok.end[1], perturbed(tok))
        return Mutation(f"perturb constant {tok.string} on line {row}", row, new)
    if kind == "perturb_line":
        row = rng.choice(numbers).start[0]
        line = lines[row - 1]
        for tok in sorted((t for t in numbers if t.start[0] == row), key=lambda t: -t.start[1]):
            line = _replace_span(line, tok.start[1], tok.end[1], perturbed(tok))
        return Mutation(f"perturb every constant on line {row}", row, line)
    if kind == "insert":
        tok = rng.choice(numbers)
        row = tok.start[0]
        after = lines[row - 1][tok.end[1] :].lstrip()
        if not after.startswith(","):
            return Mutation(
                f"perturb constant {tok.string} on line {row}",
                row,
                _replace_span(lines[row - 1], tok.start[1], tok.end[1], perturbed(tok)),
            )
        new = _replace_span(lines[row - 1], tok.end[1], tok.end[1], ", " + perturbed(tok))
        return Mutation(f"insert an element after {tok.string} on line {row}", row, new)
    if kind == "swap_op":
        tok = rng.choice(ops)
        row = tok.start[0]
        new = _replace_span(lines[row - 1], tok.start[1], tok.end[1], _SWAPS[tok.string])
        return Mutation(
            f"swap operator {tok.string} -> {_SWAPS[tok.string]} on line {row}", row, new
        )
    tok = rng.choice(names)
    row = tok.start[0]
    new = _replace_span(lines[row - 1], tok.start[1], tok.end[1], _NAME_SWAPS[tok.string])
    return Mutation(f"swap {tok.string} -> {_NAME_SWAPS[tok.string]} on line {row}", row, new)


def crossover(code: str, second: str, rng: random.Random) -> Mutation | None:
    """Take one constant from the second parent, where the two blocks have the same shape
    (the same sequence of tokens but for numbers) and differ in that constant."""
    try:
        mine, theirs = _tokens_in_block(code), _tokens_in_block(second)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    if [t.string for t in mine if t.type != tokenize.NUMBER] != [
        t.string for t in theirs if t.type != tokenize.NUMBER
    ]:
        return None
    pairs = [
        (a, b)
        for a, b in zip(
            [t for t in mine if t.type == tokenize.NUMBER],
            [t for t in theirs if t.type == tokenize.NUMBER],
            strict=True,
        )
        if a.string != b.string
    ]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    row = a.start[0]
    new = _replace_span(code.splitlines()[row - 1], a.start[1], a.end[1], b.string)
    return Mutation(
        f"take {b.string} from the second parent for {a.string} on line {row}", row, new
    )


def as_search_replace(code: str, m: Mutation) -> str:
    """A SEARCH/REPLACE edit for the mutation, with enough context lines to be unique."""
    lines = code.splitlines()
    lo = hi = m.line_no - 1
    while True:
        search = "\n".join(lines[lo : hi + 1])
        if code.count(search) == 1 or (lo == 0 and hi == len(lines) - 1):
            break
        if lo > 0:
            lo -= 1
        else:
            hi += 1
    replace = "\n".join(lines[lo : m.line_no - 1] + [m.new_line] + lines[m.line_no : hi + 1])
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE"


ProblemMoves = Callable[[str, random.Random], "tuple[str, str] | None"]
_problem_moves: ProblemMoves | None = None
PROBLEM_MOVES_SHARE = 0.5  # of answers, when the problem brings its own moves


def load_problem_moves(folder: Path) -> ProblemMoves | None:
    """The `propose` of a problem folder's mutations.py, or None if it has none."""
    path = Path(folder) / "mutations.py"
    if not path.exists():
        return None
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"_evolve_problem_{digest}_mutations", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ValueError(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, "propose", None)
    if not callable(fn):
        raise ValueError(f"{path} must define propose(code, rng) -> (description, new_code) | None")
    return fn


def use_problem_moves(fn: ProblemMoves | None) -> None:
    """Make this process's local mutator use a problem's own moves (None: generic only)."""
    global _problem_moves
    _problem_moves = fn


def mutate_prompt(prompt: str, seed: int | None) -> str:
    """The local mutator's whole answer to a prompt."""
    code = extract_current_program(prompt)
    if code is None:
        return "I could not find the current program in the prompt; no edit proposed."
    if seed is None:
        seed = int(hashlib.sha256(prompt.encode()).hexdigest()[:12], 16)
    rng = random.Random(seed)
    if _problem_moves is not None and rng.random() < PROBLEM_MOVES_SHARE:
        try:
            move = _problem_moves(code, rng)
        except Exception as exc:  # a bug in a plug-in's moves: say so, fall back to ours
            move = None
            text = f"(the problem's own moves failed: {type(exc).__name__}: {exc})\n"
        else:
            text = ""
        if move is not None and move[1].strip() and move[1] != code:
            return f"{text}Idea: {move[0]}.\n\n```python\n{move[1]}```\n"
    second = extract_second_parent(prompt)
    if second is not None:
        m = crossover(code, second, rng)
        if m is not None:
            return f"Idea: {m.description}.\n\n{as_search_replace(code, m)}\n"
    for _ in range(8):
        m = propose(code, rng)
        if m is None:
            return "The EVOLVE-BLOCK has no constants or operators I can change; no edit proposed."
        if m.new_line != code.splitlines()[m.line_no - 1]:
            return f"Idea: {m.description}.\n\n{as_search_replace(code, m)}\n"
    return "No effective change found; no edit proposed."


def answer(model_name: str, messages: list, seed: int | None) -> tuple[str, int, int]:
    """The local provider's answer to chat `messages`: (text, prompt tokens, completion
    tokens). Word counts stand in for tokens: it has no tokenizer and costs nothing.
    Plain Python: a process that only uses the local provider never imports litellm."""
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    if model_name.endswith("/judge"):
        from evolve.mutation.judge import local_answer

        text = local_answer(prompt)
    elif "## Digest" in prompt and "## Current program" not in prompt:
        from evolve.mutation import scratchpad

        text = scratchpad.local_answer(prompt)
    else:
        text = mutate_prompt(prompt, seed)
    return text, len(prompt.split()), len(text.split())


def _provider_class():
    """The litellm custom provider `evolve-local` (for callers that go through litellm)."""
    import litellm
    from litellm import CustomLLM

    class LocalMutator(CustomLLM):
        def _answer(self, model_name: str, messages: list, optional_params: dict, model_response):
            t0 = time.perf_counter()
            text, pt, ct = answer(model_name, messages, optional_params.get("seed"))
            model_response.choices[0].message.content = text  # type: ignore[union-attr]
            model_response.model = f"{PROVIDER}/{model_name.rsplit('/', 1)[-1]}"
            model_response.usage = litellm.Usage(  # type: ignore[attr-defined]
                prompt_tokens=pt, completion_tokens=ct, total_tokens=pt + ct
            )
            model_response._hidden_params["local_latency_s"] = time.perf_counter() - t0
            return model_response

        def completion(self, model, messages, api_base, custom_prompt_dict, model_response,
                       print_verbose, encoding, api_key, logging_obj, optional_params, *args, **kwargs):  # fmt: skip
            return self._answer(str(model), messages, optional_params or {}, model_response)

        async def acompletion(self, model, messages, api_base, custom_prompt_dict, model_response,
                              print_verbose, encoding, api_key, logging_obj, optional_params, *args, **kwargs):  # fmt: skip
            return self._answer(str(model), messages, optional_params or {}, model_response)

    return LocalMutator


_registered = False


def register() -> None:
    """Register the provider with litellm (idempotent; call in every process that completes)."""
    global _registered
    if _registered:
        return
    import litellm

    entries = [e for e in (litellm.custom_provider_map or []) if e.get("provider") != PROVIDER]
    entries.append({"provider": PROVIDER, "custom_handler": _provider_class()()})
    litellm.custom_provider_map = entries
    _registered = True
