"""The targets of the benchmark issue against the figures: (name, what was
measured, met: True, False, None for not measured, "report" for a figure
without a number to meet)."""

from .config import (
    TARGET_CPU_RATIO,
    TARGET_RPS_VS_WRK,
    TARGET_RSS_RATIO,
    TARGET_SERVER_BOUND_GAIN,
    TARGET_START_RATIO,
    TARGET_STORM_RATIO,
    storm_key,
)
from .fmt import NONE, fmt
from .stats import floor3, near, paired_ratio, paired_vs_wrk, storm_ratio
from .template import fill, text


def _t(part, **figures):
    return fill("targets", part, **figures)


def narrow(value, target):
    return text("targets", "narrow") if near(value, target) else ""


def verdict(ok):
    if ok == "report":
        return text("targets", "no_number")
    if ok is None:
        return text("targets", "not_measured")
    return text("targets", "met" if ok else "not_met")


def client_targets(ac, ap, wput, rows):
    """Scenario a against b: the four targets of the client's own cost."""
    targets = []

    def both(x, y):
        return x is not None and y is not None

    r = ac.get("requests_per_s"), wput.get("requests_per_s")
    pw = paired_vs_wrk(rows)
    targets.append((text("targets", "rps_name"),
                    _t("rps", ours=fmt(r[0]), wrk=fmt(r[1]), ratio=floor3(pw[0]), low=f"{pw[1]:.2f}",
                       high=f"{pw[2]:.2f}", narrow=narrow(pw[0], TARGET_RPS_VS_WRK))
                    if both(*r) and pw else NONE,
                    (pw[0] >= TARGET_RPS_VS_WRK) if pw else None))
    for part, field, digits, target in (("cpu", "cpu_us_per_request", (1, 1), TARGET_CPU_RATIO),
                                        ("rss", "peak_rss_kb", (0, 0), TARGET_RSS_RATIO),
                                        ("start", "first_task_ms", (2, 1), TARGET_START_RATIO)):
        r = ac.get(field), ap.get(field)
        targets.append((text("targets", f"{part}_name"),
                        _t(part, ours=fmt(r[0], digits[0]), python=fmt(r[1], digits[1]),
                           ratio=f"{r[1] / r[0]:.1f}") if both(*r) else NONE,
                        (r[1] / r[0] >= target) if both(*r) else None))
    return targets


def real_server_targets(med, real_points, rows):
    """Scenario c: ≥ Python's everywhere, ≥ 1.15 × where the server is the
    bottleneck. Returns (targets, the server-bound points below 1.15:
    (db, n, ratio, ours' medians, Python's))."""
    all_ge = True
    bound = []
    lines = []
    for db, n in real_points:
        c = med.get((f"c-{db}", db, n, "c"), {})
        p = med.get((f"c-{db}", db, n, "python"), {})
        pr = paired_ratio(rows, f"c-{db}", db, n, "tasks_per_s")
        if pr is None:
            continue
        q = pr[0]
        all_ge &= q >= 1.0
        # The server is the bottleneck where the server's processes did more
        # of the work than the clients (in the Python run: the harder case).
        server_bound = (p.get("server_cpu_cores") or 0) >= (p.get("client_cpu_cores") or 0)
        if server_bound:
            bound.append((db, n, q, c, p))
        lines.append(_t("real_point", db=db, n=n, ratio=f"{q:.2f}",
                        bound=text("targets", "server_bound_mark") if server_bound else ""))
    if not lines:
        return [(text("targets", "real_name"), NONE, None)], []
    gain = f"≥ {TARGET_SERVER_BOUND_GAIN:.2f}"
    misses = [b for b in bound if b[2] < TARGET_SERVER_BOUND_GAIN]
    if not bound:
        summary = text("targets", "bound_none")
    elif not misses:
        q = min(q for _, _, q, _, _ in bound)
        lowest = (_t("bound_lowest", lowest=floor3(q), narrow=text("targets", "narrow"))
                  if near(q, TARGET_SERVER_BOUND_GAIN) else "")
        summary = _t("bound_all", gain=gain, count=len(bound),
                     points=", ".join(f"{db} ×{n}" for db, n, _, _, _ in bound), lowest=lowest)
    else:
        summary = _t("bound_some", gain=gain, met=len(bound) - len(misses), count=len(bound),
                     misses=", ".join(_t("bound_miss", db=db, n=n, ratio=floor3(q))
                                      for db, n, q, _, _ in misses))
    return [(text("targets", "real_name"), _t("real", points=", ".join(lines)), all_ge),
            (text("targets", "bound_name"), summary, (not misses) if bound else None)], misses


def storm_target(med, n, rows):
    st = storm_ratio(rows, n, "all_hold_s", storm_key("python", "password"), storm_key("c", "token"))
    py = med.get(("d-storm", "postgresql", n, storm_key("python", "password")), {}).get("all_hold_s")
    tok = med.get(("d-storm", "postgresql", n, storm_key("c", "token")), {}).get("all_hold_s")
    return (_t("storm_name", n=n),
            _t("storm", token=fmt(tok, 2), python=fmt(py, 2), ratio=floor3(st[0]), low=f"{st[1]:.1f}",
               high=f"{st[2]:.1f}", narrow=narrow(st[0], TARGET_STORM_RATIO)) if st else NONE,
            (st[0] >= TARGET_STORM_RATIO) if st else None)


def evaluate(cfg, med, real_points, size, rows):
    """(targets, the server-bound points below 1.15)."""
    a = lambda client: med.get(("a-canned", "canned", 1, client), {})  # noqa: E731
    wput = med.get(("b-wrk", "canned", 1, "wrk-PUT"), {})
    targets = client_targets(a("c"), a("python"), wput, rows)
    real, misses = real_server_targets(med, real_points, rows)
    targets += real
    targets.append(storm_target(med, cfg["storm_workers"], rows))
    targets.append((text("targets", "size_name"), _t("size", kib=f"{size['stripped'] / 1024:,.0f}"),
                    "report"))
    return targets, misses
