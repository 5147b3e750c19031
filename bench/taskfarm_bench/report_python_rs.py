"""The report's section on the Python package taskfarm_worker_rs against the
Python client (bench/report/python_rs.md), from the section's figures
(figures.json's "python_rs", written by scenario_python_rs): the canned
server, the real servers, start -> first task."""

from .fmt import NONE, fmt
from .results import MEDIAN_FIELDS
from .scenario_python_rs import KEY
from .stats import medians, paired
from .template import fill


def times(a, b):
    """The package's rate against Python's: ×a/b."""
    return NONE if a is None or not b else fill("python_rs", "times", ratio=f"{a / b:.1f}")


def fraction(a, b):
    """The package's cost against Python's: 1/(b/a)."""
    return NONE if not a or b is None else fill("python_rs", "fraction", ratio=f"{b / a:.1f}")


def _ratio_cell(pr):
    if pr is None:
        return NONE
    if pr[1] != pr[2]:
        return fill("python_rs", "ratio", ratio=f"{pr[0]:.2f}", low=f"{pr[1]:.2f}", high=f"{pr[2]:.2f}")
    return fill("python_rs", "ratio_one", ratio=f"{pr[0]:.2f}")


def _paired(rows, scenario, n, field, num, den="python"):
    """num / den's `field` within each repetition of one point."""
    return paired(rows, lambda r: (r["scenario"], r["workers"]) == (scenario, n), field, num, den)


def provenance(fig, sec, load_note):
    """Whether the section's figures come from the report's run or from a run of their own."""
    if sec["date"] == fig.get("date") and sec["smoke"] == fig.get("smoke"):
        return fill("python_rs", "same_run")
    load = sec["load"]
    return fill("python_rs", "separate_run", date=sec["date"], elapsed=f"{sec['elapsed']:.0f}",
                load1_min=f"{load['load1_min']:.2f}", load1_max=f"{load['load1_max']:.2f}",
                load1_median=f"{load['load1_median']:.2f}", other_mean=fmt(load["other_cores_mean"], 2),
                other_max=fmt(load["other_cores_max"], 2), load_note=load_note(load))


def canned_block(cfg, med, rows):
    m = {c: med.get(("p-canned", "canned", 1, c), {}) for c in ("python", "rs", "rs-coalesced", "c")}
    figures = {}
    for name, client in (("python", "python"), ("rs", "rs"), ("coalesced", "rs-coalesced"), ("c", "c")):
        f = m[client]
        figures.update({
            f"tasks_{name}": cfg["canned_tasks"][client],
            f"tps_{name}": fmt(f.get("tasks_per_s")), f"rps_{name}": fmt(f.get("requests_per_s")),
            f"rpt_{name}": fmt(f.get("requests_per_task"), 2 if client == "rs-coalesced" else 0),
            f"cpu_{name}": fmt(f.get("cpu_us_per_request"), 1), f"user_{name}": fmt(f.get("user_us_per_request"), 1),
            f"sys_{name}": fmt(f.get("sys_us_per_request"), 1),
            f"cpt_{name}": fmt(f.get("client_cpu_ms_per_task"), 3), f"rss_{name}": fmt(f.get("peak_rss_kb")),
            f"first_{name}": fmt(f.get("first_task_ms"), 1 if client != "c" else 2),
        })
    p, r = m["python"], m["rs"]
    figures.update(
        tps_ratio=times(r.get("tasks_per_s"), p.get("tasks_per_s")),
        rps_ratio=times(r.get("requests_per_s"), p.get("requests_per_s")),
        cpu_ratio=fraction(r.get("cpu_us_per_request"), p.get("cpu_us_per_request")),
        cpt_ratio=fraction(r.get("client_cpu_ms_per_task"), p.get("client_cpu_ms_per_task")),
        rss_ratio=fraction(r.get("peak_rss_kb"), p.get("peak_rss_kb")),
        first_ratio=fraction(r.get("first_task_ms"), p.get("first_task_ms")))
    pr = _paired(rows, "p-canned", 1, "tasks_per_s", "rs")
    pc = _paired(rows, "p-canned", 1, "tasks_per_s", "rs-coalesced")
    figures["paired"] = (fill("python_rs", "paired", rs=_ratio_cell(pr), coalesced=_ratio_cell(pc))
                         if pr and pc else "")
    return fill("python_rs", "canned", **figures)


def real_block(cfg, med, rows):
    points = sorted({(r["db"], r["workers"]) for r in rows if r["scenario"] in ("p-sqlite", "p-postgresql")},
                    key=lambda p: (p[0] != "sqlite", p[1]))
    lines = []
    for db, n in points:
        m = {c: med.get((f"p-{db}", db, n, c), {}) for c in ("python", "rs", "rs-coalesced", "c")}
        cells = dict(db=db, n=n, tasks=fmt(m["python"].get("tasks") or m["rs"].get("tasks"), 0),
                     paired_rs=_ratio_cell(_paired(rows, f"p-{db}", n, "tasks_per_s", "rs")),
                     paired_coalesced=_ratio_cell(_paired(rows, f"p-{db}", n, "tasks_per_s", "rs-coalesced")),
                     rss_python=fmt(m["python"].get("peak_rss_kb")), rss_rs=fmt(m["rs"].get("peak_rss_kb")))
        for name, client in (("python", "python"), ("rs", "rs"), ("coalesced", "rs-coalesced"), ("c", "c")):
            f = m[client]
            cells.update({f"tps_{name}": fmt(f.get("tasks_per_s"), 1),
                          f"rpt_{name}": fmt(f.get("requests_per_task"), 2),
                          f"cpt_{name}": fmt(f.get("client_cpu_ms_per_task"), 2),
                          f"spt_{name}": fmt(f.get("server_cpu_ms_per_task"), 1)})
        lines.append(fill("python_rs", "real_row", **cells))
    starts = []
    for db in sorted({r["db"] for r in rows if r["scenario"].startswith("p-start-")}, key=lambda d: d != "sqlite"):
        m = {c: med.get((f"p-start-{db}", db, 1, c), {}).get("first_task_ms") for c in ("python", "rs", "c")}
        starts.append(fill("python_rs", "start_row", db=db, python=fmt(m["python"], 1), rs=fmt(m["rs"], 1),
                           c=fmt(m["c"], 1), ratio=fraction(m["rs"], m["python"])))
    return fill("python_rs", "real", rows="\n".join(lines), start_reps=cfg["start_reps"],
                start_rows="\n".join(starts))


def section_python_rs(fig, load_note):
    """The section's blocks; none when the figures have no such section (a
    run from before it, or one that skipped it)."""
    sec = fig.get(KEY)
    if not sec:
        return []
    rows, cfg = sec["rows"], sec["cfg"]
    med = medians(rows, MEDIAN_FIELDS)
    return [fill("python_rs", "intro", interval=f"{sec['interval']:.1f}", canned_reps=cfg["canned_reps"],
                 real_reps=cfg["real_reps"], provenance=provenance(fig, sec, load_note)),
            canned_block(cfg, med, rows), real_block(cfg, med, rows)]
