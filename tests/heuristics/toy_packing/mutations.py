"""Structure-aware moves for the toy packing problem (a test fixture of the plug-in hook):
replace the body of priority() with one of a few whole rules."""

RULES = {
    "best fit": "    return -(bins - item)\n",
    "worst fit": "    return bins - item\n",
    "first fit": "    return np.zeros(len(bins))\n",
}


def propose(code, rng):
    start = code.index("def priority")
    end = code.index("# EVOLVE-BLOCK-END")
    name = rng.choice(sorted(RULES))
    new = code[:start] + "def priority(item, bins):\n" + RULES[name] + code[end:]
    return (f"replace the rule by {name}", new) if new != code else None
