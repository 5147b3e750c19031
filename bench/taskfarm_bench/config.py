"""Sizes of the runs, the clients, and the targets of the benchmark issue."""

SIZES = {
    "full": dict(
        canned_reps=5, canned_tasks_c=2000, canned_tasks_python=200,
        wrk_reps=5, wrk_seconds=5,
        real_reps=5, sqlite_tasks=30, pg_workers=[1, 2, 4, 8, 16], pg_tasks=48,
        callgrind_tasks=200, strace_tasks=(20, 120), worker_timeout=240,
        storm_workers=64, storm_reps=3,
        e_reps=3, e_workers=[1, 2, 4, 8, 16, 32], e_tasks=48,
        e_tight_workers=4, e_tight_tasks=8, e_tight_updates=1000, e_tight_sleep_us=1000,
        e_sizes=[1000, 10000, 50000], e_size_tail=200, e_size_workers=4,
        scale_workers=1000, scale_outage_s=5.0, scale_spreads=[2.5, 10.0],
    ),
    "smoke": dict(
        canned_reps=2, canned_tasks_c=30, canned_tasks_python=10,
        wrk_reps=1, wrk_seconds=1,
        real_reps=1, sqlite_tasks=3, pg_workers=[1, 2], pg_tasks=6,
        callgrind_tasks=3, strace_tasks=(2, 4), worker_timeout=120,
        storm_workers=4, storm_reps=1,
        e_reps=1, e_workers=[2], e_tasks=6,
        e_tight_workers=1, e_tight_tasks=2, e_tight_updates=50, e_tight_sleep_us=1000,
        e_sizes=[200], e_size_tail=10, e_size_workers=2,
        scale_workers=4, scale_outage_s=1.0, scale_spreads=[0.2],
    ),
}

CLIENTS = ("c", "python")
CLIENT_NAMES = {"c": "ours (C over the library)", "python": "Python taskfarm-worker 0.4.0"}

# Targets of the issue.
TARGET_RPS_VS_WRK = 0.8
TARGET_CPU_RATIO = 20.0       # Python's CPU per request / ours
TARGET_RSS_RATIO = 5.0        # Python's peak RSS / ours
TARGET_START_RATIO = 10.0     # Python's start -> first task / ours
TARGET_SERVER_BOUND_GAIN = 1.15
TARGET_STORM_RATIO = 10.0     # Python's time until every worker holds a task / ours with a token

# Scenario d: the three configurations of the start storm.
STORM_CONFIGS = (
    ("c", "password"),
    ("c", "token"),
    ("python", "password"),
)
STORM_NAMES = {
    ("c", "password"): "ours, each worker with the password",
    ("c", "token"): "ours, all with one shared token (`TASKFARM_TOKEN`)",
    ("python", "password"): "Python taskfarm-worker 0.4.0, each with the password",
}

# Scenario e: ours with the default update interval against Python.
E_CLIENTS = ("c-coalesced", "python")
# The index a server operator can add (taskfarm 0.4.0 has none on tasks.run_id).
RUN_ID_INDEX_SQL = "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_tasks_run_id ON tasks (run_id);"


def storm_key(client, auth):
    return f"{client}-{auth}"


def alternating(items, rep):
    """items in order in even repetitions, reversed in odd ones."""
    return tuple(items) if rep % 2 == 0 else tuple(reversed(items))
