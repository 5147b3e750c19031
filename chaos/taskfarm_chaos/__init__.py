"""The chaos soak of taskfarm_worker (`make chaos`), one concern per module
(chaos/chaos.py is the command line):

  config        the soak's sizes and timings (CHAOS_* variables, arguments)
  schedule      the seeded fault schedule: the same seed, the same faults
  fault_proxy   a TCP proxy in front of the server that drops, delays, cuts
                or resets, for windows the schedule opens
  server        the real server (the harness's PostgreSQL + gunicorn), killed
                and restarted, PostgreSQL restarted; the audit trigger
  journal_disk  the journal directory on a small tmpfs, filled up on demand
  workers       the supervisor: a fixed number of workers, replaced when one
                dies, each process recorded (start, end, how it ended)
  reapers       `taskfarm reap --watch` on this host or on "another host"
                (a UTS namespace of its own), one at a time
  faults        each fault of the schedule carried out, and what it hit
  soak          one soak: start, faults, drain, the final state
  oracle        the checker, which trusts none of the above: the workers'
                logs, the processes' records and the database's audit
  report        RELIABILITY.md from the figures of several soaks

The harness's modules (tests/harness/taskfarm_harness/) are importable from
here: process groups and the server's state are the harness's, not copies.
"""

import sys
from pathlib import Path

_HARNESS = str(Path(__file__).resolve().parents[2] / "tests" / "harness")
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)
