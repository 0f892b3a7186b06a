"""Sandbox-side harness: call the program's solve(n) with the problem's n."""


def run(program: dict, inputs: dict) -> dict:
    return program["solve"](int(inputs["n"]))
