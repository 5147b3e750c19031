"""The report's section f (many workers at once), from scenario_scale's
figures; its prose is bench/report/scale.md."""

from .fmt import fmt
from .template import fill


def _storm_row(name, f):
    na = name == "python"
    return fill("scale", "storm_row", name=fill("scale", "name_python", n=f["workers"]) if na else
                fill("scale", "name_" + name.replace(" ", "_"), n=f["workers"]),
                all_hold=fmt(f["all_hold_s"], 2), server_5xx=f["server_5xx"],
                refused="n/a" if na else f["refused"], timeouts="n/a" if na else f["timeouts"],
                peak_rps="n/a" if na else f["peak_rps"], server_cpu=fmt(f["server_cpu_s"], 1),
                failed=f["failed"])


def _restart_row(name, f):
    return fill("scale", "restart_row", name=name, outage=fmt(f["outage_s"], 2), all_work=fmt(f["all_work_s"], 2),
                attempts=f["attempts"], refused=f["refused"], peak=f["wave_peak"],
                peak_rps=f["peak_rps"], failed=f["failed"])


def section_f(scale):
    """The section's text blocks ([] when the run had no scenario f)."""
    if not scale:
        return []
    storm = "\n".join(_storm_row(name, f) for name, f in scale["storm"].items())
    restart = "\n".join(_restart_row(name, f) for name, f in scale["restart"].items())
    return [fill("scale", "intro", n=scale["workers"]), fill("scale", "storm", rows=storm),
            fill("scale", "restart", n=scale["workers"], rows=restart)]
