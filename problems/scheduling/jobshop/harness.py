"""Sandbox-side harness: call the program's solve(machines, durations) with the instance."""

import numpy as np


def run(program: dict, inputs: dict) -> dict:
    machines = np.asarray(inputs["machines"], dtype=np.int64)
    durations = np.asarray(inputs["durations"], dtype=np.int64)
    return program["solve"](machines, durations)
