"""BENCHMARKS.md from the figures of a run (results.load_figures gives them
back from bench/figures.json): the sections' prose is in bench/report/*.md."""

import re

from .fmt import fmt
from .report_canned import scale_notes, section_a, section_b
from .report_coalesced import section_e
from .report_profile import section_profile, section_size
from .report_python_rs import section_python_rs
from .report_run import run_target, section_g
from .report_scale import section_f
from .report_server import section_c, section_d
from .results import MEDIAN_FIELDS
from .stats import medians, paired_vs_wrk
from .targets import evaluate, verdict
from .template import fill, text


def load_note(load):
    busy = (load["other_cores_mean"] or 0) > 0.1 or (load["other_cores_max"] or 0) > 0.5
    return text("header", "load_busy" if busy else "load_quiet")


def section_header(fig):
    cfg, load, before = fig["cfg"], fig["load"], fig["load_before"]
    phases = "; ".join(fill("header", "phase", phase=k, mean=fmt(v["other_cores_mean"], 2),
                            max=fmt(v["other_cores_max"], 2)) for k, v in fig["phase_load"].items())
    return [
        fill("header", "title", smoke_flag=" --smoke" if fig["smoke"] else "", date=fig["date"],
             elapsed=f"{fig['elapsed']:.0f}", canned_reps=cfg["canned_reps"], wrk_reps=cfg["wrk_reps"],
             real_reps=cfg["real_reps"]),
        fill("header", "machine", machine=fig["machine"], load1_min=f"{load['load1_min']:.2f}",
             load1_max=f"{load['load1_max']:.2f}", load1_median=f"{load['load1_median']:.2f}",
             busy_median=fmt(load["busy_cores_median"], 2), busy_max=fmt(load["busy_cores_max"], 2),
             cpus=fig["cpus"], other_mean=fmt(load["other_cores_mean"], 2),
             other_max=fmt(load["other_cores_max"], 2), other_share=f"{load.get('other_busy_share', 0):.0%}",
             before_1=f"{before[0]:.2f}", before_5=f"{before[1]:.2f}", before_15=f"{before[2]:.2f}",
             phases=phases, load_note=load_note(load)),
    ]


def section_targets(targets):
    return [fill("targets", "table", rows="\n".join(
        fill("targets", "row", name=name, measured=measured, verdict=verdict(ok))
        for name, measured, ok in targets))]


def render(fig):
    """The text of BENCHMARKS.md, and the targets (for the log)."""
    rows, cfg = fig["rows"], fig["cfg"]
    med = medians(rows, MEDIAN_FIELDS)
    targets, misses = evaluate(cfg, med, fig["real_points"], fig["size"], rows)
    if run_target(fig):
        targets.append(run_target(fig))
    a = lambda client: med.get(("a-canned", "canned", 1, client), {})  # noqa: E731
    wrk = lambda m: med.get(("b-wrk", "canned", 1, f"wrk-{m}"), {})  # noqa: E731
    ac, ap, wput, wget = a("c"), a("python"), wrk("PUT"), wrk("GET")
    blocks = (section_header(fig) + section_targets(targets) + scale_notes(ac, ap, wput)
              + section_a(cfg, rows, ac, ap, wput) + section_b(cfg, rows, wget, wput)
              + section_c(med, rows, fig["real_points"], fig.get("pg_missing"), misses)
              + section_d(cfg, med, rows) + section_e(cfg, med, rows) + section_f(fig, load_note)
              + section_g(fig, load_note) + section_python_rs(fig, load_note) + section_size(fig["size"])
              + section_profile(cfg, fig["profile"], fig["syscalls"], ac, paired_vs_wrk(rows))
              + [fill("measured", "measured", versions=fig["versions"])])
    body = "\n\n".join(b.strip("\n") for b in blocks if b.strip())
    # A figure left empty (a note that does not apply) leaves no empty paragraph.
    return re.sub(r"\n{3,}", "\n\n", body) + "\n\n", targets
