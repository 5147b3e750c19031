"""The run's records: bench/results.csv (every repetition and the medians,
for people) and bench/figures.json (every figure the report is made of, the
rows at full precision included: `bench/bench.py --render` writes
BENCHMARKS.md again from it)."""

import csv
import json

CSV_FIELDS = ["scenario", "db", "workers", "client", "rep", "tasks", "requests",
              "requests_per_task", "requests_per_s", "tasks_per_s", "cpu_us_per_request",
              "user_us_per_request", "sys_us_per_request", "latency_us", "latency_p50_us",
              "latency_p99_us", "client_cpu_ms_per_task", "server_cpu_ms_per_task", "total_cpu_ms_per_task",
              "client_cpu_cores", "server_cpu_cores", "busy_cores", "peak_rss_kb", "maxrss_kb",
              "first_task_ms", "wall_s", "duplicates", "server_seen_requests", "same_process_share",
              "all_hold_s", "median_hold_s", "server_cpu_s", "token_requests"]
# The figures that have medians (CSV_FIELDS without the key and rep).
MEDIAN_FIELDS = CSV_FIELDS[5:]
FIGURES_VERSION = 1


def write_csv(path, rows, med):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()})
        for m in med.values():
            w.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in m.items()})



def save_figures(path, figures):
    """figures: a dict of JSON values (rows, cfg, load, profile, ...)."""
    with open(path, "w") as f:
        json.dump(dict(figures, version=FIGURES_VERSION), f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")


def load_figures(path):
    """The figures saved by save_figures, with the tuples JSON turned into lists back."""
    with open(path) as f:
        figures = json.load(f)
    if figures.get("version") != FIGURES_VERSION:
        raise SystemExit(f"bench: {path}: figures of version {figures.get('version')}, "
                         f"this bench.py reads {FIGURES_VERSION}")
    figures["load_before"] = tuple(figures["load_before"])
    figures["real_points"] = [tuple(p) for p in figures["real_points"]]
    cfg = figures["cfg"]
    cfg["strace_tasks"] = tuple(cfg["strace_tasks"])
    prof = figures.get("profile")
    if prof:
        prof["by_crate"] = [tuple(x) for x in prof["by_crate"]]
        prof["inclusive"] = [tuple(x) for x in prof["inclusive"]]
    size = figures["size"]
    size["by_crate"] = [tuple(x) for x in size["by_crate"]]
    return figures
