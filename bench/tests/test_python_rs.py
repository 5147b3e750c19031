"""The section on the Python package taskfarm_worker_rs: rendered from its
figures, placed in the report, and merged into a full run's figures.json
without touching the rest."""

import json
import re
import shutil
import tempfile
import unittest
from pathlib import Path

from taskfarm_bench.merge import merge_section
from taskfarm_bench.report import render
from taskfarm_bench.results import load_figures
from taskfarm_bench.scenario_python_rs import KEY

HERE = Path(__file__).resolve().parent
# The figures of a full `make bench-smoke` run, and those of the section from
# `bench.py --smoke --only python-rs` (with its PostgreSQL part, which the smoke now leaves out).
FIXTURE = HERE / "smoke_figures.json"
SECTION = HERE / "smoke_python_rs.json"
HEADING = "## Python: taskfarm_worker_rs against taskfarm-worker 0.4.0"


def figures_with_section(**changes):
    fig = load_figures(FIXTURE)
    fig[KEY] = dict(json.loads(SECTION.read_text()), **changes)
    return fig


class Section(unittest.TestCase):
    def test_rendered_before_the_library_size_with_every_figure(self):
        text, _ = render(figures_with_section())
        headings = re.findall(r"^## (.*)$", text, re.M)
        self.assertEqual(headings[headings.index(HEADING[3:]) + 1], "Library size")
        section = text.split(HEADING)[1].split("\n## ")[0]
        self.assertNotIn("${", section)
        self.assertNotIn("| – |", section.split("### On the canned server")[1].split("### On the real")[0])
        self.assertIn("| sqlite | 1 |", section)
        self.assertIn("| postgresql | 2 |", section)

    def test_a_separate_run_says_so(self):
        text, _ = render(figures_with_section(date="1999-01-01 00:00 UTC"))
        self.assertIn("These figures come from a separate run of this section alone", text)
        self.assertIn("on 1999-01-01 00:00 UTC", text)

    def test_same_run_says_so(self):
        fig = load_figures(FIXTURE)
        text, _ = render(figures_with_section(date=fig["date"], smoke=fig["smoke"]))
        self.assertIn("These figures come from the same run as the rest of this report.", text)

    def test_without_its_figures_no_section(self):
        text, _ = render(load_figures(FIXTURE))
        self.assertNotIn(HEADING, text)


class Merge(unittest.TestCase):
    def test_only_the_section_changes(self):
        tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, tmp)
        into, src = tmp / "figures.json", tmp / "section.json"
        shutil.copy(FIXTURE, into)
        src.write_text(json.dumps({KEY: json.loads(SECTION.read_text()), "rows": []}))
        merge_section(KEY, src, into)
        before, after = json.loads(FIXTURE.read_text()), json.loads(into.read_text())
        self.assertEqual(after.pop(KEY), json.loads(SECTION.read_text()))
        self.assertEqual(after, before)

    def test_a_source_without_the_section_is_refused(self):
        tmp = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, tmp)
        (tmp / "empty.json").write_text("{}")
        with self.assertRaises(SystemExit):
            merge_section(KEY, tmp / "empty.json", FIXTURE)
