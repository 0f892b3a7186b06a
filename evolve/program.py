"""Programs as text: EVOLVE-BLOCK regions, SEARCH/REPLACE diffs, full-block rewrites, hashing.

Only code between `# EVOLVE-BLOCK-START` and `# EVOLVE-BLOCK-END` may change. An edit is
applied to the whole program text and then checked: everything outside the blocks must be
byte-for-byte what it was, or the edit is rejected with the reason.
"""

from __future__ import annotations

import ast
import hashlib
import re
import zlib
from dataclasses import dataclass

BLOCK_START = "# EVOLVE-BLOCK-START"
BLOCK_END = "# EVOLVE-BLOCK-END"

_DIFF_RE = re.compile(
    r"<{5,}\s*SEARCH[^\n]*\n(.*?)\n?={5,}[^\n]*\n(.*?)\n?>{5,}\s*REPLACE",
    re.DOTALL,
)
_FENCE_RE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


class EditError(ValueError):
    """An LLM response that cannot be turned into a valid child; the message says why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # no_edit, malformed, search_not_found, outside_block, no_change


@dataclass(frozen=True)
class Block:
    """One EVOLVE-BLOCK: the character span of its body (between the marker lines)."""

    start: int
    end: int


def find_blocks(code: str) -> list[Block]:
    """The evolvable regions of `code`, in order; raises EditError if the markers are unbalanced."""
    blocks: list[Block] = []
    pos = 0
    lines = code.splitlines(keepends=True)
    open_at: int | None = None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(BLOCK_START):
            if open_at is not None:
                raise EditError("malformed", "nested EVOLVE-BLOCK-START")
            open_at = pos + len(line)
        elif stripped.startswith(BLOCK_END):
            if open_at is None:
                raise EditError("malformed", "EVOLVE-BLOCK-END without a start")
            blocks.append(Block(open_at, pos))
            open_at = None
        pos += len(line)
    if open_at is not None:
        raise EditError("malformed", "EVOLVE-BLOCK-START without an end")
    return blocks


def block_text(code: str) -> str:
    """The concatenated bodies of all blocks (the whole program if it has no block)."""
    blocks = find_blocks(code)
    if not blocks:
        return code
    return "".join(code[b.start : b.end] for b in blocks)


def frozen_parts(code: str) -> list[str]:
    """The text outside the blocks, which no edit may change."""
    blocks = find_blocks(code)
    parts, pos = [], 0
    for b in blocks:
        parts.append(code[pos : b.start])
        pos = b.end
    parts.append(code[pos:])
    return parts


@dataclass(frozen=True)
class SearchReplace:
    search: str
    replace: str


def parse_diffs(response: str) -> list[SearchReplace]:
    """All SEARCH/REPLACE blocks in an LLM response (empty list if there are none)."""
    return [SearchReplace(m.group(1), m.group(2)) for m in _DIFF_RE.finditer(response)]


def parse_rewrite(response: str) -> str | None:
    """The code of a full rewrite: the longest fenced python block in the response, if any."""
    blocks = _FENCE_RE.findall(response)
    if not blocks:
        return None
    return max(blocks, key=len)


def _check_frozen(parent: str, child: str) -> None:
    try:
        child_frozen = frozen_parts(child)
    except EditError as exc:
        raise EditError(
            "outside_block", f"the edit broke the EVOLVE-BLOCK markers: {exc}"
        ) from None
    if child_frozen != frozen_parts(parent):
        raise EditError("outside_block", "the edit changes code outside the EVOLVE-BLOCK regions")


def apply_diffs(parent: str, diffs: list[SearchReplace]) -> str:
    """Apply SEARCH/REPLACE edits in order; each SEARCH must match inside an EVOLVE-BLOCK."""
    if not diffs:
        raise EditError("no_edit", "the response contains no SEARCH/REPLACE block")
    child = parent
    for i, d in enumerate(diffs, 1):
        if not d.search.strip():
            raise EditError("malformed", f"edit {i} has an empty SEARCH section")
        at = child.find(d.search)
        if at < 0:
            # Tolerate trailing-whitespace differences, a common LLM slip, but nothing else.
            loose = _loose_find(child, d.search)
            if loose is None:
                raise EditError(
                    "search_not_found", f"edit {i}: SEARCH text not found in the parent"
                )
            at, length = loose
        else:
            length = len(d.search)
        inside = any(b.start <= at and at + length <= b.end for b in find_blocks(child))
        if find_blocks(child) and not inside:
            raise EditError("outside_block", f"edit {i}: SEARCH text lies outside the EVOLVE-BLOCK")
        child = child[:at] + d.replace + child[at + length :]
    _check_frozen(parent, child)
    if child == parent:
        raise EditError("no_change", "the edits leave the program unchanged")
    return child


def _loose_find(text: str, search: str) -> tuple[int, int] | None:
    want = [ln.rstrip() for ln in search.splitlines()]
    lines = text.splitlines(keepends=True)
    offsets, pos = [], 0
    for ln in lines:
        offsets.append(pos)
        pos += len(ln)
    for i in range(len(lines) - len(want) + 1):
        if all(lines[i + j].rstrip() == want[j] for j in range(len(want))):
            end = offsets[i + len(want) - 1] + len(lines[i + len(want) - 1].rstrip("\r\n"))
            return offsets[i], end - offsets[i]
    return None


def apply_rewrite(parent: str, new_code: str) -> str:
    """Accept a full rewrite: either a whole program whose frozen parts are unchanged, or new
    block contents (when the parent has exactly one block) spliced into the parent."""
    blocks = find_blocks(parent)
    # Either marker means a whole program: a stray END spliced into a block would leave the
    # child's markers unbalanced, and every later edit of it malformed.
    if BLOCK_START in new_code or BLOCK_END in new_code or not blocks:
        child = new_code if new_code.endswith("\n") else new_code + "\n"
        if blocks:
            _check_frozen(parent, child)
        else:
            find_blocks(child)  # a program with no blocks may gain them, balanced
    elif len(blocks) == 1:
        body = new_code if new_code.endswith("\n") else new_code + "\n"
        child = parent[: blocks[0].start] + body + parent[blocks[0].end :]
    else:
        raise EditError(
            "malformed", "a rewrite of a multi-block program must give the whole program"
        )
    if child == parent:
        raise EditError("no_change", "the rewrite leaves the program unchanged")
    return child


def apply_response(parent: str, response: str) -> tuple[str, str]:
    """Turn an LLM response into a child program. Returns (child, mode: 'diff' | 'rewrite')."""
    diffs = parse_diffs(response)
    if diffs:
        return apply_diffs(parent, diffs), "diff"
    if "<<<<<<< SEARCH" in response or ">>>>>>> REPLACE" in response:
        raise EditError(
            "malformed", "a SEARCH/REPLACE block is incomplete (missing ======= or REPLACE)"
        )
    code = parse_rewrite(response)
    if code is None:
        raise EditError(
            "no_edit", "the response has neither SEARCH/REPLACE blocks nor a ```python block"
        )
    return apply_rewrite(parent, code), "rewrite"


def normalise_code(code: str) -> str:
    """The program's structure, without comments or layout (for duplicate detection).

    The syntax tree keeps what the program does, indentation included (a `return` inside a
    loop is not the same program as one after it), and drops comments, blank lines, spacing,
    line breaks inside brackets and the width of an indent. Code that does not parse keeps
    its lines, indentation included, less comment-only and blank lines.
    """
    try:
        return ast.dump(ast.parse(code), annotate_fields=False, include_attributes=False)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        lines = (line.rstrip() for line in code.splitlines())
        return "\n".join(
            line for line in lines if line.strip() and not line.lstrip().startswith("#")
        )


def code_hash(code: str) -> str:
    """Hash of the normalised code: programs differing only in comments or layout collide."""
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()[:32]


def shard_of(code_hash: str, shards: int) -> int:
    """Which of `shards` evaluation queues owns a program (engine/queue.py): the same for
    every island, so each queue's duplicate gate is exact for the programs it owns."""
    return zlib.crc32(code_hash.encode()) % shards if shards > 1 else 0


def unified_diff(parent: str, child: str) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(
            parent.splitlines(keepends=True),
            child.splitlines(keepends=True),
            "parent",
            "child",
            n=1,
        )
    )
