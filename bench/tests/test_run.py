"""Section g (`taskfarm run` against local launchers): a launcher's own CPU
told apart from its children's on real processes, the section rendered from
its figures with the target's verdict, and merged into a full run's
figures without touching the rest."""

import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from taskfarm_bench.merge import merge_section
from taskfarm_bench.own_cpu import TICK_S, parse_stat, run_measured
from taskfarm_bench.report import render
from taskfarm_bench.report_run import own_ratio, section_g
from taskfarm_bench.results import load_figures
from taskfarm_bench.scenario_run import KEY

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "smoke_figures.json"
# The section's figures from `bench.py --smoke --only run`.
SECTION = HERE / "smoke_run.json"
HEADING = "## g. `taskfarm run`: a command per task"
# Python that spins for 0.4 s of CPU: in itself, or in a child it waits for.
SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"
SPIN_IN_CHILD = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {SPIN!r}], check=True)\n"


def measured(code, **kw):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        return run_measured([sys.executable, "-c", code], None, 60, out, err, **kw)


class OwnCpu(unittest.TestCase):
    def test_a_process_that_spins_itself_has_the_cpu_as_its_own(self):
        m = measured(SPIN)
        self.assertEqual(m.returncode, 0)
        self.assertGreaterEqual(m.self_s, 0.4 - 2 * TICK_S)
        self.assertLessEqual(m.children_s, 2 * TICK_S)

    def test_the_cpu_of_a_child_it_waited_for_is_the_childrens(self):
        m = measured(SPIN_IN_CHILD)
        self.assertEqual(m.returncode, 0)
        self.assertGreaterEqual(m.children_s, 0.4 - 2 * TICK_S)
        self.assertLess(m.self_s, 0.2)  # the interpreter's start and the spawn only
        self.assertAlmostEqual(m.self_s + m.children_s, m.rusage_s, delta=4 * TICK_S + 0.02 * m.rusage_s)

    def test_a_window_ends_with_sigterm(self):
        m = measured("import time\ntime.sleep(30)\n", window_s=0.3)
        self.assertEqual(m.returncode, -15)
        self.assertGreaterEqual(m.wall_s, 0.3)
        self.assertLess(m.wall_s, 5)

    def test_a_name_with_spaces_and_parentheses_is_skipped_whole(self):
        fields = ["S"] + ["0"] * 10 + ["300", "100", "50", "25"] + ["0"] * 30
        own, children = parse_stat("4242 (a) b (c) " + " ".join(fields))
        self.assertAlmostEqual(own, 400 * TICK_S)
        self.assertAlmostEqual(children, 75 * TICK_S)

    def test_a_run_that_outlasts_its_timeout_is_killed(self):
        with tempfile.TemporaryFile() as out:
            with self.assertRaises(TimeoutError):
                run_measured(["sleep", "30"], None, 0.3, out, subprocess.DEVNULL)


def section(**changes):
    return dict(json.loads(SECTION.read_text()), **changes)


def with_own_cpu(sec, runner_us, fork_us, **own):
    """The section with every repetition's own CPU per task set: the
    runners' to runner_us, fork+exec's to fork_us, and any other launcher's
    given by name (two_requests=60.0 for the row two-requests)."""
    sec = copy.deepcopy(sec)
    own = {k.replace("_", "-"): v for k, v in own.items()}
    own["fork-exec"] = fork_us
    for r in sec["rows"]:
        if r["client"] in own:
            r["self_us_per_task"] = own[r["client"]]
        elif r["client"].startswith("runner-"):
            r["self_us_per_task"] = runner_us
    return sec


def text_of(sec):
    fig = load_figures(FIXTURE)
    fig[KEY] = sec
    return render(fig)[0]


