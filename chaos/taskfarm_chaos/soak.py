"""One soak: the server, the proxy, the journal's tmpfs, the workers and the
reaper started; the schedule's faults at their times; then the drain (no more
faults, the workers finish what they can), the end (the workers told to stop
when no task is handed out; with our library, one `taskfarm reap
--restart-orphans` pass once no worker is left, as the README says, and a
last wave of workers); the final state read from the database; the oracle.
Everything started is stopped by pid on every way out.

`run_soak(cfg)` returns the soak's figures (a dict for figures.json) and the
oracle's result; the history it judged is kept in the run directory
(history.json), so the oracle can be run again on it.
"""

import json
import os
import shutil
import subprocess
import time

from .config import TASKFARM_BIN
from .fault_proxy import FaultProxy
from .faults import Faults
from .journal_disk import JournalDisk
from .oracle import check, format_violation
from .reapers import Reapers
from .schedule import count_kinds, make_schedule
from .server import Server
from .workers import Supervisor

# The longest a fault may take once launched: a server fault restarts the
# service until it is healthy (server.RECOVER_TIMEOUT) on top of its own
# restart (up to 300 s under load).
FAULTS_END_TIMEOUT = 1200.0


class SoakError(RuntimeError):
    """The soak itself could not go on (not a violation)."""


def say(text):
    print(f"chaos: {text}", flush=True)


def _recovered(server, when):
    """The service checked up (restarted until it is, see Server.recover),
    said when it was not."""
    for step in server.recover(when):
        say(f"{when}: {step['found']}; restarted: "
            f"{'yes' if step['restarted'] else 'no, ' + step.get('error', '')[-200:]}")


def _taskfarm(info, *args):
    """A `taskfarm` command straight to the server (not through the proxy)."""
    env = dict(os.environ, TASKFARM_URL=info["url"], TASKFARM_USER=info["user"],
               TASKFARM_PASSWORD=info["password"])
    env.pop("TASKFARM_TOKEN", None)
    r = subprocess.run([str(TASKFARM_BIN), *args], env=env, capture_output=True,
                       text=True, timeout=300, check=True)
    return r.stdout.strip().splitlines()[-1]


def _done_count(server, uuid):
    try:
        rows = server.query(f"SELECT count(*) AS n FROM tasks WHERE status::text = 'done' AND run_id = "
                            f"(SELECT id FROM runs WHERE uuid = '{uuid}')")
        return int(rows[0]["n"])
    except Exception:  # PostgreSQL restarting: ask again later
        return None


def _read_logs(log_dir):
    logs = {}
    for path in sorted(log_dir.glob("*.log")):
        logs[path.stem] = path.read_text(errors="replace").splitlines()
    return logs


