"""The oracle: what happened to every task, from evidence the library does not
write. It trusts nothing the library says about itself:

- the workers' own logs (one line per event, appended with O_APPEND and
  fsync'ed before the step it announces: `start T` once tf_worker_task gave T,
  `computed T` once the computation is over, `done T STATUS` with what
  tf_worker_done returned, `requeue T STATUS`);
- the supervisor's record of every worker process (its CLOCK_MONOTONIC start
  and end, how it ended);
- the fault log (which worker was SIGSTOPped, from when to when; where the
  reaper ran);
- the database itself: the run's tasks at the end and the audit trigger's
  record of every change of every task row.

The violations (kinds, as printed):

- `lost`: a task not done at the end (no manual restart was done);
- `done-twice`: two `done T TF_OK` in the logs, or two changes of the task
  row into `done` in the database;
- `done-undone`: a task row that left `done` (a finished task handed out
  again);
- `overlap`: two computations of one task at the same time by two workers
  that were both alive. Excused (counted as *wrongly reaped live worker*,
  not a violation) only when both hold: a reaper's pass gave that task of
  that worker back on a verdict that rested on the heartbeat alone ("its
  heartbeat stood still", which only a reaper that cannot judge the
  worker's pid gives), and the worker was SIGSTOPped for longer than
  --stale, after it began that computation and before that verdict was
  read: the guarantee allows overlapping leases only there. A heartbeat-only
  verdict on a worker that was not stopped that long is a violation (its
  message says so): the heartbeat of a running worker fell behind;
- `recomputed`: a task computed again although the worker that computed it
  before neither died nor gave it back first (a SIGTERM, a stop signal,
  counts as giving it back: the library hands the task back before the
  process ends), or after its done returned TF_OK (the same excuse as for
  an overlap, on the same evidence, before the done);
- `done-below-100`: a task done with a percentage below 100.

`check(history)` returns {"counts": ..., "violations": [...], ...}; each
violation carries the seed, the task and the lines that show it
(`format_violation`). Unit tests: chaos/tests/test_oracle.py.
"""

from collections import defaultdict

KINDS = ("lost", "done-twice", "done-undone", "overlap", "recomputed", "done-below-100")
INF = float("inf")


def parse_line(line, source):
    """An oracle log line as a dict, None for a torn or foreign line."""
    parts = line.split()
    if len(parts) < 4 or not parts[0].isdigit():
        return None
    event = {"t": int(parts[0]), "worker": parts[1], "pid": parts[2], "event": parts[3],
             "args": parts[4:], "line": line.rstrip("\n"), "source": source}
    if event["event"] in ("start", "computed", "done", "requeue", "update-failed"):
        if not event["args"] or not event["args"][0].lstrip("-").isdigit():
            return None
        event["task"] = int(event["args"][0])
    return event


def computations(logs, processes):
    """Every computation of a task, from the workers' logs: {worker, task,
    start, end (of the computation), computed, done (status or None),
    done_t, requeued (status or None), events}. A computation that a death
    interrupted ends at the process's end."""
    ended = {p["name"]: p.get("ended") for p in processes}
    result = []
    for worker, lines in logs.items():
        current = None
        for raw in lines:
            e = parse_line(raw, worker)
            if e is None:
                continue
            kind = e["event"]
            if kind == "start":
                if current is not None:
                    _close(current, e["t"], result)
                current = {"worker": worker, "task": e["task"], "start": e["t"], "end": None,
                           "computed": None, "done": None, "done_t": None, "requeued": None,
                           "requeue_t": None, "events": [e]}
            elif current is not None and e.get("task") == current["task"]:
                current["events"].append(e)
                if kind == "computed":
                    current["computed"] = e["t"]
                    current["end"] = e["t"]
                elif kind == "done":
                    current["done"] = e["args"][1] if len(e["args"]) > 1 else "?"
                    current["done_t"] = e["t"]
                    result.append(current)
                    current = None
                elif kind == "requeue":
                    current["requeued"] = e["args"][1] if len(e["args"]) > 1 else "?"
                    current["requeue_t"] = e["t"]
                    if current["end"] is None:
                        current["end"] = e["t"]
                elif kind == "update-failed" and current["end"] is None:
                    current["end"] = e["t"]
            elif current is not None and kind == "fail" and e["args"][:1] == ["done"]:
                # The Python client: an exception out of done().
                current["events"].append(e)
                current["done"] = "fail:" + (e["args"][1] if len(e["args"]) > 1 else "?")
                current["done_t"] = e["t"]
                result.append(current)
                current = None
        if current is not None:
            death = ended.get(worker)
            _close(current, death if death is not None else INF, result)
    return result


def _close(comp, t, result):
    if comp["end"] is None:
        comp["end"] = t
    result.append(comp)


def stops_of(faults):
    """worker name -> [(stopped ns, continued ns)] of its SIGSTOPs."""
    stops = defaultdict(list)
    for f in faults:
        if f.get("kind", "").startswith("stop-") and "stopped" in f and f.get("target"):
            stops[f["target"]].append((f["stopped"], f.get("continued", INF)))
    return stops


