"""Scenario a, the client overhead against the canned server, with scenario
b, wrk on the same endpoints (the limit), interleaved."""

import base64
import json
import os

from .checks import check, log
from .config import CLIENTS, alternating
from .cpus import CLIENT_CPU, pinned
from .paths import BENCH_DIR
from .workers import run_child_rusage


def canned_metrics(report):
    lr = report["loop_requests"]
    return dict(
        tasks=report["tasks"],
        requests=report["requests"],
        requests_per_task=lr / report["tasks"] if report["tasks"] else None,
        requests_per_s=lr / report["loop_wall_s"],
        tasks_per_s=report["tasks"] / report["loop_wall_s"],
        cpu_us_per_request=report["loop_cpu_s"] / lr * 1e6,
        user_us_per_request=report["loop_user_s"] / lr * 1e6,
        sys_us_per_request=report["loop_sys_s"] / lr * 1e6,
        latency_us=report["loop_wall_s"] / lr * 1e6,
        peak_rss_kb=report["peak_rss_kb"],
        maxrss_kb=report["maxrss_kb"],
        first_task_ms=report["first_task_s"] * 1e3,
        wall_s=report["loop_wall_s"],
    )


def scenario_canned(cfg, server, workers, env, with_wrk=True):
    """Scenario a, with scenario b interleaved: in each repetition both
    clients, then (for the first wrk_reps repetitions) wrk, so that the three
    see the same load."""
    rows = []
    for rep in range(cfg["canned_reps"]):
        if with_wrk and rep < cfg["wrk_reps"]:
            rows += scenario_wrk(cfg, server, [rep])
        for client in alternating(CLIENTS, rep):
            n = cfg["canned_tasks_c"] if client == "c" else cfg["canned_tasks_python"]
            before = server.stub_requests()
            with pinned([CLIENT_CPU]):
                report = workers.run_one(client, server.run_uuid, n, env)
            after = server.stub_requests()
            # nginx also counts the status request itself and the internal
            # hop of POST worker (proxied to /_worker_answer).
            seen = after - before - 1 - 1
            per_task = 12 if client == "c" else 13
            check(report["tasks"] == n, f"canned {client}: {report['tasks']} tasks, wanted {n}")
            check(report["requests"] == 3 + per_task * n,
                  f"canned {client}: {report['requests']} requests reported, "
                  f"wanted 3 + {per_task} x {n}")
            check(seen == report["requests"],
                  f"canned {client}: nginx saw {seen} requests, the worker reported {report['requests']}")
            m = canned_metrics(report)
            m.update(scenario="a-canned", db="canned", workers=1, client=client, rep=rep + 1,
                     server_seen_requests=seen)
            rows.append(m)
            log(f"a rep {rep + 1} {client:6s}: {m['requests_per_s']:8.0f} req/s, "
                f"{m['cpu_us_per_request']:7.1f} us CPU/req, peak RSS {m['peak_rss_kb']} kB, "
                f"first task {m['first_task_ms']:.1f} ms")
    return rows


def scenario_wrk(cfg, server, reps):
    """wrk on a GET and a PUT, once each for every repetition in `reps`."""
    auth = "Basic " + base64.b64encode(f"{server.token}:".encode()).decode()
    kinds = {
        "GET": (f"{server.url}runs/{server.run_uuid}/tasks/0?info=percentCompleted", ""),
        "PUT": (f"{server.url}runs/{server.run_uuid}/tasks/0", '{"percentCompleted":50.0}'),
    }
    rows = []
    for rep in reps:
        for method, (url, body) in alternating(kinds.items(), rep):
            env = dict(os.environ, BENCH_WRK_METHOD=method, BENCH_WRK_BODY=body, BENCH_WRK_AUTH=auth)
            cmd = ["wrk", "-t1", "-c1", f"-d{cfg['wrk_seconds']}s", "-s", str(BENCH_DIR / "wrk.lua"), url]
            with pinned([CLIENT_CPU]):
                out, err, code, ru = run_child_rusage(cmd, env, cfg["wrk_seconds"] + 60)
            line = [x for x in out.splitlines() if x.startswith("BENCH_WRK_JSON ")]
            if code != 0 or not line:
                check(False, f"wrk {method} failed (exit {code}): {err[-500:]} {out[-500:]}")
                continue
            w = json.loads(line[-1].split(" ", 1)[1])
            check(w["errors"] == 0 and w["bad_status"] == 0,
                  f"wrk {method}: {w['errors']} socket errors, {w['bad_status']} bad answers")
            rps = w["requests"] / (w["duration_us"] / 1e6)
            cpu = ru.ru_utime + ru.ru_stime
            rows.append(dict(
                scenario="b-wrk", db="canned", workers=1, client=f"wrk-{method}", rep=rep + 1,
                requests=w["requests"], requests_per_s=rps,
                cpu_us_per_request=cpu / w["requests"] * 1e6 if w["requests"] else None,
                user_us_per_request=ru.ru_utime / w["requests"] * 1e6 if w["requests"] else None,
                sys_us_per_request=ru.ru_stime / w["requests"] * 1e6 if w["requests"] else None,
                latency_us=w["duration_us"] / w["requests"] if w["requests"] else None,
                latency_p50_us=w["latency_p50_us"],
                latency_p99_us=w["latency_p99_us"],
                wall_s=w["duration_us"] / 1e6,
            ))
            log(f"b rep {rep + 1} wrk {method}: {rps:8.0f} req/s, latency p50 {w['latency_p50_us']} us")
    return rows


