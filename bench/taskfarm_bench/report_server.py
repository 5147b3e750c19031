"""The report's sections for the real server: c (with why a server-bound
point fell short of +15 %) and d, the start storm."""

from .config import STORM_CONFIGS, STORM_NAMES, TARGET_SERVER_BOUND_GAIN, storm_key
from .fmt import fmt, share
from .stats import floor3, paired_ratio, storm_ratio
from .template import fill, text


def paired_cell(rows, db, n):
    pr = paired_ratio(rows, f"c-{db}", db, n, "tasks_per_s")
    if pr is None:
        return "–"
    if pr[1] != pr[2]:
        return fill("real", "paired", ratio=f"{pr[0]:.2f}", low=f"{pr[1]:.2f}", high=f"{pr[2]:.2f}")
    return fill("real", "paired_one", ratio=f"{pr[0]:.2f}")


def turns_note(c, p):
    """How often gunicorn's worker that answered a request answered the next one."""
    ours, python = c.get("same_process_share"), p.get("same_process_share")
    if ours is None or python is None:
        return ""
    return fill("real", "turns", ours=f"{ours:.0%}", python=f"{python:.0%}")


def server_bound_miss_note(misses):
    """Why a server-bound point fell short of +15 %, from its own figures."""
    parts = []
    for db, n, q, c, p in misses:
        tc, tp = c.get("total_cpu_ms_per_task"), p.get("total_cpu_ms_per_task")
        sc, sp = c.get("server_cpu_ms_per_task"), p.get("server_cpu_ms_per_task")
        if not (tc and tp and sc and sp):
            continue
        more = (fill("real", "more_server", server_c=f"{sc:.1f}", server_python=f"{sp:.1f}",
                     turns=turns_note(c, p)) if sc > sp * 1.02 else "")
        parts.append(fill("real", "miss", db=db, n=n, ratio=floor3(q), total_python=f"{tp:.1f}",
                          total_c=f"{tc:.1f}", total_ratio=f"{tp / tc:.2f}", server_python=f"{sp:.1f}",
                          server_c=f"{sc:.1f}", client_share=f"{1 - sc / tc:.0%}", more_server=more))
    if not parts:
        return ""
    return fill("real", "misses", gain=f"{TARGET_SERVER_BOUND_GAIN:.2f}", misses="; ".join(parts))


def server_bound_note(misses):
    note = text("real", "server_bound")
    if misses:
        note += " " + server_bound_miss_note(misses)
    return note


def section_c(med, rows, real_points, pg_missing, misses):
    blocks = [text("real", "intro")]
    if pg_missing is not None:  # the harness's answer to --db postgresql
        blocks.append(fill("real", "pg_missing", answer=pg_missing))
    lines = []
    for db, n in real_points:
        c = med.get((f"c-{db}", db, n, "c"), {})
        p = med.get((f"c-{db}", db, n, "python"), {})
        lines.append(fill(
            "real", "row", db=db, n=n, tasks=fmt(c.get("tasks"), 0), tps_c=fmt(c.get("tasks_per_s"), 1),
            tps_python=fmt(p.get("tasks_per_s"), 1), paired=paired_cell(rows, db, n),
            client_c=fmt(c.get("client_cpu_ms_per_task"), 2),
            client_python=fmt(p.get("client_cpu_ms_per_task"), 2),
            server_c=fmt(c.get("server_cpu_ms_per_task"), 1),
            server_python=fmt(p.get("server_cpu_ms_per_task"), 1),
            total_c=fmt(c.get("total_cpu_ms_per_task"), 1), total_python=fmt(p.get("total_cpu_ms_per_task"), 1),
            busy_c=fmt(c.get("busy_cores"), 2), busy_python=fmt(p.get("busy_cores"), 2),
            same_c=share(c.get("same_process_share")), same_python=share(p.get("same_process_share")),
            dups=max(c.get("duplicates", 0), p.get("duplicates", 0))))
    blocks.append(fill("real", "table", rows="\n".join(lines)))
    blocks.append(fill("real", "after", server_bound_note=server_bound_note(misses)))
    return blocks


def section_d(cfg, med, rows):
    n = cfg["storm_workers"]
    figs = {key: med.get(("d-storm", "postgresql", n, storm_key(*key)), {}) for key in STORM_CONFIGS}
    if not any(figs.values()):
        return []
    lines = [fill("storm", "row", name=STORM_NAMES[key], all_hold=fmt(m.get("all_hold_s"), 2),
                  median_hold=fmt(m.get("median_hold_s"), 2), server_cpu=fmt(m.get("server_cpu_s"), 1),
                  token_requests=fmt(m.get("token_requests")), busy=fmt(m.get("busy_cores"), 2))
             for key, m in figs.items()]
    blocks = [fill("storm", "intro", n=n, reps=cfg["storm_reps"], rows="\n".join(lines))]
    pairs = []
    fast = storm_key("c", "token")
    for slow, what in (("python-password", "python_password"), ("c-password", "ours_password")):
        t = storm_ratio(rows, n, "all_hold_s", slow, fast)
        c = storm_ratio(rows, n, "server_cpu_s", slow, fast)
        if t and c:
            pairs.append(fill("storm", "pair", what=text("storm", what), time=floor3(t[0]),
                              time_low=f"{t[1]:.1f}", time_high=f"{t[2]:.1f}", cpu=floor3(c[0]),
                              cpu_low=f"{c[1]:.1f}", cpu_high=f"{c[2]:.1f}"))
    if pairs:
        blocks.append(fill("storm", "pairs", pairs="; ".join(pairs)))
    return blocks
