"""RELIABILITY.md from the figures of several soaks (chaos/figures.json):
the prose in chaos/report/RELIABILITY.md.in, the tables made here.
`render(figures)` is the text; `write_report(figures_path, out_path)` writes
it. Tested by chaos/tests/test_report.py (the committed RELIABILITY.md is what
the committed figures render)."""

import json
from string import Template

from .config import CHAOS_DIR
from .oracle import KINDS
from .schedule import KINDS as FAULT_KINDS

TEMPLATE = CHAOS_DIR / "report" / "RELIABILITY.md.in"


def _row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(head, rows):
    return "\n".join([_row(head), _row(["---"] * len(head))] + [_row(r) for r in rows])


def _sum_faults(run):
    return sum(run["faults_done"].values())


def setup_text(runs):
    if not runs:
        return "No soak recorded yet: `make chaos`."
    r = runs[0]
    return (
        f"The real server (taskfarm 0.4.0 on PostgreSQL, gunicorn with 4 sync workers), "
        f"{r['workers']} worker processes at a time (a supervisor starts a replacement when one "
        f"dies), tasks of 100 to 300 ms in 4 steps each followed by an update. Our workers are "
        f"`chaos/chaos_worker.c` over the library with `TASKFARM_JOURNAL` (heartbeat every "
        f"{r['heartbeat']:g} s, on a 2 MiB tmpfs), `TASKFARM_STOP_SIGNALS=TERM` and "
        f"`TASKFARM_TIMEOUT={r['timeout']:g}`; `taskfarm reap --watch 1 --stale {r['stale']:g} "
        f"--max-attempts 1000` runs beside them, on this host or, after a *reaper-swap*, on "
        f"\"another host\": `unshare --pid --fork --kill-child --mount-proc --uts` with another "
        f"host name and a PID namespace of its own, so that the pids the journals record mean "
        f"nothing to it and its verdicts on the workers rest on their heartbeats alone (it is "
        f"stopped with its namespace, and its lock removed once all of it is gone). Seeds "
        f"{_seeds(r for r in runs if not _looks(r)) or 'none'} ran before that, with the other "
        f"host's reaper under `unshare -u` only, in the workers' PID namespace: it judged pids "
        f"(see the findings). Every client talks to the server through a fault proxy.\n\n"
        f"The faults (chaos/taskfarm_chaos/schedule.py), one every 2.5 s on average at random "
        f"moments drawn from the seed: SIGKILL of a worker mid-task, mid-request (waiting for "
        f"`tf_worker_task`) and mid-`done` (the moment read from the worker's own log); SIGTERM; "
        f"SIGSTOP then SIGCONT after 0.2-0.5 x `--stale` (stop-short) or 1.5-3 x `--stale` "
        f"(stop-long); gunicorn's master SIGKILLed and the server started again on the same "
        f"port with its database; PostgreSQL restarted under the server; proxy windows of "
        f"0.5-3 s that drop connections, hold answers {r['timeout'] + 2:g} s (past the "
        f"timeout), cut answers in half, or reset the connection after the server answered; "
        f"the journal's file system filled up for 0.5-3 s; a worker replaced by one whose wall "
        f"clock is off by +-0.5 or +-3 x `--stale` (`faketime`); the reaper moved to the other "
        f"host or back. After the faults, the drain: the workers go on until every task is "
        f"done or nothing moved for 30 s; then they stop once no task is handed out, passes of "
        f"`taskfarm reap --restart-orphans` run until one restarts the orphans (a pass restarts "
        f"only what the pass before saw too), and a last wave of workers takes what they gave "
        f"back.")


def _seeds(runs):
    return ", ".join(str(r["seed"]) for r in runs)


def _looks(run):
    """The reapers' verdicts by what they rested on, None when not counted
    (the soaks before the other host's reaper had a PID namespace)."""
    return (run.get("reaper") or {}).get("looks")


def _heartbeat_only(run):
    looks = _looks(run)
    if looks is None:
        return None
    return sum(n for host in looks.values() for kind, n in host.items() if kind.startswith("heartbeat-"))


def _heartbeat_cell(run):
    n = _heartbeat_only(run)
    if n is None:
        return "not counted"
    return f"{n} ({run.get('heartbeat_only_give_backs', 0)} gave back)"


def c_table(runs):
    head = ["seed", "faults for", "tasks", "faults", "done", "lost", "done twice", "done undone",
            "overlap (live)", "recomputed (live)", "done < 100 %", "computed again",
            "heartbeat-only verdicts", "wrongly reaped live worker",
            "given back", "dones delivered", "orphans restarted", "took"]
    rows = []
    for r in runs:
        v = r["violations"]
        reaper = r.get("reaper") or {}
        orphans = r.get("orphans") or {}
        rows.append([r["seed"], f"{r['fault_period']:.0f} s", r["tasks"], _sum_faults(r),
                     f"{r['done_percent']:g} %", v["lost"], v["done-twice"], v["done-undone"],
                     v["overlap"], v["recomputed"], v["done-below-100"], r["computed_again"],
                     _heartbeat_cell(r), _wrongly_reaped(r), reaper.get("given_back", 0),
                     reaper.get("delivered", 0),
                     orphans.get("orphans") if orphans.get("restarted") else 0,
                     f"{r['elapsed']:.0f} s"])
    total = ["all", f"{sum(r['fault_period'] for r in runs):.0f} s", sum(r["tasks"] for r in runs),
             sum(_sum_faults(r) for r in runs), "", *[sum(r["violations"][k] for r in runs) for k in KINDS],
             sum(r["computed_again"] for r in runs),
             sum(_heartbeat_only(r) or 0 for r in runs), sum(r["wrongly_reaped"] for r in runs),
             "", "", "", f"{sum(r['elapsed'] for r in runs):.0f} s"]
    return _table(head, rows + [total]) if rows else "No soak of our library recorded."


