"""The novelty filter: a child too similar to a program its island already holds is not run.

Before a child is evaluated, its embedding is compared with those of the island's members;
at or above `threshold` cosine similarity to the nearest, the child is rejected, recorded with
the neighbour and the similarity, and not counted against the evaluation budget: the island's
next request is the model's next try. On by default. Offline (the default) the embedding is a
hashed bag of the program's tokens and token bigrams inside the EVOLVE-BLOCK, numbers bucketed
by magnitude so that a constant nudged by a hair reads as the same program while a new
expression does not; with `model` set it is a litellm embedding (e.g.
`openai/text-embedding-3-small`), recorded like every call.
"""

from __future__ import annotations

import hashlib
import io
import math
import tokenize
from dataclasses import dataclass

from evolve.program import EditError, find_blocks

DIMS = 512
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING, tokenize.ENDMARKER}


@dataclass(frozen=True)
class Neighbour:
    """The nearest program on the island and how similar the child is to it."""

    program_id: int
    similarity: float


def _number_token(text: str) -> str:
    """A number as its sign and order of magnitude with two significant digits: 0.1234 and
    0.1236 read alike; 0.12 and 0.5 do not."""
    try:
        value = float(text.rstrip("jJ"))
    except ValueError:
        return "NUM"
    if value == 0 or not math.isfinite(value):
        return f"NUM:{value}"
    return f"NUM:{float(f'{value:.2g}')}"


def _tokens(code: str) -> list[str]:
    try:
        blocks = find_blocks(code)
    except EditError:
        blocks = []
    if blocks:  # only what may change: the fixed scaffold would make every program alike
        code = "\n".join(code[b.start : b.end] for b in blocks)
    out: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in _SKIP:
                continue
            if tok.type == tokenize.NUMBER:
                out.append(_number_token(tok.string))
            elif tok.type in (tokenize.INDENT, tokenize.DEDENT):
                out.append(tokenize.tok_name[tok.type])  # structure matters, not its width
            else:
                out.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        out = code.split()
    return out


def embed_offline(code: str) -> list[float]:
    """A unit vector of hashed token and bigram counts (no network, deterministic)."""
    vec = [0.0] * DIMS
    toks = _tokens(code)
    for gram in [*toks, *(f"{a} {b}" for a, b in zip(toks, toks[1:], strict=False))]:
        h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "little")
        vec[h % DIMS] += 1.0 if (h >> 32) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def cosine(a: list[float], b: list[float]) -> float:
    na = math.sqrt(sum(x * x for x in a)) or 1.0
    nb = math.sqrt(sum(x * x for x in b)) or 1.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)


def nearest(vec: list[float], others: dict[int, list[float]]) -> Neighbour | None:
    """The most similar of `others` (program id -> embedding), or None if there are none."""
    best: Neighbour | None = None
    for pid, other in others.items():
        if len(other) != len(vec):
            continue  # embeddings of another model (after a config change): not comparable
        s = cosine(vec, other)
        if best is None or s > best.similarity:
            best = Neighbour(pid, s)
    return best
