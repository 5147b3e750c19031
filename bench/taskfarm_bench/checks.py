"""Log lines on stderr, and the correctness checks: a failed check is
reported and makes the exit status 1 (performance targets are reported, not
enforced)."""

import sys
import time

FAILURES = []


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def check(cond, msg):
    """A correctness check: a failure is reported and makes the exit status 1."""
    if not cond:
        FAILURES.append(msg)
        log(f"CHECK FAILED: {msg}")
    return cond