def _wrongly_reaped(run):
    """Excused overlaps and recomputations: a heartbeat-only verdict on a
    worker SIGSTOPped longer than --stale. (Soaks judged by the oracle
    before it required the stop also counted verdicts on running workers.)"""
    running = run.get("wrongly_reaped_running")
    return f"{run['wrongly_reaped']} ({running} running)" if running else run["wrongly_reaped"]


def fault_table(runs):
    if not runs:
        return ""
    head = ["fault"] + [f"seed {r['seed']}" for r in runs]
    rows = []
    for kind in sorted(FAULT_KINDS):
        cells = [kind]
        for r in runs:
            n = r["faults_done"].get(kind, 0)
            if kind.startswith("kill-"):
                hit = r["kills_landed"].get(f"{kind}:hit", 0)
                cells.append(f"{n} ({hit} in phase)")
            else:
                cells.append(n)
        rows.append(cells)
    rows.append(["proxy answers touched"] + [sum(r["proxy_hits"].values()) for r in runs])
    rows.append(["worker processes"] + [r["worker_processes"] for r in runs])
    rows.append(["service found down after a server fault, restarted again"]
                + [len(r["server_recoveries"]) if "server_recoveries" in r else "not recorded" for r in runs])
    rows.append(["load average at the end (1, 5, 15 min)"]
                + [", ".join(f"{x:g}" for x in r["load_average"]) if r.get("load_average") else "not recorded"
                   for r in runs])
    return _table(head, rows)


def violations_text(runs):
    lines = []
    for r in runs:
        for v in r.get("violation_examples", []):
            lines.append(f"- seed {r['seed']}, task {v['task']}: **{v['kind']}**: {v['message']}"
                         + (f" ({v['cause']})" if v.get("cause") else ""))
    if not lines:
        return "No violation in these soaks."
    return ("The violations (the first 20 of each soak; the soak prints each with the log lines "
            "and database rows that show it, and `chaos/chaos.py --oracle "
            "build/chaos/c-seedS/history.json` prints them again):\n\n" + "\n".join(lines))


def findings_text(figures):
    """The causes, written down by whoever read the evidence of the soaks
    (figures.json "findings": one paragraph each)."""
    findings = figures.get("findings") or []
    if not findings:
        return "Nothing to explain." if not any(
            sum(r["violations"].values()) for r in figures.get("runs", [])) else \
            "Not analysed yet (figures.json has no \"findings\")."
    return "\n".join(f"{i}. {text}" for i, text in enumerate(findings, 1))


def python_table(c_runs, py_runs):
    if not py_runs:
        return "Not run yet: `make chaos-python`."
    by_seed = {(r["seed"], r["seconds"]): r for r in c_runs}
    head = ["seed", "faults for", "client", "done", "not done (lost)", "of which stuck computing",
            "done twice", "overlap", "recomputed", "computed again"]
    rows = []
    for p in py_runs:
        for r, name in ((by_seed.get((p["seed"], p["seconds"])), "ours (C, journal, reaper)"),
                        (p, "Python taskfarm-worker 0.4.0")):
            if r is None:
                continue
            v = r["violations"]
            rows.append([r["seed"], f"{r['fault_period']:.0f} s", name, f"{r['done_percent']:g} %",
                         v["lost"], r["stuck_computing"], v["done-twice"], v["overlap"], v["recomputed"],
                         r["computed_again"]])
    return _table(head, rows)


def duration_text(runs):
    if not runs:
        return ""
    secs = sum(r["fault_period"] for r in runs)
    took = sum(r["elapsed"] for r in runs)
    tasks = sum(r["tasks"] for r in runs)
    return (f"These soaks: {secs:.0f} s of faults and {tasks} tasks in {took:.0f} s of wall time "
            f"(the rest: server start, drain, orphans, final wave). The issue's target, 30 minutes "
            f"of faults and 10,000 tasks in all, is e.g. `make chaos CHAOS_SECONDS=600 "
            f"CHAOS_TASKS=4000` for three seeds: about {1800 / secs * took / 60:.0f} minutes of "
            f"wall time on this machine at the rate measured here for our library, and about as long "
            f"again for the Python client's side of each seed (`make chaos` runs both; the loads "
            f"the soaks ran under are in the fault table).")


def render(figures):
    runs = figures.get("runs", [])
    c_runs = [r for r in runs if r["client"] == "c"]
    py_runs = [r for r in runs if r["client"] == "python"]
    text = Template(TEMPLATE.read_text()).substitute(
        setup=setup_text(c_runs), c_table=c_table(c_runs), fault_table=fault_table(c_runs),
        violations=violations_text(c_runs), findings=findings_text(figures), python_table=python_table(c_runs, py_runs),
        duration=duration_text(c_runs))
    return text.rstrip() + "\n"


def write_report(figures_path, out_path):
    with open(figures_path, encoding="utf-8") as f:
        figures = json.load(f)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(render(figures))