class Section(unittest.TestCase):
    def test_rendered_after_f_and_before_the_library_size_with_every_figure(self):
        text = text_of(section())
        headings = re.findall(r"^## (.*)$", text, re.M)
        g = headings.index(HEADING[3:])
        self.assertEqual(headings[g - 1][:2], "f." if "scale" in load_figures(FIXTURE) else "e.")
        self.assertEqual(headings[g + 1], "Library size")
        body = text.split(HEADING)[1].split("\n## ")[0]
        self.assertNotIn("${", body)
        for name in ("`taskfarm run`, canned server", "`taskfarm run`, PostgreSQL + gunicorn -w 4",
                     "GNU parallel -j1", "`/bin/sh` loop", "fork + exec loop (C)",
                     "the two requests alone, minimal C client (`two_requests_floor`, per task)",
                     "floor: fork + exec + the two requests (`two_requests_floor true`)",
                     "`taskfarm run`, canned server, on nginx's CPU",
                     "the two requests alone, minimal C client, on nginx's CPU",
                     "floor: fork + exec + the two requests, on nginx's CPU"):
            self.assertIn(f"| {name} |", body)

    def test_twice_fork_exec_or_less_is_met(self):
        text = text_of(with_own_cpu(section(), 90.0, 50.0))
        self.assertIn("own CPU per task is ×1.8 fork+exec's own per exec: **met**", text)

    def test_more_than_twice_is_not_met_and_says_where_the_rest_goes(self):
        text = text_of(with_own_cpu(section(), 300.0, 50.0))
        self.assertIn("own CPU per task is ×6.0 fork+exec's own per exec: **not met**", text)
        self.assertIn("Of the runner's 300.0 µs of own CPU per task against the canned server, 50.0 µs", text)

    def test_two_requests_that_cost_fork_exec_s_own_or_more_make_it_impossible(self):
        text = text_of(with_own_cpu(section(), 300.0, 50.0, two_requests=60.0, floor=110.0))
        self.assertIn("the 2 requests of a task alone cost the minimal C client 60.0 µs of its own CPU per task", text)
        self.assertIn("×1.2 fork+exec's own 50.0 µs; with the command run by fork+exec between them, 110.0 µs, "
                      "×2.2 fork+exec's own.", text)
        self.assertIn("**So ×2 cannot be met by any client of this protocol on this machine with the server on the "
                      "other CPU**: a runner at ×2", text)
        self.assertIn("The runner's own CPU per task is 190.0 µs above the measured floor", text)

    def test_a_floor_above_the_target_with_cheaper_requests_is_impossible_too(self):
        text = text_of(with_own_cpu(section(), 300.0, 50.0, two_requests=45.0, floor=110.0))
        self.assertIn("**So ×2 cannot be met by any client of this protocol on this machine with the server on the "
                      "other CPU**: fork+exec with", text)

    def test_a_floor_below_the_target_is_within_reach(self):
        text = text_of(with_own_cpu(section(), 300.0, 50.0, two_requests=30.0, floor=85.0))
        self.assertIn("So ×2 is within reach of a client of this protocol: the 2 requests it needs per task cost "
                      "the leanest client 30.0 µs, less than fork+exec's own 50.0 µs.", text)
        self.assertNotIn("cannot be met", text)

    def test_the_placement_on_nginx_s_cpu_is_said_with_its_verdict(self):
        text = text_of(with_own_cpu(section(), 300.0, 50.0, two_requests=60.0, floor=110.0,
                                    two_requests_nginx_cpu=10.0, floor_nginx_cpu=75.0,
                                    runner_canned_nginx_cpu=120.0))
        self.assertIn("with the client pinned to nginx's CPU (the rows *on nginx's CPU*, against the same fork+exec "
                      "row), the two requests alone cost the minimal client 10.0 µs per task, ×0.2 fork+exec's own",
                      text)
        self.assertIn("the floor 75.0 µs, ×1.5; the runner 120.0 µs, ×2.4.", text)
        self.assertIn("With the server on the client's CPU the measured floor is within ×2", text)
        above = text_of(with_own_cpu(section(), 300.0, 50.0, two_requests=60.0, floor=110.0,
                                     two_requests_nginx_cpu=40.0, floor_nginx_cpu=105.0,
                                     runner_canned_nginx_cpu=200.0))
        self.assertIn("Even with the server on the client's CPU the measured floor is above ×2.", above)

    def test_the_table_of_targets_has_it_with_the_measured_floor(self):
        text = text_of(with_own_cpu(section(), 300.0, 50.0, two_requests=60.0, floor=110.0, floor_nginx_cpu=75.0,
                                    runner_canned_nginx_cpu=120.0))
        table = text.split("## Targets")[1].split("\n## ")[0]
        self.assertRegex(table, r"\| `taskfarm run`: the runner's own CPU per task ≤ 2× fork\+exec's own per exec "
                         r"\(section g\) \| 300\.0 µs vs 50\.0 µs against the canned server: ×6\.0; against "
                         r"PostgreSQL \+ gunicorn: ×6\.0; the floor of any client of the protocol, measured "
                         r"with the server on the other CPU \(fork\+exec and the two requests of a minimal C client, "
                         r"load median [0-9.]+\): "
                         r"110\.0 µs, ×2\.2; the two requests alone 60\.0 µs, ×1\.2; with the client on nginx's CPU: "
                         r"floor 75\.0 µs, ×1\.5, the runner 120\.0 µs, ×2\.4 \| \*\*not met\*\* \|")

    def test_a_floor_of_zero_is_not_measured(self):
        text = text_of(with_own_cpu(section(), 300.0, 0.0))
        self.assertIsNone(own_ratio(with_own_cpu(section(), 300.0, 0.0)["rows"], "runner-canned"))
        self.assertIn("**not measured**", text)

    def test_a_separate_run_says_so(self):
        self.assertIn("(`make bench-run`, on 1999-01-01 00:00 UTC", text_of(section(date="1999-01-01 00:00 UTC")))

    def test_without_its_figures_no_section(self):
        self.assertEqual(section_g(load_figures(FIXTURE), lambda load: ""), [])
        self.assertNotIn(HEADING, render(load_figures(FIXTURE))[0])


class Merge(unittest.TestCase):
    def test_only_the_section_changes(self):
        tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, tmp)
        into, src = tmp / "figures.json", tmp / "section.json"
        shutil.copy(FIXTURE, into)
        src.write_text(json.dumps({KEY: section(), "rows": []}))
        merge_section(KEY, src, into)
        before, after = json.loads(FIXTURE.read_text()), json.loads(into.read_text())
        self.assertEqual(after.pop(KEY), section())
        self.assertEqual(after, before)
