#!/usr/bin/env python3
"""chaos/chaos.py: the chaos soak of taskfarm_worker (`make chaos`,
`make chaos-short`). Run it as root with the harness venv's python:

    venv=$(tests/harness/venv.sh)
    make build build/chaos/chaos_worker
    $venv/bin/python chaos/chaos.py [--seed S] [--seconds T] [--tasks N] [--workers W]
                                    [--client c|python] [--figures FILE]
                                    [--fail-on-violation]
    $venv/bin/python chaos/chaos.py --render FILE     RELIABILITY.md from FILE
    $venv/bin/python chaos/chaos.py --oracle HISTORY  the oracle again on a
                                                      soak's history.json

CHAOS_SEED, CHAOS_SECONDS, CHAOS_TASKS and CHAOS_WORKERS stand in for the
options. The seed is printed first; the same seed gives the same faults at
the same times. The soak runs itself under `unshare -m --propagation private`
(its journal tmpfs dies with it). What it does: taskfarm_chaos/__init__.py
maps it; RELIABILITY.md says it with the figures. With --figures, the soak's
figures are added to FILE (an entry per seed and client, replaced when run
again) and RELIABILITY.md is written from it.
"""

import argparse
import json
import os
import signal
import sys

from taskfarm_chaos.config import CLIENTS, REPORT, ROOT, from_environment
from taskfarm_chaos.journal_disk import PARENT_NS_ENV, in_private_mount_namespace, mount_namespace
from taskfarm_chaos.oracle import check, format_violation


def parse_args(argv):
    p = argparse.ArgumentParser(description="The chaos soak of taskfarm_worker.")
    p.add_argument("--seed", type=int)
    p.add_argument("--seconds", type=float)
    p.add_argument("--tasks", type=int)
    p.add_argument("--workers", type=int)
    p.add_argument("--client", choices=CLIENTS, default="c")
    p.add_argument("--out-dir")
    p.add_argument("--figures", help="add this soak's figures to FILE and write RELIABILITY.md")
    p.add_argument("--fail-on-violation", action="store_true")
    p.add_argument("--render", metavar="FILE", help="write RELIABILITY.md from FILE, run nothing")
    p.add_argument("--oracle", metavar="HISTORY", help="run the oracle on a history.json")
    p.add_argument("--rejudge", metavar="FILE",
                   help="the oracle again on the history of every soak in FILE (build/chaos/), "
                        "its figures updated, RELIABILITY.md written")
    return p.parse_args(argv)


def add_figures(path, figures):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        data = {"runs": [], "findings": []}
    data["runs"] = [r for r in data["runs"]
                    if (r["seed"], r["client"], r["seconds"]) != (figures["seed"], figures["client"],
                                                                  figures["seconds"])]
    data["runs"].append(figures)
    data["runs"].sort(key=lambda r: (r["client"] != "c", r["seconds"], r["seed"]))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")


def rejudge(path, out_dir):
    """The oracle, changed since, on the kept histories of the soaks in
    figures file `path`; their oracle figures replaced."""
    from taskfarm_chaos.report import write_report
    from taskfarm_chaos.soak import judged_figures
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    for run in data["runs"]:
        history_path = os.path.join(out_dir, f"{run['client']}-seed{run['seed']}", "history.json")
        with open(history_path, encoding="utf-8") as f:
            run.update(judged_figures(check(json.load(f))))
        print(f"chaos: seed {run['seed']} ({run['client']}): {json.dumps(run['violations'])}")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    write_report(path, REPORT)
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.render:
        from taskfarm_chaos.report import write_report
        write_report(args.render, REPORT)
        print(f"chaos: wrote {REPORT}")
        return 0
    if args.rejudge:
        return rejudge(args.rejudge, args.out_dir or str(ROOT / "build" / "chaos"))
    if args.oracle:
        with open(args.oracle, encoding="utf-8") as f:
            history = json.load(f)
        result = check(history)
        for v in result["violations"]:
            print(format_violation(v, history["processes"], history["faults"]))
        print(json.dumps(result["counts"]))
        return 1 if result["violations"] else 0
    if os.geteuid() != 0:
        sys.exit("chaos: run me as root (a tmpfs for the journal, unshare for the other host)")
    cfg = from_environment(args.seed, args.seconds, args.tasks, args.workers, args.client, args.out_dir)
    if not in_private_mount_namespace():
        # Again, in a mount namespace of our own, with the seed fixed.
        if os.environ.get(PARENT_NS_ENV):
            sys.exit("chaos: unshare -m gave no mount namespace of our own")
        os.environ[PARENT_NS_ENV] = mount_namespace()
        argv = list(sys.argv[1:])
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", sys.executable,
                              os.path.abspath(__file__), *argv, "--seed", str(cfg.seed)])
    from taskfarm_chaos.soak import run_soak

    def stop(signum, _frame):
        raise SystemExit(f"chaos: stopped by signal {signum}")  # the soak's finally stops everything

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    figures, result = run_soak(cfg)
    counts = result["counts"]
    total = sum(counts.values())
    looks = (figures.get("reaper") or {}).get("looks", {})
    heartbeat_only = sum(n for host in looks.values() for kind, n in host.items()
                         if kind.startswith("heartbeat-"))
    print(f"chaos: seed {cfg.seed} ({cfg.client}): {figures['done']} of {cfg.tasks} done "
          f"({figures['done_percent']:g} %), {figures['computed_again']} computed again, "
          f"{figures['wrongly_reaped']} wrongly reaped live worker(s) (a heartbeat-only verdict on "
          f"a worker SIGSTOPped longer than --stale); reaper verdicts: {heartbeat_only} "
          f"heartbeat-only ({figures['heartbeat_only_give_backs']} of them gave a task back), "
          f"{sum(h.get('pid', 0) for h in looks.values())} on the pid; "
          f"load {figures.get('load_average')}; "
          f"violations: {total} {json.dumps(counts)}", flush=True)
    if args.figures:
        add_figures(args.figures, figures)
        from taskfarm_chaos.report import write_report
        write_report(args.figures, REPORT)
        print(f"chaos: figures added to {args.figures}; wrote {REPORT}")
    if args.fail_on_violation and total:
        print(f"chaos: FAILED: {total} violation(s) with seed {cfg.seed}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
