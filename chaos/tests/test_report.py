"""RELIABILITY.md is what the committed chaos/figures.json renders."""

import json
import unittest

from taskfarm_chaos.config import FIGURES, REPORT
from taskfarm_chaos.report import render


class ReportTest(unittest.TestCase):
    def test_committed_report_is_fresh(self):
        figures = json.loads(FIGURES.read_text())
        self.assertEqual(REPORT.read_text(), render(figures),
                         "RELIABILITY.md differs from what chaos/figures.json renders: make chaos-render")

    def test_every_run_is_in_the_report(self):
        figures = json.loads(FIGURES.read_text())
        text = render(figures)
        for run in figures["runs"]:
            self.assertIn(f"| {run['seed']} |", text)


if __name__ == "__main__":
    unittest.main()
