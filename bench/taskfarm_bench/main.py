"""The run: every scenario in order, then the records and the report; or,
with --render, the report again from a run's saved figures."""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from pathlib import Path

from . import checks
from .canned_server import CannedServer, fake_jwt
from .checks import check, log
from .config import CLIENTS, SIZES
from .library_size import library_size
from .load import LoadSampler
from .merge import merge_section
from .paths import DEFAULT_FORK_EXEC_BIN, DEFAULT_RUNNER_BIN, DEFAULT_TWO_REQUESTS_BIN, DEFAULT_WORKER_BIN, LIB, ROOT
from .plot import write_coalesced_svg, write_retry_wave_svg, write_throughput_svg
from .processes import CLEANUP, on_signal
from .profiling import profile, syscalls_per_request
from .real_server import RealServer, start_server
from .report import render
from .results import MEDIAN_FIELDS, load_figures, save_figures, write_csv
from .scenario_canned import scenario_canned, scenario_wrk
from .scenario_coalesced import scenario_coalesced
from .scenario_python_rs import KEY as PYTHON_RS
from .scenario_python_rs import run_python_rs
from .scenario_real import scenario_real
from .scenario_run import KEY as RUN
from .scenario_run import run_run
from .scenario_scale import scenario_scale
from .scenario_storm import scenario_storm
from .stats import medians
from .targets import verdict
from .tools import ensure_tools, machine, versions
from .workers import Workers

SKIPPABLE = ["canned", "wrk", "sqlite", "postgresql", "pg-throughput", "storm", "profile", "coalesced", "python-rs",
             "scale", "run"]


