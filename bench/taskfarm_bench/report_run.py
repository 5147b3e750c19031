"""The report's section g (`taskfarm run` against local launchers,
bench/report/run.md), from the section's figures (figures.json's "run",
written by scenario_run), with the issue's target: the runner's own CPU per
task at most twice fork+exec's own per exec."""

from .fmt import NONE, fmt
from .scenario_run import KEY, LAUNCHERS, RUNNER_REQUESTS
from .stats import medians, paired
from .template import fill, text

FIELDS = ["tasks", "tasks_per_s", "wall_s", "self_us_per_task", "children_us_per_task", "server_cpu_ms_per_task",
          "self_user_us_per_task", "self_sys_us_per_task"]
# The table's order: the runner, then the local launchers from the dearest to the floor.
ORDER = ("runner-canned", "runner-canned-nginx-cpu", "runner-postgresql", "library", "parallel", "shell-loop", "floor",
         "floor-nginx-cpu", "two-requests", "two-requests-nginx-cpu", "fork-exec")


def own_ratio(rows, launcher):
    """launcher's own CPU per task / fork+exec's own per exec, within each
    repetition: (median, low, high), None without both."""
    return paired(rows, lambda r: r["scenario"] == "g-run", "self_us_per_task", launcher, "fork-exec")


def ratio_cell(pr):
    if pr is None:
        return NONE
    if pr[1] != pr[2]:
        return fill("run", "ratio", ratio=f"{pr[0]:.1f}", low=f"{pr[1]:.1f}", high=f"{pr[2]:.1f}")
    return fill("run", "ratio_one", ratio=f"{pr[0]:.1f}")


def target_met(pr, target):
    """True, False, or None when not measured."""
    return None if pr is None else pr[0] <= target


def verdict(ok):
    return text("run", "not_measured" if ok is None else "met" if ok else "not_met")


def _provenance(fig, sec, load_note):
    """Nothing when the section comes from the report's run; else when and
    under what load its own run was made (`make bench-run`)."""
    if sec["date"] == fig.get("date") and sec["smoke"] == fig.get("smoke"):
        return ""
    load = sec["load"]
    return fill("run", "separate_run", date=sec["date"], elapsed=f"{sec['elapsed']:.0f}",
                load1_min=f"{load['load1_min']:.2f}", load1_max=f"{load['load1_max']:.2f}",
                load1_median=f"{load['load1_median']:.2f}", other_mean=fmt(load["other_cores_mean"], 2),
                other_max=fmt(load["other_cores_max"], 2), load_note=load_note(load))


def run_target(fig):
    """The issue's target for the table of targets: (name, measured, met),
    judged against the canned server (the runner's own cost alone) and the
    real one; None when the figures have no section g."""
    sec = fig.get(KEY)
    if not sec:
        return None
    rows, target = sec["rows"], sec["target_ratio"]
    canned, real = own_ratio(rows, "runner-canned"), own_ratio(rows, "runner-postgresql")
    med = {key[3]: m for key, m in medians(rows, FIELDS).items() if key[0] == "g-run"}
    oks = [target_met(canned, target), target_met(real, target)]
    measured = fill("run", "target_measured", runner=fmt(med.get("runner-canned", {}).get("self_us_per_task"), 1),
                    fork=fmt(med.get("fork-exec", {}).get("self_us_per_task"), 1), ratio_canned=ratio_cell(canned),
                    ratio_real=ratio_cell(real))
    floor, two = own_ratio(rows, "floor"), med.get("two-requests", {}).get("self_us_per_task")
    if floor is not None and two is not None:
        measured += fill("run", "target_floor", floor_us=fmt(med["floor"]["self_us_per_task"], 1),
                         ratio_floor=ratio_cell(floor), two_us=fmt(two, 1),
                         ratio_two=ratio_cell(own_ratio(rows, "two-requests")),
                         load1_median=f"{sec['load']['load1_median']:.2f}", nginx_cpu=nginx_cpu_cell(rows, med))
    ok = None if None in oks else all(oks)
    return fill("run", "target_name", target=f"{target:g}"), measured, ok


def nginx_cpu_cell(rows, med):
    """The floor and the runner with the client on nginx's CPU, for the
    table of targets; nothing without their rows."""
    floor, runner = own_ratio(rows, "floor-nginx-cpu"), own_ratio(rows, "runner-canned-nginx-cpu")
    if floor is None or runner is None:
        return ""
    return fill("run", "target_nginx_cpu", floor_us=fmt(med["floor-nginx-cpu"]["self_us_per_task"], 1),
                ratio_floor=ratio_cell(floor), runner_us=fmt(med["runner-canned-nginx-cpu"]["self_us_per_task"], 1),
                ratio_runner=ratio_cell(runner))


def rusage_us(med, launcher):
    """A minimal client's own CPU per task by its own getrusage (user +
    system, medians), None without them."""
    m = med.get(launcher, {})
    user, sys = m.get("self_user_us_per_task"), m.get("self_sys_us_per_task")
    return None if user is None or sys is None else user + sys