def run_soak(cfg):
    if cfg.run_dir.exists():
        shutil.rmtree(cfg.run_dir)
    cfg.run_dir.mkdir(parents=True)
    say(f"seed {cfg.seed}: {cfg.client} workers, {cfg.workers} at a time, {cfg.tasks} tasks, "
        f"{cfg.seconds:g} s of faults (CHAOS_SEED={cfg.seed} repeats this schedule); in {cfg.run_dir}")
    schedule = make_schedule(cfg.seed, cfg.seconds, cfg.workers, cfg.stale, cfg.fault_interval)
    (cfg.run_dir / "schedule.json").write_text(json.dumps(schedule, indent=1))
    server = Server(cfg.run_dir / "server")
    disk = JournalDisk(cfg.run_dir / "journal", cfg.journal_fs_bytes)
    proxy = sup = reapers = faults = None
    started = time.monotonic()
    try:
        info = server.start()
        uuid = _taskfarm(info, "create", str(cfg.tasks))
        proxy = FaultProxy(server.port, delay=cfg.timeout + 2.0)
        env = dict(os.environ, TASKFARM_URL=proxy.url, TASKFARM_USER=info["user"],
                   TASKFARM_PASSWORD=info["password"])
        for name in ("TASKFARM_JOURNAL", "TASKFARM_STOP_SIGNALS", "TASKFARM_TOKEN", "TASKFARM_LOG"):
            env.pop(name, None)
        if cfg.client == "c":
            # One password check for the farm (README, "one password check per
            # farm"): the server's password hash costs seconds on a loaded machine.
            env["TASKFARM_TOKEN"] = _taskfarm(info, "token")
        if cfg.client == "c":
            disk.mount()
        stop_file = cfg.run_dir / "STOP"
        sup = Supervisor(cfg, uuid, env, disk.path, stop_file)
        if cfg.client == "c":
            reapers = Reapers(cfg, uuid, env, disk.path)
        faults = Faults(cfg, sup, server, proxy, disk, reapers)
        t0 = time.monotonic_ns()
        sup.start()
        if reapers:
            reapers.start()

        # The faults, at their times, while tasks are left.
        next_note = 10.0
        finished_early = None
        for fault in schedule:
            while True:
                now = (time.monotonic_ns() - t0) / 1e9
                if now >= fault["at"]:
                    break
                if now >= next_note:
                    say(f"  {now:4.0f} s: {_done_count(server, uuid)} of {cfg.tasks} done, "
                        f"{len(faults.log)} faults so far")
                    next_note += 10.0
                time.sleep(min(0.05, fault["at"] - now))
            done = _done_count(server, uuid) if fault is not schedule[0] else 0
            if done == cfg.tasks:
                finished_early = now
                break
            faults.launch(fault)
        fault_period = (time.monotonic_ns() - t0) / 1e9
        # Every fault ends (a server fault only once the service is checked
        # up again) before the drain: the drain and the final read need the
        # server and its database.
        if not faults.join(FAULTS_END_TIMEOUT):
            raise SoakError(f"faults still running {FAULTS_END_TIMEOUT:.0f} s after the last one began: "
                            + ", ".join(t.name for t in faults.threads if t.is_alive()))
        proxy.set_mode(None)
        disk.unfill()
        _recovered(server, "after the faults")
        launched = len(faults.threads)
        say(f"faults over after {fault_period:.0f} s ({launched} launched); draining")

        # The drain: until every task is done, or no progress for drain_idle.
        last, last_change, drain_start = -1, time.monotonic(), time.monotonic()
        while time.monotonic() - drain_start < cfg.drain_max:
            done = _done_count(server, uuid)
            if done == cfg.tasks:
                break
            if done is not None and done != last:
                last, last_change = done, time.monotonic()
            if time.monotonic() - last_change > cfg.drain_idle:
                break
            time.sleep(0.5)
        drained_done = _done_count(server, uuid)
        say(f"drain over: {drained_done} of {cfg.tasks} done")

        # The end: workers stop once no task is handed out.
        stop_file.write_text("stop\n")
        if not sup.wait_all_exited(60):
            say("warning: workers still running 60 s after the stop file: signalled")
        forced = sup.stop_all()
        orphans = None
        if reapers is not None:
            reapers.stop()
            if _done_count(server, uuid) != cfg.tasks:
                orphans = reapers.restart_orphans()
                say(f"taskfarm reap --restart-orphans: {orphans.get('orphans')} orphan(s), "
                    f"restarted: {orphans.get('restarted')}")
                reapers.start()
                sup.resume()
                last_wave = time.monotonic()
                while time.monotonic() - last_wave < cfg.wave_max:
                    if _done_count(server, uuid) == cfg.tasks:
                        break
                    time.sleep(0.5)
                sup.wait_all_exited(30)
                forced += sup.stop_all()
                reapers.stop()
        elapsed = time.monotonic() - started

        _recovered(server, "before the final read")
        state = server.final_state(uuid)
        sup.save(cfg.run_dir / "processes.json")
        history = {
            "seed": cfg.seed, "client": cfg.client, "num_tasks": cfg.tasks, "stale": cfg.stale,
            "t0": t0, "logs": _read_logs(sup.log_dir), "processes": sup.records,
            "faults": sorted(faults.log, key=lambda f: f["at"]),
            "eras": reapers.eras if reapers else [],
            "verdicts": reapers.verdicts if reapers else [], "tasks": state["tasks"], "audit": state["audit"],
            "workers": state["workers"],
        }
        (cfg.run_dir / "history.json").write_text(json.dumps(history))
        result = check(history)
        for v in result["violations"]:
            print(format_violation(v, history["processes"], history["faults"]), flush=True)
        figures = _figures(cfg, schedule, faults, proxy, reapers, result, orphans, fault_period,
                           finished_early, elapsed, forced, sup)
        figures["server_recoveries"] = server.recoveries
        (cfg.run_dir / "figures.json").write_text(json.dumps(figures, indent=1))
        return figures, result
    finally:
        if sup is not None:
            sup.stop_all()
        if reapers is not None:
            try:
                reapers.stop()
            except RuntimeError as e:  # reported, the rest still stops
                say(f"warning: stopping the reaper: {e}")
        if proxy is not None:
            proxy.close()
        disk.unmount()
        try:
            server.stop()
        except Exception as e:  # reported, the rest still stops
            say(f"warning: stopping the server: {e}")


def judged_figures(result):
    """The figures that come from the oracle's result (also recomputed by
    `chaos.py --rejudge` from a kept history)."""
    return {
        "done": result["done"], "done_percent": round(result["done_percent"], 2),
        "stuck_computing": result["stuck_computing"], "computations": result["computations"],
        "computed_again": result["computed_again"], "wrongly_reaped": result["wrongly_reaped"],
        "heartbeat_only_give_backs": result["heartbeat_only_give_backs"],
        "violations": result["counts"],
        "violation_examples": [{"kind": v["kind"], "task": v["task"], "message": v["message"]}
                               for v in result["violations"][:20]],
    }


def _figures(cfg, schedule, faults, proxy, reapers, result, orphans, fault_period, finished_early,
             elapsed, forced, sup):
    landed = {}
    for f in faults.log:
        if f["kind"].startswith("kill-"):
            key = f"{f['kind']}:{'hit' if f.get('landed') == f.get('wanted') else 'missed'}"
            landed[key] = landed.get(key, 0) + 1
    errors = [f"{f['kind']} at {f['at']}: {f['error']}" for f in faults.log if f.get("error")]
    return {
        "seed": cfg.seed, "client": cfg.client, "workers": cfg.workers, "tasks": cfg.tasks,
        "seconds": cfg.seconds, "fault_period": round(fault_period, 1),
        "finished_early": finished_early, "elapsed": round(elapsed, 1),
        "stale": cfg.stale, "heartbeat": cfg.heartbeat, "timeout": cfg.timeout,
        "faults_planned": count_kinds(schedule),
        "faults_done": count_kinds(faults.log), "kills_landed": landed,
        "proxy_hits": dict(proxy.hits), "fault_errors": errors,
        "worker_processes": len(sup.records),
        "load_average": _load_average(),
        "skewed_workers": sum(1 for r in sup.records if r.get("skew")),
        "forced_stops": len(forced),
        "reaper": reapers.totals() if reapers else None,
        "orphans": None if orphans is None else {"orphans": orphans.get("orphans"),
                                                 "restarted": orphans.get("restarted")},
        **judged_figures(result),
    }


def _load_average():
    """The machine's load average (1, 5, 15 min) as the soak ends: the
    figures depend on how busy the machine was."""
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None
