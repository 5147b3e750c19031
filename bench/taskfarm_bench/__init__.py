"""The benchmarks of taskfarm_worker against the Python client, one concern
per module (bench/bench.py is the command line; its docstring says what is
measured):

  paths, config       where things are; sizes, clients, targets
  checks              log lines and correctness checks
  processes, cpus     what we started (stopped on every way out); CPU pinning
  load                the machine's load, sampled every second
  tools               Debian tools, their versions, the machine
  canned_server       nginx with canned answers (scenarios a, b, profile)
  real_server         the harness's real server (c, d, e)
  workers             starting the benchmark workers, reading their reports
  runs                one measured run of n workers on the real server (c, e)
  scenario_*          a + b, c, d, e
  profiling, library_size   callgrind, strace; the .so by crate
  stats               medians and paired ratios (unit-tested: tests/)
  targets             the issue's targets against the figures
  results             results.csv and figures.json (the report's inputs)
  report*, template   BENCHMARKS.md from bench/report/*.md and the figures
  plot                the SVG plots
  scenario_python_rs, report_python_rs   the Python package taskfarm_worker_rs
                      against the Python client (its own section and figures)
  scenario_run, report_run, own_cpu   `taskfarm run -- true` against GNU
                      parallel, a shell loop and fork+exec (section g); a
                      launcher's own CPU apart from its children's
  merge               a section run alone put into a full run's figures
  main                the run, or a re-render from saved figures

The harness's modules (tests/harness/taskfarm_harness/) are importable from
here: process groups and server state are the harness's, not copies.
"""

import sys
from pathlib import Path

_HARNESS = str(Path(__file__).resolve().parents[2] / "tests" / "harness")
if _HARNESS not in sys.path:
    sys.path.insert(0, _HARNESS)
