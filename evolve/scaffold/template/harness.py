"""Runs inside the sandbox: calls the candidate with the instance's parameters."""


def run(program, inputs):
    return program["solve"](int(inputs["n"]))
