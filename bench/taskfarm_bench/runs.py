"""One measured run on the real server (scenarios c and e): a fresh run of
num_tasks, n workers that register, wait at a barrier and are released
together; the window from the release to the last worker's end, the
clients' and the server's CPU over it, and the checks that every task was
handed out once and the server counts them all done."""

import time

from .checks import check
from .load import cpu_busy_seconds


def server_env(env, server):
    """The workers' environment for the real server, with the password."""
    return dict(env, TASKFARM_URL=server.url, TASKFARM_USER=server.user,
                TASKFARM_PASSWORD=server.password, TASKFARM_TIMEOUT="60")


def measured_run(server, workers, env, label, client, n, num_tasks, prepare=None,
                 requests_from_log=False):
    """A run of `num_tasks` worked through by n workers of `client` (the
    worker program: "c" or "python"). `prepare(run_uuid)`, when given, marks
    the first tasks done beforehand and returns how many it did. Requests are
    the workers' own counts, or with requests_from_log those in gunicorn's
    access log. Returns (the figures of the run, its uuid)."""
    run_uuid = server.create_run(num_tasks)
    first = prepare(run_uuid) if prepare else 0
    offset = server.log_size()
    marks = {}

    def on_go():
        marks["server_cpu"] = server.cpu_seconds()
        marks["busy"] = cpu_busy_seconds()
        marks["t"] = time.monotonic()

    reports, go = workers.run_group(client, run_uuid, n, env, on_go=on_go)
    end = max(r["end_ns"] for r in reports)
    server_cpu = server.cpu_seconds() - marks["server_cpu"]
    busy = cpu_busy_seconds() - marks["busy"]
    window = (end - go) / 1e9
    handed = [t for r in reports for t in r["task_list"]]
    dups = len(handed) - len(set(handed))
    info = server.run_info(run_uuid)
    todo = num_tasks - first
    check(dups == 0, f"{label}: {dups} task(s) handed out twice")
    check(set(handed) == set(range(first, num_tasks)),
          f"{label}: tasks handed out {len(set(handed))} of {todo}")
    check(info["numDone"] == num_tasks and info["numComputing"] == 0,
          f"{label}: the server says numDone {info['numDone']}, "
          f"numComputing {info['numComputing']} of {num_tasks}")
    check(abs(info["percentDone"] - 100.0) < 1e-6, f"{label}: percentDone {info['percentDone']}")
    if requests_from_log:
        requests = server.loop_requests_since(run_uuid, offset)
    else:
        requests = sum(r["loop_requests"] for r in reports)
    client_cpu = sum(r["loop_cpu_s"] for r in reports)
    figures = dict(
        tasks=len(handed), requests=requests, requests_per_task=requests / todo,
        tasks_per_s=todo / window, requests_per_s=requests / window,
        client_cpu_ms_per_task=client_cpu / todo * 1e3,
        cpu_us_per_request=client_cpu / requests * 1e6,
        server_cpu_ms_per_task=server_cpu / todo * 1e3,
        total_cpu_ms_per_task=(client_cpu + server_cpu) / todo * 1e3,
        client_cpu_cores=client_cpu / window, server_cpu_cores=server_cpu / window,
        busy_cores=busy / window, peak_rss_kb=max(r["peak_rss_kb"] for r in reports),
        wall_s=window, duplicates=dups, num_done=info["numDone"],
    )
    return figures, run_uuid
