"""Seed program for the job shop: Giffler-Thompson active schedules driven by a priority rule.

The schedule builder (outside the EVOLVE-BLOCK) repeatedly takes the machine where the next
operation could finish first and lets the `priority` rule choose which of the operations
competing for that machine goes next. The rule as given is "most work remaining" (MWR), mixed
with a little "shortest processing time" and "longest waiting": its weights are knobs that a
mutator changing only constants can tune. The tie-break noise (0) and its seed leave the rule
unchanged as given; the zero weights add terms when perturbed.
"""

import random

import numpy as np

# EVOLVE-BLOCK-START
SEED = 12345  # the stream of tie-break noise
NOISE = 0.0  # tie-break noise, in mean operation times
W_WORK = 1.0  # work the job has left, this operation included (MWR)
W_OPS = 0.0  # operations the job has left
W_TIME = -0.2  # this operation's processing time (a negative weight prefers short ones)
W_WAIT = 0.2  # how long the job has been ready before the machine frees up
W_NEXT = 0.0  # work left on the job's next machine (feed the bottleneck first)


def priority(work_left, ops_left, time, waited, next_load, rng):
    """Higher goes first among the operations competing for a machine. Times are in units
    of the instance's mean operation time."""
    return (
        W_WORK * work_left
        + W_OPS * ops_left
        + W_TIME * time
        + W_WAIT * waited
        + W_NEXT * next_load
        + NOISE * rng.random()
    )
# EVOLVE-BLOCK-END


def schedule(machines: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """Per machine, the jobs in processing order ([machines, jobs]), Giffler-Thompson style."""
    n, m = machines.shape
    route = machines.tolist()
    time = durations.tolist()
    unit = float(durations.mean()) or 1.0
    rng = random.Random(SEED)
    work_left = [float(sum(row)) for row in time]
    machine_left = [0.0] * m
    for j in range(n):
        for o in range(m):
            machine_left[route[j][o]] += time[j][o]
    job_next, job_free, mach_free = [0] * n, [0] * n, [0] * m
    sequence = [[] for _ in range(m)]
    for _ in range(n * m):
        # The operation that could finish first fixes the machine to decide on.
        finish, k_star = None, -1
        for j in range(n):
            if job_next[j] < m:
                o = job_next[j]
                k = route[j][o]
                c = max(job_free[j], mach_free[k]) + time[j][o]
                if finish is None or c < finish:
                    finish, k_star = c, k
        best, best_j = None, -1
        for j in range(n):
            o = job_next[j]
            if o < m and route[j][o] == k_star and max(job_free[j], mach_free[k_star]) < finish:
                p = priority(
                    work_left[j] / unit,
                    m - o,
                    time[j][o] / unit,
                    max(0, mach_free[k_star] - job_free[j]) / unit,
                    (machine_left[route[j][o + 1]] if o + 1 < m else 0.0) / unit,
                    rng,
                )
                if best is None or p > best:
                    best, best_j = p, j
        j, o = best_j, job_next[best_j]
        start = max(job_free[j], mach_free[k_star])
        job_free[j] = mach_free[k_star] = start + time[j][o]
        work_left[j] -= time[j][o]
        machine_left[k_star] -= time[j][o]
        job_next[j] += 1
        sequence[k_star].append(j)
    return np.array(sequence, dtype=np.int64)


def solve(machines: np.ndarray, durations: np.ndarray) -> dict:
    return {"order": schedule(machines, durations)}
