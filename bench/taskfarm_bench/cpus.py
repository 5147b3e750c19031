"""CPUs: the server on one, the client on another (scenarios a and b)."""

import os

ALL_CPUS = sorted(os.sched_getaffinity(0))
PIN = len(ALL_CPUS) >= 2
SERVER_CPU = ALL_CPUS[0]
CLIENT_CPU = ALL_CPUS[1] if PIN else ALL_CPUS[0]


class pinned:
    """Runs the block with this process (and so the children it starts) on `cpus`."""

    def __init__(self, cpus):
        self.cpus = set(cpus)

    def __enter__(self):
        self.saved = os.sched_getaffinity(0)
        if PIN:
            os.sched_setaffinity(0, self.cpus)

    def __exit__(self, *exc):
        os.sched_setaffinity(0, self.saved)