def stop_signals_of(faults):
    """worker name -> when it got a stop signal (SIGTERM: `term`, and the
    SIGTERM that ends a worker before a `skew`). The library then hands its
    task back before the process ends: a give-back the worker's own log
    cannot show."""
    signalled = {}
    for f in faults:
        if f.get("kind") in ("term", "skew") and f.get("target") and "signalled" in f:
            signalled.setdefault(f["target"], f["signalled"])
    return signalled


HEARTBEAT_ONLY = "its heartbeat stood still"


def heartbeat_verdicts(history):
    """(task, worker uuid) -> [time read] of every give-back whose verdict
    on the worker rested on its heartbeat alone (the reapers' JSON passes,
    `verdicts` in the history)."""
    out = defaultdict(list)
    for v in history.get("verdicts", []):
        if v.get("verdict") == "gone" and str(v.get("reason", "")).startswith(HEARTBEAT_ONLY):
            out[(int(v["task"]), v["worker"])].append(v["t"])
    return out


def excused(first, later, uuids, verdicts, stops, stale_ns):
    """What a reaper said of the first worker, or None: a pass gave the
    first worker's task back on a heartbeat-only verdict, read by the soak
    after the first computation began and no later than 5 s after the
    second one ended (the pass prints its report once it is over). It says
    whether the first worker was SIGSTOPped for longer than --stale after
    that computation began and at least --stale before the verdict was read
    (`stopped_longer_than_stale`): only then is the overlap excused."""
    uuid = uuids.get(first["worker"])
    end = later["end"] if later["end"] is not None else INF
    found = None
    for t in verdicts.get((first["task"], uuid), ()):
        if first["start"] <= t <= end + 5 * 10**9:
            stopped = any(continued - stopped_at > stale_ns and stopped_at + stale_ns <= t
                          and continued >= first["start"]
                          for stopped_at, continued in stops.get(first["worker"], ()))
            found = {"task": first["task"], "workers": [first["worker"], later["worker"]],
                     "stopped_longer_than_stale": stopped, "verdict_t": t}
            if stopped:
                return found
    return found


NOT_STOPPED = (" (a reaper gave it back on a heartbeat-only verdict, but {worker} was not SIGSTOPped "
               "longer than --stale: a running worker's heartbeat fell behind)")


