"""Scenario d: the start storm. n workers started at once on one run of n
tasks on the PostgreSQL server, one task each: ours with the password, ours
with one shared token (TASKFARM_TOKEN), Python with the password."""

import statistics
import time

from .checks import check, log
from .config import STORM_CONFIGS, alternating, storm_key
from .load import cpu_busy_seconds

# Left out of the storm's environment: each configuration sets its own.
AUTH_VARIABLES = ("TASKFARM_USER", "TASKFARM_PASSWORD", "TASKFARM_TOKEN", "BENCH_BARRIER")


def scenario_storm(cfg, server, workers, env):
    """n workers started at once on one run of n tasks, each taking exactly
    one task (MAX_TASKS 1, so none waits for a task another frees): the time
    from the first start until every worker holds its task, the server's CPU
    over the whole storm, and the `GET /api/token` lines gunicorn logged."""
    n = cfg["storm_workers"]
    rows = []
    for rep in range(cfg["storm_reps"]):
        for client, auth in alternating(STORM_CONFIGS, rep):
            run_uuid = server.create_run(n)
            e = {k: v for k, v in env.items() if k not in AUTH_VARIABLES}
            e.update(TASKFARM_URL=server.url, TASKFARM_TIMEOUT="120", BENCH_LIST_TASKS="1")
            if auth == "token":
                e["TASKFARM_TOKEN"] = server.token
            else:
                e.update(TASKFARM_USER=server.user, TASKFARM_PASSWORD=server.password)
            log_offset = server.log_size()
            cpu0, busy0 = server.cpu_seconds(), cpu_busy_seconds()
            t0 = time.monotonic_ns()
            e["BENCH_T0_NS"] = str(t0)
            reports = workers.run_at_once(client, run_uuid, n, e, max_tasks=1)
            end = time.monotonic_ns()
            server_cpu = server.cpu_seconds() - cpu0
            busy = cpu_busy_seconds() - busy0
            holds = [r["first_task_s"] for r in reports]
            handed = sorted(t for r in reports for t in r["task_list"])
            name = f"storm {storm_key(client, auth)} x{n} rep {rep + 1}"
            check(handed == list(range(n)) and min(holds) >= 0,
                  f"{name}: tasks handed out {handed[:10]}... (each of {n} once expected)")
            token_requests = server.token_requests_since(log_offset)
            expected = 0 if auth == "token" else n
            check(token_requests == expected,
                  f"{name}: {token_requests} GET /api/token in gunicorn's access log, not {expected}")
            window = (end - t0) / 1e9
            rows.append(dict(
                scenario="d-storm", db="postgresql", workers=n, client=storm_key(client, auth),
                rep=rep + 1, tasks=len(handed), all_hold_s=max(holds), median_hold_s=statistics.median(holds),
                server_cpu_s=server_cpu, token_requests=token_requests, wall_s=window,
                busy_cores=busy / window, first_task_ms=statistics.median(holds) * 1e3,
                peak_rss_kb=max(r["peak_rss_kb"] for r in reports),
            ))
            log(f"{name}: every worker holds a task after {max(holds):6.2f} s "
                f"(median worker {statistics.median(holds):.2f} s), server CPU {server_cpu:.2f} s, "
                f"{token_requests} GET token")
    return rows
