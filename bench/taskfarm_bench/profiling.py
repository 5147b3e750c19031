"""The profile of the C worker on the canned server: callgrind, grouped by
crate, and the system calls per request of both clients (strace -c)."""

import os
import re
import subprocess
from pathlib import Path

from .checks import check
from .config import CLIENTS
from .workers import Workers


def crate_of(function, obj, source=""):
    """The crate of a (demangled) Rust function, else the object's name
    (else, for code callgrind gives no object for, glibc's source path)."""
    name = function.strip()
    while name.startswith("<"):
        name = name[1:]
    name = re.sub(r"^(dyn |impl |&mut |&|\*const |\*mut )+", "", name)
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    if not m:
        # <T as some_crate::Trait>::f, <u64 as ...>, <char>::f: the trait's
        # crate, else the standard library (a primitive or generic type).
        m = re.search(r" as ([A-Za-z_][A-Za-z0-9_]*)::", name)
        if not m and function.strip().startswith("<"):
            return "std/core/alloc"
    if m:
        crate = m.group(1)
        if crate in ("core", "alloc", "std", "__rustc", "hashbrown", "memchr", "rustc_demangle",
                     "adler2", "miniz_oxide", "panic_unwind", "unwind", "gimli", "addr2line", "object", "std_detect"):
            return "std/core/alloc"
        return crate
    base = os.path.basename(obj or "")
    if base.startswith("libc.so") or base.startswith("libc-"):
        return "libc"
    if base.startswith("ld-linux") or base.startswith("ld-"):
        return "ld.so (dynamic loader)"
    if "vgpreload" in base or base.startswith("valgrind"):
        return "valgrind"
    if base.startswith("libtaskfarm_worker"):
        return "taskfarm_worker" if name.startswith("tf_") else "libtaskfarm_worker.so (unnamed)"
    if base == "bench_worker":
        return "bench_worker (the C program)"
    if not base and source.startswith("./elf/"):
        return "ld.so (dynamic loader)"
    if not base and (source.startswith("./") or "sysdeps" in source):
        return "libc"
    if not base and name.startswith("__rustc::"):
        return "std/core/alloc"
    return base or "?"


ANNOTATE_LINE = re.compile(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S.*?):(.*?)(?:\s+\[(.*)\])?\s*$")


def callgrind_functions(out_file, inclusive):
    r = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}",
                        "--threshold=100", "--auto=no", str(out_file)],
                       capture_output=True, text=True, timeout=300, check=False)
    funcs = []
    total = None
    for line in r.stdout.splitlines():
        if total is None:
            m = re.match(r"^\s*([\d,]+)\s+(?:\(.*\)\s+)?PROGRAM TOTALS", line)
            if m:
                total = int(m.group(1).replace(",", ""))
            continue
        m = ANNOTATE_LINE.match(line)
        if m:
            funcs.append((int(m.group(1).replace(",", "")), m.group(3).strip(), m.group(4) or "",
                          m.group(2)))
    return total, funcs


def profile(cfg, server, workers, env, workdir):
    out_file = Path(workdir) / "callgrind.out"
    n = cfg["callgrind_tasks"]
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
           workers.worker_bin, server.run_uuid, str(n)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    if r.returncode != 0:
        check(False, f"callgrind run failed: {r.stderr[-1500:]}")
        return None
    report = Workers.parse("c", r.stdout, r.stderr, 0)
    total, incl = callgrind_functions(out_file, inclusive=True)
    _, excl = callgrind_functions(out_file, inclusive=False)
    by_crate = {}
    for ir, fn, obj, src in excl:
        c = crate_of(fn, obj, src)
        by_crate[c] = by_crate.get(c, 0) + ir
    requests = report["requests"]
    # Threads: what runs below start_thread (the main thread is below main),
    # and what starting them costs the main thread.
    thread_ir = max([ir for ir, fn, _, _ in incl if fn == "start_thread"] + [0])
    spawn_ir = max([ir for ir, fn, _, _ in incl if fn.endswith("Thread>::new")] + [0])
    # The inclusive list without callgrind's artefacts: recursion cycles
    # ('2 suffixes, shares over 100 %), raw addresses and the startup frames.
    shown = [(ir, fn, obj) for ir, fn, obj, _ in incl
             if "'" not in fn and not fn.startswith("0x") and ir <= total
             and fn not in ("(below main)", "main", "_start")
             and not fn.startswith("__libc_start") and not fn.startswith("start_thread")
             and not fn.startswith("std::sys::thread") and "thread::Thread" not in fn]
    return dict(total_ir=total, requests=requests, tasks=n,
                ir_per_request=total / requests if total and requests else None,
                thread_ir=thread_ir, spawn_ir=spawn_ir,
                inclusive=shown[:30], by_crate=sorted(by_crate.items(), key=lambda kv: -kv[1]))


def parse_strace_counts(path):
    counts = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) < 5 or not parts[0][0].isdigit() or parts[-1] == "total":
            continue
        try:
            counts[parts[-1]] = int(parts[3])
        except ValueError:
            continue
    return counts


def syscalls_per_request(cfg, server, workers, env, workdir):
    """System calls per request of each client, from `strace -f -c` of two
    runs of different lengths (the difference leaves out the startup)."""
    result = {}
    for client in CLIENTS:
        runs = []
        for n in cfg["strace_tasks"]:
            out = Path(workdir) / f"strace-{client}-{n}.txt"
            cmd = ["strace", "-f", "-c", "-o", str(out)] + workers.command(client, server.run_uuid, n)
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
            if r.returncode != 0:
                check(False, f"strace of the {client} worker failed: {r.stderr[-1000:]}")
                return None
            report = Workers.parse(client, r.stdout, r.stderr, 0)
            runs.append((report["requests"], parse_strace_counts(out)))
        (r1, c1), (r2, c2) = runs
        result[client] = {k: (c2.get(k, 0) - c1.get(k, 0)) / (r2 - r1) for k in sorted(set(c1) | set(c2))}
    return result