def check(history):
    """The violations of a soak's history (see the module's docs)."""
    seed = history["seed"]
    n = history["num_tasks"]
    stale_ns = int(history["stale"] * 1e9)
    processes = history["processes"]
    deaths = {p["name"]: p.get("ended") for p in processes}
    comps = computations(history["logs"], processes)
    by_task = defaultdict(list)
    for c in comps:
        by_task[c["task"]].append(c)
    stops = stops_of(history.get("faults", []))
    stop_signals = stop_signals_of(history.get("faults", []))
    verdicts = heartbeat_verdicts(history)
    uuids = {name: uuid for uuid, name in log_uuids(history).items()}
    audit_by_task = defaultdict(list)
    for row in history.get("audit", []):
        audit_by_task[int(row["task"])].append(row)
    db_tasks = {int(t["task"]): t for t in history.get("tasks", [])}
    names = worker_names(history)

    violations = []
    excuses = []

    def add(kind, task, message, comps_shown=(), rows=()):
        violations.append({"kind": kind, "seed": seed, "task": task, "message": message,
                           "lines": _evidence(comps_shown or by_task.get(task, [])),
                           "audit": [_audit_line(r, names) for r in (rows or audit_by_task.get(task, []))][-8:],
                           "workers": sorted({c["worker"] for c in (comps_shown or by_task.get(task, []))}
                                             | {names.get(str(r.get("new_worker"))) for r in
                                                (rows or audit_by_task.get(task, []))} - {None})})

    # lost, done below 100 %
    for task in range(n):
        row = db_tasks.get(task)
        if row is None or row["status"] != "done":
            state = "never handed out" if row is None else f"{row['status']} at {float(row['percent']):g} %"
            add("lost", task, f"task {task} is not done at the end ({state})")
        elif float(row["percent"]) < 100.0:
            add("done-below-100", task, f"task {task} is done at {float(row['percent']):g} %")

    # done twice: the logs, then the database
    for task, cs in sorted(by_task.items()):
        oks = [c for c in cs if c["done"] == "TF_OK"]
        if len(oks) > 1:
            add("done-twice", task, f"tf_worker_done returned TF_OK {len(oks)} times for task {task}", oks)
    for task, rows in sorted(audit_by_task.items()):
        into_done = [r for r in rows if r["new_status"] == "done" and (r["op"] == "I" or r["old_status"] != "done")]
        if len(into_done) > 1:
            add("done-twice", task, f"the database row of task {task} became done {len(into_done)} times",
                rows=rows)
        out_of_done = [r for r in rows if r["op"] == "U" and r["old_status"] == "done" and r["new_status"] != "done"]
        if out_of_done:
            add("done-undone", task, f"task {task} left done in the database "
                f"(done -> {out_of_done[0]['new_status']})", rows=rows)

    # overlaps and recomputations
    for task, cs in sorted(by_task.items()):
        cs = sorted(cs, key=lambda c: c["start"])
        for i, b in enumerate(cs):
            for a in cs[:i]:
                if a["worker"] == b["worker"] and a["end"] <= b["start"]:
                    # The same worker again: its first computation ended.
                    if a["done"] == "TF_OK":
                        add("recomputed", task, f"task {task} computed again by {b['worker']} after "
                            f"its own done returned TF_OK", [a, b])
                    continue
                overlapping = b["start"] < a["end"]
                if stop_signals.get(a["worker"], INF) <= b["start"] and a["done"] != "TF_OK":
                    # A stop signal hands the task back, then ends the
                    # process: what runs in between is thrown away.
                    continue
                excuse = excused(a, b, uuids, verdicts, stops, stale_ns)
                allowed = excuse is not None and excuse["stopped_longer_than_stale"]
                why_not = NOT_STOPPED.format(worker=a["worker"]) if excuse and not allowed else ""
                if overlapping:
                    if allowed:
                        excuses.append(excuse)
                        continue
                    add("overlap", task, f"task {task} computed by {a['worker']} and {b['worker']} at once, "
                        f"both alive{why_not}", [a, b])
                    continue
                a_dead = deaths.get(a["worker"]) is not None and deaths[a["worker"]] <= b["start"]
                gave_back = (a["requeued"] == "TF_OK" and a["requeue_t"] <= b["start"]) or \
                    stop_signals.get(a["worker"], INF) <= b["start"]
                if a["done"] == "TF_OK":
                    add("recomputed", task, f"task {task} computed again by {b['worker']} after "
                        f"{a['worker']}'s done returned TF_OK", [a, b])
                elif not (a_dead or gave_back):
                    if allowed:
                        excuses.append(excuse)
                        continue
                    add("recomputed", task, f"task {task} computed again by {b['worker']} while "
                        f"{a['worker']} (which computed it first) was alive and had not given it back"
                        f"{why_not}", [a, b])

    counts = dict.fromkeys(KINDS, 0)
    for v in violations:
        counts[v["kind"]] += 1
    done = sum(1 for t in range(n) if (db_tasks.get(t) or {}).get("status") == "done")
    computed_again = sum(max(0, len(cs) - 1) for cs in by_task.values())
    return {"seed": seed, "num_tasks": n, "done": done,
            "done_percent": 100.0 * done / n if n else 100.0,
            "stuck_computing": sum(1 for t in db_tasks.values() if t["status"] == "computing"),
            "computations": len(comps), "computed_again": computed_again,
            "wrongly_reaped": len(excuses), "excused": excuses,
            "heartbeat_only_give_backs": sum(len(ts) for ts in verdicts.values()),
            "counts": counts, "violations": violations}


def _evidence(comps):
    lines = sorted((e for c in comps for e in c["events"]), key=lambda e: e["t"])
    return [f"{e['source']}.log: {e['line']}" for e in lines][:16]


def log_uuids(history):
    """Worker UUID -> the name of its oracle log (each log's `begin` line)."""
    by_uuid = {}
    for name, lines in history.get("logs", {}).items():
        for raw in lines[:3]:
            e = parse_line(raw, name)
            if e and e["event"] == "begin" and e["args"]:
                by_uuid[e["args"][0]] = name
    return by_uuid


def worker_names(history):
    """The server's worker ids -> the names of the oracle logs (through the
    worker UUID each log's `begin` line gives and the workers table)."""
    by_uuid = log_uuids(history)
    return {str(w["id"]): by_uuid.get(w["uuid"], f"server worker {w['id']}")
            for w in history.get("workers", [])}


def _audit_line(row, names):
    old = f"{row.get('old_status')} {row.get('old_percent')}%" if row.get("op") == "U" else "(new)"
    worker = names.get(str(row.get("new_worker")), row.get("new_worker"))
    return (f"db {row.get('at')}: task {row.get('task')} {old} -> {row.get('new_status')} "
            f"{row.get('new_percent')}% held by {worker}")


def format_violation(v, processes=(), faults=()):
    """A violation for people: the seed, the task, the lines that show it,
    how the workers involved ended and the faults that hit them."""
    out = [f"VIOLATION {v['kind']} (seed {v['seed']}, task {v['task']}): {v['message']}"]
    out += [f"    {line}" for line in v["lines"]]
    out += [f"    {line}" for line in v["audit"]]
    for p in processes:
        if p["name"] in v["workers"]:
            out.append(f"    process {p['name']} pid {p['pid']}: ended with status {p.get('status')}"
                       + (f", clock skew {p['skew']:+g} s" if p.get("skew") else ""))
    for f in faults:
        if f.get("target") in v["workers"]:
            detail = ", ".join(f"{k} {f[k]}" for k in ("wanted", "landed", "phase", "seconds") if k in f)
            out.append(f"    fault {f['kind']} at {f['at']} s on {f['target']} ({detail})")
    return "\n".join(out)
