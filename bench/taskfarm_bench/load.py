"""The machine's load, sampled every second in the background: the load
average, the busy CPUs (/proc/stat), and the CPU used by processes that are
not the benchmark's."""

import os
import statistics
import threading
import time

from taskfarm_harness.process_groups import pids, stat_fields


def proc_stat_cpu():
    """(busy, total) clock ticks of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def cpu_busy_seconds():
    busy, _ = proc_stat_cpu()
    return busy / os.sysconf("SC_CLK_TCK")


def all_processes():
    """{pid: (ppid, pgrp, utime + stime ticks)} from /proc."""
    procs = {}
    for pid in pids():
        fields = stat_fields(pid)
        if fields is not None:
            procs[pid] = (int(fields[1]), int(fields[2]), int(fields[11]) + int(fields[12]))
    return procs


class LoadSampler(threading.Thread):
    """Every second: the load average, the busy CPUs (/proc/stat), and the CPU
    used by processes that are not ours (neither descendants of this script
    nor the harness's servers): the load the other engineers put on the
    machine. Processes that live less than a second are missed by the latter,
    so it is a lower bound."""

    def __init__(self, interval=1.0):
        super().__init__(daemon=True)
        self.interval = interval
        self.samples = []   # (monotonic, load1, busy_cores, other_cores)
        self.stop_event = threading.Event()
        self.ncpu = os.cpu_count() or 1
        self.roots = {os.getpid()}     # ours: these and their descendants
        self.pgids = set()              # ours: these process groups
        self.hz = os.sysconf("SC_CLK_TCK")
        self.lock = threading.Lock()

    def add_ours(self, pids=(), pgids=()):
        with self.lock:
            self.roots.update(p for p in pids if p)
            self.pgids.update(g for g in pgids if g)

    def _ours(self, procs):
        with self.lock:
            roots, pgids = set(self.roots), set(self.pgids)
        ours = set()
        for pid, (_ppid, pgrp, _) in procs.items():
            chain, p = [], pid
            while p and p not in ours and p not in roots and p in procs and len(chain) < 64:
                chain.append(p)
                p = procs[p][0]
            if p in ours or p in roots or pgrp in pgids:
                ours.update(chain)
                ours.add(pid)
        return ours

    def run(self):
        busy0, total0 = proc_stat_cpu()
        t0 = time.monotonic()
        procs0 = all_processes()
        while not self.stop_event.wait(self.interval):
            busy, total = proc_stat_cpu()
            t = time.monotonic()
            procs = all_processes()
            cores = (busy - busy0) / (total - total0) * self.ncpu if total > total0 else 0.0
            ours = self._ours(procs)
            other = sum(procs[p][2] - procs0[p][2] for p in procs
                        if p in procs0 and p not in ours and procs[p][2] >= procs0[p][2])
            other_cores = other / self.hz / (t - t0) if t > t0 else 0.0
            busy0, total0, procs0, t0 = busy, total, procs, t
            self.samples.append((t, os.getloadavg()[0], cores, other_cores))

    def summary(self, start=None, end=None):
        s = [x for x in self.samples
             if (start is None or x[0] >= start) and (end is None or x[0] <= end)]
        if not s:
            load = os.getloadavg()[0]
            return dict(load1_min=load, load1_max=load, load1_median=load,
                        busy_cores_median=None, busy_cores_max=None,
                        other_cores_mean=None, other_cores_max=None, samples=0)
        loads = [x[1] for x in s]
        cores = [x[2] for x in s]
        other = [x[3] for x in s]
        return dict(load1_min=min(loads), load1_max=max(loads),
                    load1_median=statistics.median(loads),
                    busy_cores_median=statistics.median(cores),
                    busy_cores_max=max(cores),
                    other_cores_mean=statistics.mean(other), other_cores_max=max(other),
                    other_busy_share=sum(1 for o in other if o >= 0.25) / len(other),
                    samples=len(s))
