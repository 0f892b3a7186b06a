"""Sandbox-side harness: call the program's solve(times) with the instance's processing times."""

import numpy as np


def run(program: dict, inputs: dict) -> dict:
    return program["solve"](np.asarray(inputs["times"], dtype=np.int64))
