"""Sandbox-side harness: call the program's solve(C) with the problem's discrepancy bound C."""


def run(program: dict, inputs: dict) -> dict:
    return program["solve"](int(inputs["C"]))