def parse_args(argv, description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, outputs into build/bench-smoke/")
    ap.add_argument("--out-dir", help="where BENCHMARKS.md goes (results.csv, figures.json and the plots go "
                    "into OUT/bench/); default: the repository (or build/bench-smoke with --smoke)")
    ap.add_argument("--worker-bin", default=str(DEFAULT_WORKER_BIN))
    ap.add_argument("--runner-bin", default=str(DEFAULT_RUNNER_BIN),
                    help="the taskfarm command-line tool of scenario g (taskfarm run)")
    ap.add_argument("--fork-exec-bin", default=str(DEFAULT_FORK_EXEC_BIN),
                    help="bench/fork_exec_loop.c built (scenario g's floor)")
    ap.add_argument("--two-requests-bin", default=str(DEFAULT_TWO_REQUESTS_BIN),
                    help="bench/two_requests_floor.c built (scenario g's floor of any client of the protocol)")
    ap.add_argument("--skip", action="append", default=[], choices=SKIPPABLE,
                    help="leave a part out (for development)")
    ap.add_argument("--only", choices=SKIPPABLE, help="run this part alone (every other one skipped)")
    ap.add_argument("--merge", nargs=2, metavar=("KEY", "FROM"),
                    help="with --render: first put section KEY of FROM's figures.json into the figures rendered")
    ap.add_argument("--render", metavar="FIGURES",
                    help="run nothing: write BENCHMARKS.md, results.csv and the plots again from a run's "
                    "figures.json (e.g. bench/figures.json) into --out-dir (default: the repository)")
    return ap.parse_args(argv)


def base_environment():
    env = dict(os.environ)
    for k in ("TASKFARM_LOG", "BENCH_BARRIER", "BENCH_LIST_TASKS", "HTTP_PROXY", "http_proxy",
              "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    # These scenarios compare request for request with the Python client (and
    # bench_worker.c counts one request per update): every update is sent at
    # once, as the Python client does. Scenario e sets its own interval.
    env["TASKFARM_UPDATE_INTERVAL"] = "0"
    return env


def run_canned(cfg, skip, workers, env, workdir, fig):
    """a, b and the profile on the canned server."""
    canned = CannedServer(workdir, uuidlib.uuid4().hex, fake_jwt()).start()
    canned_env = dict(env, TASKFARM_URL=canned.url, TASKFARM_USER="bench",
                      TASKFARM_PASSWORD="bench", TASKFARM_TIMEOUT="30")
    if "canned" not in skip:
        # A warm-up of both clients (page cache, CPU frequency).
        for client in CLIENTS:
            workers.run_one(client, canned.run_uuid, 5, canned_env)
        log("scenarios a and b (interleaved): the clients and wrk against the canned server")
        fig["rows"] += scenario_canned(cfg, canned, workers, canned_env, with_wrk="wrk" not in skip)
    elif "wrk" not in skip:
        log("scenario b: wrk against the canned server")
        fig["rows"] += scenario_wrk(cfg, canned, range(cfg["wrk_reps"]))
    if "profile" not in skip:
        log("profile: callgrind on the C worker")
        fig["profile"] = profile(cfg, canned, workers, canned_env, workdir)
        log("profile: system calls per request (strace -c)")
        fig["syscalls"] = syscalls_per_request(cfg, canned, workers, canned_env, workdir)
    canned.stop()


def run_real(cfg, skip, workers, env, workdir, fig, sampler, phases):
    """c, d and e on the harness's real servers."""
    if "sqlite" not in skip:
        log("scenario c: the real server, SQLite, one worker")
        state = Path(workdir) / "server-sqlite"
        info, err = start_server(state, "sqlite", sampler)
        if info is None:
            check(False, f"the harness could not start the SQLite server: {err}")
        else:
            server = RealServer(info, state)
            server.login()
            fig["rows"] += scenario_real(cfg, "sqlite", server, workers, env, [1], cfg["sqlite_tasks"])
            fig["real_points"].append(("sqlite", 1))
            CLEANUP.stop_server(state)
    if "postgresql" in skip:
        return
    log("scenario c: the real server, PostgreSQL + gunicorn -w 4")
    state = Path(workdir) / "server-pg"
    info, err = start_server(state, "postgresql", sampler)
    if info is None:
        if "not implemented" in (err or "") or "invalid choice" in (err or ""):
            fig["pg_missing"] = err.splitlines()[-1] if err else ""
            log("PostgreSQL mode not in the harness yet: skipped")
        else:
            check(False, f"the harness could not start the PostgreSQL server: {err}")
        return
    server = RealServer(info, state)
    server.login()
    fig["pg_counts"] = [] if "pg-throughput" in skip else cfg["pg_workers"]
    for n in fig["pg_counts"]:
        fig["rows"] += scenario_real(cfg, "postgresql", server, workers, env, [n], max(cfg["pg_tasks"], 4 * n))
    fig["real_points"] += [("postgresql", n) for n in fig["pg_counts"]]
    if "storm" not in skip:
        log(f"scenario d: start storm, {cfg['storm_workers']} workers at once (PostgreSQL)")
        phases["d"] = [time.monotonic()]
        fig["rows"] += scenario_storm(cfg, server, workers, env)
        phases["d"].append(time.monotonic())
    if "coalesced" not in skip:
        log("scenario e: coalesced progress, PostgreSQL + gunicorn -w 4")
        fig["rows"] += scenario_coalesced(cfg, server, workers, env)
    CLEANUP.stop_server(state)


def run_scale(cfg, smoke, worker_bin, env, workdir, sampler):
    """f on a PostgreSQL server of its own (f2 kills and restarts it); its
    figures carry their own date and load, as a section run alone
    (`--only scale`) is merged into a full run's figures."""
    log(f"scenario f: {cfg['scale_workers']} workers at once (PostgreSQL)")
    started, load_before, t0 = time.monotonic(), os.getloadavg(), time.monotonic()
    uptime_before = uptime()
    state = Path(workdir) / "server-scale"
    info, err = start_server(state, "postgresql", sampler)
    if info is None:
        check(False, f"the harness could not start the PostgreSQL server for f: {err}")
        return None
    server = RealServer(info, state)
    server.login()
    fig = scenario_scale(cfg, server, state, worker_bin, env)
    CLEANUP.stop_server(state)
    fig.update(smoke=smoke, date=time.strftime("%Y-%m-%d %H:%M %Z"), elapsed=time.monotonic() - started,
               load=sampler.summary(t0), load_before=load_before, uptime_before=uptime_before,
               uptime_after=uptime())
    return fig


def uptime():
    """What `uptime` says (the load of a shared machine, for the record)."""
    r = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    return r.stdout.strip()


def write_outputs(out_dir, fig):
    """BENCHMARKS.md, results.csv, the plots and figures.json of the figures;
    returns the targets."""
    (out_dir / "bench").mkdir(parents=True, exist_ok=True)
    rows = fig["rows"] + fig.get(PYTHON_RS, {}).get("rows", [])
    med = medians(rows, MEDIAN_FIELDS)
    text, targets = render(fig)
    write_csv(out_dir / "bench" / "results.csv", rows, med)
    write_throughput_svg(out_dir / "bench" / "throughput.svg", med, fig["pg_counts"])
    write_coalesced_svg(out_dir / "bench" / "coalesced.svg", med, fig["cfg"]["e_workers"])
    if fig.get("scale"):
        write_retry_wave_svg(out_dir / "bench" / "retry_wave.svg", fig["scale"])
    (out_dir / "BENCHMARKS.md").write_text(text)
    wave = " and retry_wave.svg" if fig.get("scale") else ""
    log(f"wrote {out_dir / 'BENCHMARKS.md'} and, in {out_dir / 'bench'}, results.csv, throughput.svg, "
        f"coalesced.svg{wave}")
    return targets


def run(args):
    started = time.monotonic()
    load_before = os.getloadavg()
    cfg = SIZES["smoke" if args.smoke else "full"]
    out_dir = Path(args.out_dir) if args.out_dir else (ROOT / "build" / "bench-smoke" if args.smoke else ROOT)
    ensure_tools()
    needs = [LIB, Path(args.worker_bin)]
    if "run" not in args.skip:
        needs += [Path(args.runner_bin), Path(args.fork_exec_bin), Path(args.two_requests_bin)]
    for need in needs:
        if not need.exists():
            sys.exit(f"bench: {need} is missing: run `make build build/bench/bench_worker "
                     "build/bench/fork_exec_loop build/bench/two_requests_floor`\n"
                     "and `cargo build --release --features cli --bin taskfarm` first")
    try:
        import taskfarm_worker  # noqa: F401
    except ImportError:
        sys.exit("bench: run me with the harness venv's python (tests/harness/venv.sh): "
                 "taskfarm_worker is not importable")

    sampler = LoadSampler()
    sampler.start()
    workers = Workers(args.worker_bin, cfg["worker_timeout"])
    fig = dict(rows=[], profile=None, syscalls=None, pg_counts=[], real_points=[], pg_missing=None)
    workdir = tempfile.mkdtemp(prefix="taskfarm-bench-")
    phases = {}
    env = base_environment()
    try:
        phases["a, b"] = [time.monotonic()]
        run_canned(cfg, args.skip, workers, env, workdir, fig)
        phases["a, b"].append(time.monotonic())
        phases["c"] = [time.monotonic()]
        run_real(cfg, args.skip, workers, env, workdir, fig, sampler, phases)
        phases["c"].append(time.monotonic())
        if "scale" not in args.skip:
            phases["f"] = [time.monotonic()]
            fig["scale"] = run_scale(cfg, args.smoke, args.worker_bin, env, workdir, sampler)
            phases["f"].append(time.monotonic())
        if "run" not in args.skip:
            phases["g"] = [time.monotonic()]
            fig[RUN] = run_run(args.smoke, args.runner_bin, args.fork_exec_bin, env, workdir, sampler,
                               args.worker_bin, args.two_requests_bin)
            phases["g"].append(time.monotonic())
        if "python-rs" not in args.skip:
            phases["python-rs"] = [time.monotonic()]
            fig[PYTHON_RS] = run_python_rs(args.smoke, args.worker_bin, env, workdir, sampler)
            phases["python-rs"].append(time.monotonic())
        fig["size"] = library_size(workdir)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as e:
        log(f"FAILED: {e}")
        raise
    finally:
        CLEANUP.stop_all()
        sampler.stop_event.set()

    fig.update(
        cfg=cfg, smoke=args.smoke, date=time.strftime("%Y-%m-%d %H:%M %Z"), elapsed=time.monotonic() - started,
        machine=machine(), cpus=os.cpu_count(), load=sampler.summary(), load_before=load_before,
        phase_load={k: sampler.summary(*v) for k, v in phases.items() if len(v) == 2},
        versions=versions())
    (out_dir / "bench").mkdir(parents=True, exist_ok=True)
    save_figures(out_dir / "bench" / "figures.json", fig)
    targets = write_outputs(out_dir, fig)
    for name, measured, ok in targets:
        log(f"target: {name}: {measured}: {verdict(ok).strip('*')}")
    if checks.FAILURES:
        log(f"work files kept in {workdir}")
        log(f"{len(checks.FAILURES)} check(s) failed:")
        for f in checks.FAILURES:
            log(f"  - {f}")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main(argv=None, description=None):
    args = parse_args(sys.argv[1:] if argv is None else argv, description)
    if args.only:
        args.skip = [s for s in SKIPPABLE if s != args.only]
    if args.merge and args.render:
        merge_section(args.merge[0], args.merge[1], args.render)
    if args.render:
        if not Path(args.render).is_file():
            sys.exit(f"bench: {args.render} is missing: `make bench` writes bench/figures.json "
                     "(runs before it recorded only results.csv)")
        write_outputs(Path(args.out_dir) if args.out_dir else ROOT, load_figures(args.render))
        return 0
    signal.signal(signal.SIGTERM, on_signal)
    return run(args)
