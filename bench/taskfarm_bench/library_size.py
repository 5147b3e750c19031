"""The library's size: the stripped .so, and what each crate contributes
from the sizes of its symbols (nm -S -C)."""

import subprocess
from pathlib import Path

from .paths import LIB
from .profiling import crate_of

SIZE_GROUPS = [
    ("TLS (https://)", ("rustls", "ring", "webpki", "rustls_pki_types", "untrusted", "subtle",
                        "zeroize", "webpki_roots", "rustls_native_certs")),
    ("HTTP client", ("ureq", "ureq_proto", "http", "httparse", "bytes", "percent_encoding",
                     "base64", "utf8_zero", "url", "log")),
    ("JSON", ("serde_json", "serde", "serde_core", "zmij", "itoa", "ryu", "memchr")),
    ("Rust standard library", ("std/core/alloc",)),
    ("ours", ("taskfarm_worker",)),
    ("UUID, libc bindings", ("uuid", "getrandom", "libc", "rand", "rand_core")),
]


def library_size(workdir):
    stripped = Path(workdir) / "libtaskfarm_worker.stripped.so"
    subprocess.run(["strip", "--strip-all", "-o", str(stripped), str(LIB)], check=True)
    r = subprocess.run(["nm", "-S", "--size-sort", "-C", str(LIB)], capture_output=True, text=True, check=False)
    by_crate = {}
    counted = 0
    for line in r.stdout.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4:
            continue
        size = int(parts[1], 16)
        crate = crate_of(parts[3], "libtaskfarm_worker.so")
        if crate == "libtaskfarm_worker.so (unnamed)":
            # Not a Rust path: compiler-rt and unwinding glue belong to std;
            # the rest is the C and assembly of ring (the only C in the library).
            n = parts[3]
            if "rust" in n or n.startswith("__udiv") or n.startswith("__powi") or n.startswith("__mul") \
                    or n in ("completed.0", "__dso_handle"):
                crate = "std/core/alloc"
            else:
                crate = "ring"
        by_crate[crate] = by_crate.get(crate, 0) + size
        counted += size
    sections = {}
    r2 = subprocess.run(["size", "-A", str(stripped)], capture_output=True, text=True, check=False)
    for line in r2.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    ldd = subprocess.run(["ldd", str(LIB)], capture_output=True, text=True, check=False).stdout
    needed = sorted({line.split()[0] for line in ldd.splitlines() if line.strip() and "=>" in line})
    return dict(unstripped=LIB.stat().st_size, stripped=stripped.stat().st_size,
                symbols=counted, by_crate=sorted(by_crate.items(), key=lambda kv: -kv[1]),
                sections=sections, needed=needed)
