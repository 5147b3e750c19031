"""The report's sections for the canned server: the scale of the client
figures (after the targets), a and b."""

from .fmt import NONE, fmt, ratio
from .stats import paired_vs_wrk
from .template import fill


def scale_notes(ac, ap, wput):
    """The paragraphs after the targets: the CPU per request against wrk's."""
    if not (wput.get("cpu_us_per_request") and ap.get("cpu_us_per_request")):
        return []
    wrk, py = wput["cpu_us_per_request"], ap["cpu_us_per_request"]
    blocks = [fill("targets", "scale", wrk_cpu=f"{wrk:.1f}", wrk_user=fmt(wput.get("user_us_per_request"), 1),
                   wrk_sys=fmt(wput.get("sys_us_per_request"), 1), python_vs_wrk=f"{py / wrk:.1f}",
                   python_cpu=f"{py:.0f}", twentieth=f"{py / 20:.1f}",
                   lean=fill("targets", "leaner" if py / 20 < wrk else "nearly"))]
    if ac.get("cpu_us_per_request") and ac.get("sys_us_per_request") is not None:
        blocks.append(fill("targets", "ours_vs_wrk", ours_cpu=f"{ac['cpu_us_per_request']:.1f}",
                           ours_user=fmt(ac.get("user_us_per_request"), 1),
                           ours_sys=fmt(ac.get("sys_us_per_request"), 1),
                           ours_vs_wrk=f"{ac['cpu_us_per_request'] / wrk:.2f}"))
    return blocks


def section_a(cfg, rows, ac, ap, wput):
    pw = paired_vs_wrk(rows)
    return [fill(
        "canned", "a", tasks_c=cfg["canned_tasks_c"], tasks_python=cfg["canned_tasks_python"],
        rps_c=fmt(ac.get("requests_per_s")), rps_python=fmt(ap.get("requests_per_s")),
        rps_wrk=fmt(wput.get("requests_per_s")),
        rps_vs_wrk=fill("canned", "within_rep", ratio=f"{pw[0]:.2f}") if pw else NONE,
        rps_ratio=ratio(ap.get("requests_per_s"), ac.get("requests_per_s")),
        tps_c=fmt(ac.get("tasks_per_s")), tps_python=fmt(ap.get("tasks_per_s")),
        tps_ratio=ratio(ap.get("tasks_per_s"), ac.get("tasks_per_s")),
        lat_c=fmt(ac.get("latency_us"), 1), lat_python=fmt(ap.get("latency_us"), 1),
        lat_wrk=fmt(wput.get("latency_us"), 1), lat_ratio=ratio(ap.get("latency_us"), ac.get("latency_us"), 1),
        cpu_c=fmt(ac.get("cpu_us_per_request"), 1), cpu_python=fmt(ap.get("cpu_us_per_request"), 1),
        cpu_wrk=fmt(wput.get("cpu_us_per_request"), 1),
        cpu_vs_wrk=ratio(ac.get("cpu_us_per_request"), wput.get("cpu_us_per_request")),
        cpu_ratio=ratio(ap.get("cpu_us_per_request"), ac.get("cpu_us_per_request"), 1),
        user_c=fmt(ac.get("user_us_per_request"), 1), sys_c=fmt(ac.get("sys_us_per_request"), 1),
        user_python=fmt(ap.get("user_us_per_request"), 1), sys_python=fmt(ap.get("sys_us_per_request"), 1),
        rpt_c=fmt(ac.get("requests_per_task"), 0), rpt_python=fmt(ap.get("requests_per_task"), 0),
        rss_c=fmt(ac.get("peak_rss_kb")), rss_python=fmt(ap.get("peak_rss_kb")),
        rss_ratio=ratio(ap.get("peak_rss_kb"), ac.get("peak_rss_kb"), 1),
        first_c=fmt(ac.get("first_task_ms"), 2), first_python=fmt(ap.get("first_task_ms"), 1),
        first_ratio=ratio(ap.get("first_task_ms"), ac.get("first_task_ms"), 1),
    )]


def _wrk(prefix, w):
    return {f"{prefix}_rps": fmt(w.get("requests_per_s")), f"{prefix}_lat": fmt(w.get("latency_us"), 1),
            f"{prefix}_p50": fmt(w.get("latency_p50_us")), f"{prefix}_p99": fmt(w.get("latency_p99_us")),
            f"{prefix}_cpu": fmt(w.get("cpu_us_per_request"), 1),
            f"{prefix}_user": fmt(w.get("user_us_per_request"), 1),
            f"{prefix}_sys": fmt(w.get("sys_us_per_request"), 1)}


def section_b(cfg, rows, wget, wput):
    blocks = [fill("canned", "b", seconds=cfg["wrk_seconds"], **_wrk("get", wget), **_wrk("put", wput))]
    pw, pp = paired_vs_wrk(rows), paired_vs_wrk(rows, "python")
    if pw and pp:
        blocks.append(fill("canned", "b_paired", ours=f"{pw[0]:.2f}", ours_low=f"{pw[1]:.2f}",
                           ours_high=f"{pw[2]:.2f}", python=f"{pp[0]:.2f}", python_low=f"{pp[1]:.2f}",
                           python_high=f"{pp[2]:.2f}"))
    return blocks