def nginx_cpu_floor(rows, med, target):
    """What the placement changes: the floor and the runner with the client
    on nginx's CPU; nothing without their rows."""
    two, floor = own_ratio(rows, "two-requests-nginx-cpu"), own_ratio(rows, "floor-nginx-cpu")
    runner = own_ratio(rows, "runner-canned-nginx-cpu")
    if two is None or floor is None or runner is None:
        return ""
    two_us = med["two-requests-nginx-cpu"]["self_us_per_task"]
    here, apart = rusage_us(med, "two-requests-nginx-cpu"), rusage_us(med, "two-requests")
    return fill("run", "floor_nginx_cpu", two_us=fmt(two_us, 1), ratio_two=ratio_cell(two),
                floor_us=fmt(med["floor-nginx-cpu"]["self_us_per_task"], 1), ratio_floor=ratio_cell(floor),
                runner_us=fmt(med["runner-canned-nginx-cpu"]["self_us_per_task"], 1), ratio_runner=ratio_cell(runner),
                two_rusage_us=fmt(here, 1), apart_rusage_us=fmt(apart, 1),
                times=f"{apart / here:.1f}" if apart and here else NONE,
                verdict=fill("run", "nginx_cpu_within" if floor[0] <= target else "nginx_cpu_above",
                             target=f"{target:g}"))


def measured_floor(rows, med, target, load):
    """The floor of any runner of this protocol, measured: the minimal
    client's two requests alone and with fork+exec of the command (rows
    two-requests and floor), against fork+exec's own; nothing without them."""
    floor, two = own_ratio(rows, "floor"), own_ratio(rows, "two-requests")
    floor_us = med.get("floor", {}).get("self_us_per_task")
    two_us = med.get("two-requests", {}).get("self_us_per_task")
    fork_us = med.get("fork-exec", {}).get("self_us_per_task")
    if floor is None or two is None or None in (floor_us, two_us, fork_us):
        return ""
    two_med = med["two-requests"]
    if two[0] >= target - 1:
        part = "floor_impossible"
    elif floor[0] > target:
        part = "floor_above"
    else:
        part = "floor_below"
    library_us = med.get("library", {}).get("self_us_per_task")
    runner_us = med.get("runner-canned", {}).get("self_us_per_task")
    said = [fill("run", "floor", two_us=fmt(two_us, 1), requests=RUNNER_REQUESTS,
                 user_us=fmt(two_med.get("self_user_us_per_task"), 1),
                 sys_us=fmt(two_med.get("self_sys_us_per_task"), 1), ratio_two=ratio_cell(two),
                 fork_us=fmt(fork_us, 1), floor_us=fmt(floor_us, 1), ratio_floor=ratio_cell(floor),
                 load1_min=f"{load['load1_min']:.2f}", load1_max=f"{load['load1_max']:.2f}",
                 load1_median=f"{load['load1_median']:.2f}",
                 verdict=fill("run", part, target=f"{target:g}", requests=RUNNER_REQUESTS, fork_us=fmt(fork_us, 1),
                              two_us=fmt(two_us, 1), ratio_two=ratio_cell(two)))]
    if library_us is not None:
        said.append(fill("run", "floor_library", library_us=fmt(library_us, 1),
                         per_request_us=fmt(two_us / RUNNER_REQUESTS, 1)))
    if runner_us is not None:
        said.append(fill("run", "floor_runner", over_us=fmt(runner_us - floor_us, 1)))
    placement = nginx_cpu_floor(rows, med, target)
    return " ".join(said) + ("\n\n" + placement if placement else "")


def section_g(fig, load_note):
    """The section's blocks; none when the figures have no such section."""
    sec = fig.get(KEY)
    if not sec:
        return []
    rows, cfg = sec["rows"], sec["cfg"]
    med = {key[3]: m for key, m in medians(rows, FIELDS).items() if key[0] == "g-run"}
    lines = []
    for launcher in (x for x in ORDER if x in LAUNCHERS):
        m = med.get(launcher, {})
        tps = m.get("tasks_per_s")
        name = text("run", "name_" + launcher.replace("-", "_"))
        lines.append(fill("run", "row", name=name, tasks=fmt(m.get("tasks")),
                          tps=fmt(tps, 1), wall_ms=fmt(1e3 / tps if tps else None, 2),
                          self_us=fmt(m.get("self_us_per_task"), 1),
                          children_us=fmt(m.get("children_us_per_task"), 1),
                          ratio=NONE if launcher == "fork-exec" else ratio_cell(own_ratio(rows, launcher))))
    canned, real = own_ratio(rows, "runner-canned"), own_ratio(rows, "runner-postgresql")
    target = sec["target_ratio"]
    ok_canned, ok_real = target_met(canned, target), target_met(real, target)
    server_ms = med.get("runner-postgresql", {}).get("server_cpu_ms_per_task")
    runner, floor = med.get("runner-canned", {}), med.get("fork-exec", {})
    self_us, fork_us = runner.get("self_us_per_task"), floor.get("self_us_per_task")
    why = ""
    if ok_canned is False and self_us is not None and fork_us is not None:
        why = fill("run", "why_not_met", self_us=fmt(self_us, 1), fork_us=fmt(fork_us, 1),
                   extra_us=fmt(self_us - fork_us, 1))
        why += " " + measured_floor(rows, med, target, sec["load"])
        why += "\n\n" + fill("run", "where_it_goes", target=f"{target:g}")
    return [
        fill("run", "intro", pg_tasks=cfg["pg_tasks"], parallel_version=sec.get("parallel_version") or "GNU parallel",
             shell=sec["shell"], job_shell=sec.get("job_shell") or NONE, command=sec["command"], reps=cfg["reps"],
             window=f"{cfg['canned_window_s']:g}", per_task=RUNNER_REQUESTS, tick_ms=f"{sec['tick_s'] * 1e3:g}",
             provenance=_provenance(fig, sec, load_note)),
        fill("run", "table", rows="\n".join(lines),
             server=fill("run", "server", server_ms=fmt(server_ms, 1)) if server_ms is not None else "",
             target=f"{target:g}", ratio_canned=ratio_cell(canned), ratio_real=ratio_cell(real),
             verdict_canned=verdict(ok_canned), verdict_real=verdict(ok_real), why=why),
    ]
