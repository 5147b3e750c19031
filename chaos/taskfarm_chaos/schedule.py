"""The seeded fault schedule. The same seed and soak length give the same
faults, at the same times, with the same parameters and the same worker slots;
where a fault lands (which phase a SIGKILL hit, which requests a proxy window
caught) depends on the run and is recorded by `faults`.

Each fault is a dict: {"at": seconds from the start, "kind": one of KINDS,
"slot": the worker slot it aims at (worker faults), "seconds": its length
(windows, SIGSTOP), "offset": a clock skew in seconds (skew)}.
"""

import random

# Every kind, with its weight in the draw.
KINDS = {
    "kill-task": 3,        # SIGKILL of a worker between "start" and "computed"
    "kill-request": 2,     # SIGKILL of a worker waiting for tf_worker_task
    "kill-done": 2,        # SIGKILL of a worker inside tf_worker_done
    "term": 2,             # SIGTERM (a stop signal: the task is handed back)
    "stop-short": 1,       # SIGSTOP shorter than --stale, then SIGCONT
    "stop-long": 1,        # SIGSTOP longer than --stale, then SIGCONT
    "server-kill": 1,      # gunicorn's master SIGKILLed, server restarted
    "postgres-restart": 1,  # PostgreSQL restarted under the server
    "proxy-drop": 1,       # connections closed at once
    "proxy-delay": 1,      # answers held longer than the client's timeout
    "proxy-cut": 1,        # answers cut in half
    "proxy-reset": 1,      # the request reaches the server, the client gets a reset
    "disk-full": 1,        # the journal directory's file system filled up
    "skew": 1,             # a worker replaced by one whose clock is off
    "reaper-swap": 1,      # the reaper moves to the other host (or back)
}

WORKER_KINDS = ("kill-task", "kill-request", "kill-done", "term", "stop-short", "stop-long", "skew")
WINDOW_KINDS = ("proxy-drop", "proxy-delay", "proxy-cut", "proxy-reset", "disk-full")


def make_schedule(seed, seconds, workers, stale, mean_interval):
    """The faults of a soak of `seconds` with `workers` slots, in time order."""
    rng = random.Random(seed)
    kinds = sorted(KINDS)
    weights = [KINDS[k] for k in kinds]
    faults = []
    t = rng.uniform(1.0, 2.0 * mean_interval)
    while t < seconds:
        kind = rng.choices(kinds, weights)[0]
        fault = {"at": round(t, 3), "kind": kind}
        if kind in WORKER_KINDS:
            fault["slot"] = rng.randrange(workers)
        if kind == "stop-short":
            fault["seconds"] = round(rng.uniform(0.2, 0.5) * stale, 3)
        elif kind == "stop-long":
            fault["seconds"] = round(rng.uniform(1.5, 3.0) * stale, 3)
        elif kind in WINDOW_KINDS:
            fault["seconds"] = round(rng.uniform(0.5, 3.0), 3)
        elif kind == "skew":
            # Behind or ahead, by less or more than --stale.
            fault["offset"] = round(rng.choice((-1, 1)) * rng.choice((0.5, 3.0)) * stale, 3)
        faults.append(fault)
        t += rng.expovariate(1.0 / mean_interval)
    return faults


def count_kinds(faults):
    counts = dict.fromkeys(sorted(KINDS), 0)
    for f in faults:
        counts[f["kind"]] += 1
    return counts
