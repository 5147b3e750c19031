"""The statistics of the report: medians over repetitions, and paired ratios
(each repetition's two runs, taken back to back, give one ratio: robust to a
load that drifts during the run). Unit-tested in bench/tests/."""

import math
import statistics


def median(values):
    """The median of the values that are not None; None when there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def medians(rows, fields):
    """One row per (scenario, db, workers, client): the median of each of
    `fields` over the repetitions (the maximum for duplicates, which must
    show if any run had one), and reps, their number."""
    groups = {}
    for r in rows:
        groups.setdefault((r["scenario"], r["db"], r["workers"], r["client"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        m = dict(scenario=key[0], db=key[1], workers=key[2], client=key[3], rep="median")
        for f in fields:
            vals = [r[f] for r in rs if r.get(f) is not None]
            if vals:
                m[f] = max(vals) if f == "duplicates" else statistics.median(vals)
        m["reps"] = len(rs)
        out[key] = m
    return out


def spread(ratios):
    """(median, min, max) of the ratios, None without any."""
    return (statistics.median(ratios), min(ratios), max(ratios)) if ratios else None


def paired(rows, keep, field, num, den):
    """For the rows `keep` accepts, per repetition: num's `field` / den's
    (num and den are client names); the spread of these ratios. A run whose
    figure is missing or zero leaves its repetition out."""
    by_rep = {}
    for r in rows:
        if keep(r) and r.get(field):
            by_rep.setdefault(r["rep"], {})[r["client"]] = r[field]
    return spread([v[num] / v[den] for v in by_rep.values() if num in v and den in v])


def paired_ratio(rows, scenario, db, workers, field, num="c", den="python"):
    """Ours / Python's `field` within each repetition of one point."""
    return paired(rows, lambda r: (r["scenario"], r["db"], r["workers"]) == (scenario, db, workers),
                  field, num, den)


def paired_vs_wrk(rows, client="c"):
    """A client's requests/s (scenario a) / wrk's PUT requests/s (scenario b)
    measured in the same repetition."""
    def keep(r):
        return ((r["scenario"] == "a-canned" and r["client"] == client)
                or (r["scenario"] == "b-wrk" and r["client"] == "wrk-PUT"))
    return paired(rows, keep, "requests_per_s", client, "wrk-PUT")


def storm_ratio(rows, n, field, slow, fast):
    """The start storm of n workers: configuration `slow`'s field / `fast`'s
    (each a storm client name such as "python-password")."""
    return paired(rows, lambda r: r["scenario"] == "d-storm" and r["workers"] == n, field, slow, fast)


def e_pairs(rows, scenario, n):
    """Scenario e: ours coalesced / Python's tasks/s."""
    return paired(rows, lambda r: (r["scenario"], r["workers"]) == (scenario, n), "tasks_per_s",
                  "c-coalesced", "python")


def near(value, target):
    """Whether a measured ratio is within 5 % of its target (above or below)."""
    return value is not None and abs(value / target - 1) < 0.05


def floor3(x):
    """x with three decimals, rounded down: a ratio just under its target
    (0.7996 against 0.8) must not read as reaching it."""
    # The epsilon: 1.15 * 1000 is 1149.999... in binary floating point.
    return f"{math.floor(x * 1000 + 1e-9) / 1000:.3f}"
