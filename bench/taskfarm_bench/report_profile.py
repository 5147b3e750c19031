"""The report's sections for the library's size and the profile, with what
the profile says and the changes it led to."""

from .fmt import fmt
from .library_size import SIZE_GROUPS
from .profiling import crate_of
from .template import fill, text

# What make bench measured on this machine before the changes the profile
# justified (commit 448a5b1, 2026-11-28 07:14 UTC, the BENCHMARKS.md of that
# commit): kept so that the change's effect stays on record beside this run.
BEFORE_PROFILE_CHANGES = dict(
    commit="448a5b1", when="2026-11-28 07:14 UTC", cpu_us=72.2, user_us=19.6, sys_us=52.5,
    syscalls=22.0, instructions=57_874, vs_wrk=0.69,
)


def section_size(size):
    groups = {}
    for crate, b in size["by_crate"]:
        g = next((name for name, members in SIZE_GROUPS if crate in members), "other crates")
        groups[g] = groups.get(g, 0) + b
    group_rows = []
    for name, members in [*SIZE_GROUPS, ("other crates", ())]:
        if name in groups:
            present = [c for c, _ in size["by_crate"] if c in members] if members else \
                [c for c, _ in size["by_crate"] if not any(c in m for _, m in SIZE_GROUPS)]
            label = text("size", "other_crates") if name == "other crates" else name
            group_rows.append(fill("size", "group_row", name=label, crates=", ".join(present),
                                   kib=f"{groups[name] / 1024:,.1f}", share=f"{groups[name] / size['symbols']:.1%}"))
    crate_rows = [fill("size", "crate_row", crate=crate, kib=f"{b / 1024:,.1f}", share=f"{b / size['symbols']:.1%}")
                  for crate, b in size["by_crate"][:14]]
    rest = sum(b for _, b in size["by_crate"][14:])
    if rest:
        crate_rows.append(fill("size", "crate_row", crate=text("size", "others"), kib=f"{rest / 1024:,.1f}",
                               share=f"{rest / size['symbols']:.1%}"))
    big = sorted(size["sections"].items(), key=lambda kv: -kv[1])[:6]
    return [fill("size", "intro", unstripped=f"{size['unstripped'] / 1024:,.0f}",
                 stripped=f"{size['stripped'] / 1024:,.0f}", needed=", ".join(size["needed"]),
                 covered=f"{size['symbols'] / size['stripped']:.0%}", groups="\n".join(group_rows),
                 crates="\n".join(crate_rows),
                 sections=", ".join(fill("size", "section", name=k, kib=f"{v / 1024:,.0f}") for k, v in big))]


def section_profile(cfg, prof, sysc, canned, vs_wrk):
    if not prof:
        return [text("profile", "failed")]
    crates = [fill("profile", "crate_row", crate=crate, per_request=f"{ir / prof['requests']:,.0f}",
                   share=f"{ir / prof['total_ir']:.1%}") for crate, ir in prof["by_crate"][:14]]
    functions = []
    for ir, fn, obj in prof["inclusive"][:18]:
        short = fn if len(fn) <= 110 else fn[:107] + "..."
        functions.append(fill("profile", "function_row", per_request=f"{ir / prof['requests']:,.0f}",
                              share=f"{ir / prof['total_ir']:.1%}", function=short.replace("|", "\\|"),
                              crate=crate_of(fn, obj)))
    blocks = [fill("profile", "intro", tasks=prof["tasks"], requests=prof["requests"],
                   total_ir=f"{prof['total_ir']:,}", ir_per_request=f"{prof['ir_per_request']:,.0f}",
                   crates="\n".join(crates), functions="\n".join(functions))]
    if sysc:
        # Most calls first, ties by name: a set's order changes with the
        # string hash seed of each Python process, and the report must not.
        names = sorted(set(sysc["c"]) | set(sysc["python"]),
                       key=lambda k: (-(sysc["c"].get(k, 0) + sysc["python"].get(k, 0)), k))
        rows = [fill("profile", "syscall_row", name=k, c=f"{sysc['c'].get(k, 0):.2f}",
                     python=f"{sysc['python'].get(k, 0):.2f}")
                for k in names if sysc["c"].get(k, 0) >= 0.05 or sysc["python"].get(k, 0) >= 0.05]
        blocks.append(fill("profile", "syscalls", tasks_short=cfg["strace_tasks"][0],
                           tasks_long=cfg["strace_tasks"][1], rows="\n".join(rows),
                           all_c=f"{sum(sysc['c'].values()):.1f}", all_python=f"{sum(sysc['python'].values()):.1f}"))
    blocks.append(profile_note(prof, sysc, canned, vs_wrk))
    return blocks


def profile_note(prof, sysc, canned, vs_wrk):
    """What the profile says, from its own figures; `canned` is our median row
    of scenario a and `vs_wrk` the paired ratio to wrk (for the change's after)."""
    crates = dict(prof["by_crate"])
    total = prof["total_ir"]
    notes = [fill("profile", "by_crate", shares=", ".join(
        fill("profile", "crate_share", crate=name, share=f"{crates[name] / total:.0%}")
        for name in ("libc", "std/core/alloc", "ureq", "ureq_proto", "http", "httparse", "serde_json",
                     "taskfarm_worker") if name in crates))]
    clone = (sysc or {}).get("c", {}).get("clone3", 0) + (sysc or {}).get("c", {}).get("clone", 0)
    if prof.get("thread_ir") and clone >= 0.5:
        notes.append(fill("profile", "threads", clones=f"{clone:.2f}",
                          thread_share=f"{prof['thread_ir'] / total:.0%}",
                          spawn_share=f"{prof['spawn_ir'] / total:.0%}"))
    if sysc:
        notes.append(fill(
            "profile", "system_calls", ours=f"{sum(sysc.get('c', {}).values()):.1f}",
            python=f"{sum(sysc.get('python', {}).values()):.1f}",
            besides=text("profile", "besides") + " " if clone >= 0.5 else "",
            two_writes=text("profile", "two_writes") if sysc.get("c", {}).get("sendto", 0) > 1.5 else ""))
    if clone < 0.5:
        notes.append(profile_changes_note(prof, sysc, canned, vs_wrk))
    return "\n\n".join(notes)


def profile_changes_note(prof, sysc, a, vs_wrk):
    """The library changes the profile led to, with their before and after."""
    b = BEFORE_PROFILE_CHANGES
    after = []
    if a.get("cpu_us_per_request"):
        after.append(fill("profile", "after_cpu", before_cpu=f"{b['cpu_us']:.1f}",
                          cpu=f"{a['cpu_us_per_request']:.1f}", before_user=f"{b['user_us']:.1f}",
                          user=fmt(a.get("user_us_per_request"), 1), before_sys=f"{b['sys_us']:.1f}",
                          sys=fmt(a.get("sys_us_per_request"), 1)))
    if sysc:
        after.append(fill("profile", "after_syscalls", before=f"{b['syscalls']:.1f}",
                          after=f"{sum(sysc.get('c', {}).values()):.1f}"))
    if prof.get("ir_per_request"):
        after.append(fill("profile", "after_instructions", before=f"{b['instructions']:,}",
                          after=f"{prof['ir_per_request']:,.0f}"))
    if vs_wrk:
        after.append(fill("profile", "after_vs_wrk", before=f"{b['vs_wrk']:.2f}", after=f"{vs_wrk[0]:.2f}"))
    return fill("profile", "changes", commit=b["commit"], when=b["when"], after="; ".join(after))
