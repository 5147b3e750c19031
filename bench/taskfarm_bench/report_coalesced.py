"""The report's section for scenario e, coalesced progress."""

from .config import RUN_ID_INDEX_SQL
from .fmt import NONE, fmt
from .stats import e_pairs
from .template import fill, text


def _ratio_cell(pr):
    if pr is None:
        return NONE
    if pr[1] != pr[2]:
        return fill("coalesced", "ratio", ratio=f"{pr[0]:.2f}", low=f"{pr[1]:.2f}", high=f"{pr[2]:.2f}")
    return fill("coalesced", "ratio_one", ratio=f"{pr[0]:.2f}")


def section_e(cfg, med, rows):
    """The section of BENCHMARKS.md for scenario e (none when it did not run)."""
    if not any(r["scenario"].startswith("e-") for r in rows):
        return []
    m = lambda sc, n, c: med.get((sc, "postgresql", n, c), {})  # noqa: E731
    lines = []
    for n in cfg["e_workers"]:
        c, p = m("e-stress", n, "c-coalesced"), m("e-stress", n, "python")
        pr = e_pairs(rows, "e-stress", n)
        lines.append(fill(
            "coalesced", "e1_row", n=n, tps_c=fmt(c.get("tasks_per_s"), 1), tps_python=fmt(p.get("tasks_per_s"), 1),
            ratio=_ratio_cell(pr), rpt_c=fmt(c.get("requests_per_task"), 2),
            rpt_python=fmt(p.get("requests_per_task"), 2), server_c=fmt(c.get("server_cpu_ms_per_task"), 2),
            server_python=fmt(p.get("server_cpu_ms_per_task"), 2), cores_python=fmt(p.get("server_cpu_cores"), 2),
            verdict=NONE if pr is None else text("coalesced", "met" if pr[0] >= 3.0 else "not_met")))
    blocks = [fill("coalesced", "intro", reps=cfg["e_reps"]), fill("coalesced", "e1", rows="\n".join(lines))]
    n = cfg["e_tight_workers"]
    c, p = m("e-tight", n, "c-coalesced"), m("e-tight", n, "python")
    blocks.append(fill(
        "coalesced", "e2", updates=f"{cfg['e_tight_updates']:,}", sleep_us=cfg["e_tight_sleep_us"], n=n,
        rpt_c=fmt(c.get("requests_per_task"), 1), tps_c=fmt(c.get("tasks_per_s"), 2),
        server_c=fmt(c.get("server_cpu_ms_per_task"), 1), rpt_python=fmt(p.get("requests_per_task"), 1),
        tps_python=fmt(p.get("tasks_per_s"), 2), server_python=fmt(p.get("server_cpu_ms_per_task"), 1)))
    lines = []
    for size in cfg["e_sizes"]:
        for idx in ("noindex", "index"):
            sc = f"e-size-{size}-{idx}"
            c, p = m(sc, cfg["e_size_workers"], "c-coalesced"), m(sc, cfg["e_size_workers"], "python")
            lines.append(fill(
                "coalesced", "e3_row", size=f"{size:,}", indexed=text("coalesced", "yes" if idx == "index" else "no"),
                tps_c=fmt(c.get("tasks_per_s"), 1), tps_python=fmt(p.get("tasks_per_s"), 1),
                server_c=fmt(c.get("server_cpu_ms_per_task"), 2),
                server_python=fmt(p.get("server_cpu_ms_per_task"), 2)))
    blocks.append(fill("coalesced", "e3", tail=cfg["e_size_tail"], n=cfg["e_size_workers"], rows="\n".join(lines),
                       index_sql=RUN_ID_INDEX_SQL))
    return blocks
