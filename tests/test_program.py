"""EVOLVE-BLOCK regions, SEARCH/REPLACE parsing and application, malformed responses."""

import pytest

from evolve.program import (
    EditError,
    apply_response,
    block_text,
    code_hash,
    find_blocks,
    parse_diffs,
    shard_of,
)

PARENT = """import numpy as np

# EVOLVE-BLOCK-START
def f(x):
    a = 1.5
    return a * x + 2
# EVOLVE-BLOCK-END


def solve():
    return {"y": f(np.arange(3))}
"""


def edit(search: str, replace: str) -> str:
    return f"Some idea.\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def test_blocks_found():
    (b,) = find_blocks(PARENT)
    assert PARENT[b.start : b.end].startswith("def f(x):")
    assert "solve" not in block_text(PARENT)


def test_apply_diff_inside_block():
    child, mode = apply_response(PARENT, edit("    a = 1.5", "    a = 2.5"))
    assert mode == "diff"
    assert "a = 2.5" in child and "a = 1.5" not in child
    assert child.split("# EVOLVE-BLOCK-END")[1] == PARENT.split("# EVOLVE-BLOCK-END")[1]


def test_several_diffs_applied_in_order():
    resp = edit("    a = 1.5", "    a = 3.0") + edit("    return a * x + 2", "    return a * x - 2")
    assert len(parse_diffs(resp)) == 2
    child, _ = apply_response(PARENT, resp)
    assert "a = 3.0" in child and "a * x - 2" in child


def test_edit_outside_block_rejected():
    with pytest.raises(EditError) as e:
        apply_response(PARENT, edit('    return {"y": f(np.arange(3))}', '    return {"y": 0}'))
    assert e.value.kind == "outside_block"


def test_edit_removing_marker_rejected():
    with pytest.raises(EditError) as e:
        apply_response(PARENT, edit("# EVOLVE-BLOCK-END\n", ""))
    assert e.value.kind == "outside_block"


def test_search_not_found():
    with pytest.raises(EditError) as e:
        apply_response(PARENT, edit("    b = 7", "    b = 8"))
    assert e.value.kind == "search_not_found"


def test_trailing_whitespace_tolerated():
    child, _ = apply_response(PARENT, edit("    a = 1.5   ", "    a = 0.5"))
    assert "a = 0.5" in child


@pytest.mark.parametrize(
    "response, kind",
    [
        ("I think we should change a.", "no_edit"),
        ("<<<<<<< SEARCH\n    a = 1.5\n>>>>>>> REPLACE", "malformed"),
        ("<<<<<<< SEARCH\n    a = 1.5\n=======\n    a = 2", "malformed"),
        (edit("", "x = 1"), "malformed"),
        (edit("    a = 1.5", "    a = 1.5"), "no_change"),
        ("", "no_edit"),
    ],
)
def test_malformed_responses(response, kind):
    with pytest.raises(EditError) as e:
        apply_response(PARENT, response)
    assert e.value.kind == kind


def test_rewrite_of_block_body():
    resp = "Here:\n```python\ndef f(x):\n    return 3 * x\n```\n"
    child, mode = apply_response(PARENT, resp)
    assert mode == "rewrite"
    assert "return 3 * x" in child and "def solve" in child
    assert "# EVOLVE-BLOCK-START" in child


def test_rewrite_of_whole_program_must_keep_frozen_parts():
    whole = PARENT.replace("a = 1.5", "a = 9.0")
    child, _ = apply_response(PARENT, f"```python\n{whole}```")
    assert "a = 9.0" in child
    tampered = whole.replace("np.arange(3)", "np.arange(30)")
    with pytest.raises(EditError) as e:
        apply_response(PARENT, f"```python\n{tampered}```")
    assert e.value.kind == "outside_block"


def test_rewrite_with_a_stray_block_end_is_rejected_not_spliced():
    # Found by tests/test_fuzz_inputs.py: a whole program whose START marker the model left
    # out was spliced into the block, END marker and all, giving a child no edit could touch.
    whole = PARENT.replace("# EVOLVE-BLOCK-START\n", "").replace("a = 1.5", "a = 9.0")
    with pytest.raises(EditError) as e:
        apply_response(PARENT, f"```python\n{whole}```")
    assert e.value.kind == "outside_block"


def test_hash_ignores_comments_and_layout_only():
    assert code_hash(PARENT) == code_hash(
        PARENT.replace("    a = 1.5", "    a = 1.5  # tuned") + "\n\n"
    )
    assert code_hash(PARENT) != code_hash(PARENT.replace("1.5", "1.6"))


# Pairs that differ only by where a statement sits: distinct programs, distinct hashes.
_INSIDE_LOOP = "def f(xs):\n    s = 0\n    for x in xs:\n        s += x\n        return s\n"
_AFTER_LOOP = "def f(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n"
_DISTINCT = [
    (_INSIDE_LOOP, _AFTER_LOOP),
    ("if a:\n    b()\n    c()\n", "if a:\n    b()\nc()\n"),
    (
        "def f():\n    def g():\n        pass\n    return g\n",
        "def f():\n    def g():\n        pass\nreturn g\n",
    ),
    ("while a:\n    a -= 1\nelse:\n    b()\n", "while a:\n    a -= 1\nb()\n"),
    ("try:\n    a()\n    b()\nexcept E:\n    pass\n", "try:\n    a()\nexcept E:\n    pass\nb()\n"),
    ("x = 'a  b'\n", "x = 'a b'\n"),  # inside a string, spaces are data
    ("x = (a - b) * c\n", "x = a - b * c\n"),
]
# Pairs that differ only in comments and layout: the same program.
_SAME = [
    (_AFTER_LOOP, _AFTER_LOOP.replace("    ", "  ").replace("s += x", "s+=x  # add")),
    ("x = f(a,\n      b)\n", "x = f(a, b)\n\n\n# done\n"),
    ("y = [1,\n     2]\n", "y = [1, 2]\n"),
    ("x = (a - b) * c\n", "x = ((a - b)) * c\n"),  # redundant brackets are layout
]


@pytest.mark.parametrize("a, b", _DISTINCT)
def test_hash_tells_apart_programs_that_differ_in_structure(a, b):
    assert code_hash(a) != code_hash(b)


@pytest.mark.parametrize("a, b", _SAME)
def test_hash_ignores_comments_and_layout(a, b):
    assert code_hash(a) == code_hash(b)


def test_hash_of_code_that_does_not_parse_keeps_its_indentation():
    broken_inside, broken_after = _INSIDE_LOOP + "  )", _AFTER_LOOP + "  )"
    assert code_hash(broken_inside) != code_hash(broken_after)
    assert code_hash(broken_inside) == code_hash("# note\n" + broken_inside)


def test_shard_of_is_fixed_by_the_hash_alone_and_spreads_programs_evenly():
    """Every island must send a program to the same queue (its duplicate gate), in any
    process: no per-process salt (Python's hash() has one), and an even spread."""
    import subprocess
    import sys

    hashes = [code_hash(f"x = {i}\n") for i in range(2000)]
    shards = [shard_of(h, 4) for h in hashes]
    assert set(shards) == {0, 1, 2, 3}
    assert min(shards.count(q) for q in range(4)) > 400  # 500 each on average
    assert all(shard_of(h, 1) == 0 for h in hashes[:10])
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "from evolve.program import shard_of; import sys; "
            "print([shard_of(h, 4) for h in sys.argv[1:]])",
            *hashes[:50],
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert other.strip() == str(shards[:50])
