"""The report's section f (many workers at once), from scenario_scale's
figures; its prose is bench/report/scale.md."""

from .fmt import fmt
from .plot import WAVE_SKIP_BINS
from .template import fill


def _storm_name(name, n):
    if name.startswith("spread "):
        return fill("scale", "name_spread", n=n, window=name.split()[1])
    return fill("scale", "name_" + name.replace(" ", "_"), n=n)


def _storm_row(name, f):
    na = name == "python"
    return fill("scale", "storm_row", name=_storm_name(name, f["workers"]),
                all_hold=fmt(f["all_hold_s"], 2), server_5xx=f["server_5xx"],
                refused="n/a" if na else f["refused"], timeouts="n/a" if na else f["timeouts"],
                peak_rps="n/a" if na else f["peak_rps"], server_cpu=fmt(f["server_cpu_s"], 1),
                failed=f["failed"])


def _restart_row(name, f):
    after = max(f["wave"][WAVE_SKIP_BINS:], default=0)
    return fill("scale", "restart_row", name=name, outage=fmt(f["outage_s"], 2), all_work=fmt(f["all_work_s"], 2),
                attempts=f["attempts"], refused=f["refused"], peak=f["wave_peak"], peak_after=after,
                peak_rps=f["peak_rps"], failed=f["failed"])


def provenance(fig, sec, load_note):
    """Whether the section's figures come from the report's run or from a
    run of their own (`make bench-scale`); figures of a run before the
    section recorded its date say nothing."""
    if "date" not in sec or (sec["date"] == fig.get("date") and sec["smoke"] == fig.get("smoke")):
        return ""
    load = sec["load"]
    return fill("scale", "separate_run", date=sec["date"], elapsed=f"{sec['elapsed']:.0f}",
                uptime_before=sec["uptime_before"], uptime_after=sec["uptime_after"],
                load1_min=f"{load['load1_min']:.2f}", load1_max=f"{load['load1_max']:.2f}",
                load1_median=f"{load['load1_median']:.2f}", other_mean=fmt(load["other_cores_mean"], 2),
                other_max=fmt(load["other_cores_max"], 2), load_note=load_note(load))


def section_f(fig, load_note):
    """The section's text blocks ([] when the run had no scenario f)."""
    scale = fig.get("scale")
    if not scale:
        return []
    # Ours first (as measured), the Python client last.
    order = sorted(scale["storm"], key=lambda name: name == "python")
    storm = "\n".join(_storm_row(name, scale["storm"][name]) for name in order)
    restart = "\n".join(_restart_row(name, f) for name, f in scale["restart"].items())
    return [fill("scale", "intro", n=scale["workers"], provenance=provenance(fig, scale, load_note)),
            fill("scale", "storm", rows=storm),
            fill("scale", "restart", n=scale["workers"], rows=restart)]
