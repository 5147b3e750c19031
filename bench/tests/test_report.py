"""The report's templates (bench/report/*.md) and their rendering."""

import json
import re
import unittest
from pathlib import Path

from taskfarm_bench import template
from taskfarm_bench.paths import TEMPLATES
from taskfarm_bench.report import render
from taskfarm_bench.results import load_figures

# The figures of a `make bench-smoke` run (build/bench-smoke/bench/figures.json).
FIXTURE = Path(__file__).resolve().parent / "smoke_figures.json"


class Unwrap(unittest.TestCase):
    def test_a_wrapped_paragraph_becomes_one_line(self):
        self.assertEqual(template.unwrap("one\ntwo\n  three\n\nfour"), "one two three\n\nfour")

    def test_table_rows_headings_images_stay_lines(self):
        text = "# Title\nnext\n\n| a |\n| b |\n${rows}\n\n![plot](x.svg)\nafter"
        self.assertEqual(template.unwrap(text), text)

    def test_list_items_join_their_indented_lines(self):
        self.assertEqual(template.unwrap("- one\n  more\n- two\n  + three"), "- one more\n- two + three")

    def test_code_blocks_are_left_alone(self):
        text = "```sql\nSELECT 1\nFROM t;\n```"
        self.assertEqual(template.unwrap(text), text)


class Templates(unittest.TestCase):
    def test_every_template_has_parts_and_no_stray_dollar(self):
        names = sorted(p.stem for p in TEMPLATES.glob("*.md"))
        self.assertIn("header", names)
        for name in names:
            parts = template.parts(name)
            self.assertTrue(parts, name)
            for part, t in parts.items():
                self.assertTrue(t.template.strip(), f"{name}/{part} is empty")
                # Every $ starts a ${figure}: string.Template would fail on a stray one.
                self.assertEqual(re.findall(r"\$(?!\{\w+\})", t.template), [], f"{name}/{part}")

    def test_a_missing_figure_is_an_error(self):
        with self.assertRaises(KeyError):
            template.fill("targets", "cpu", ours="1")


class CommittedReport(unittest.TestCase):
    """BENCHMARKS.md is what bench/figures.json renders (`make bench-render`),
    as the committed header is what cbindgen makes: a change of the prose or
    of the rendering must be rendered again and committed with its figures."""

    def test_benchmarks_md_is_rendered_from_the_committed_figures(self):
        root = Path(__file__).resolve().parents[2]
        text, _ = render(load_figures(root / "bench" / "figures.json"))
        committed = (root / "BENCHMARKS.md").read_text()
        self.assertTrue(text == committed,
                        "BENCHMARKS.md is not what bench/figures.json renders: run `make bench-render`")


class Render(unittest.TestCase):
    def setUp(self):
        self.text, self.targets = render(load_figures(FIXTURE))

    def test_every_section(self):
        headings = re.findall(r"^## (.*)$", self.text, re.M)
        self.assertEqual([h.split(".")[0].split(":")[0] for h in headings],
                         ["Targets", "a", "b", "c", "d", "e", "Library size", "Profile", "How it is measured"])

    def test_nothing_left_unfilled_and_no_empty_paragraph(self):
        self.assertNotIn("${", self.text)
        self.assertNotIn("\n\n\n", self.text)
        self.assertTrue(self.text.endswith(".\n\n"))

    def test_every_target_with_a_verdict(self):
        table = self.text.split("## Targets\n\n")[1].split("\n\n")[0].splitlines()[2:]
        cells = [line.strip("| ").split(" | ") for line in table]
        self.assertEqual([c[0] for c in cells], [t[0] for t in self.targets])
        self.assertEqual(len(cells), 8)
        self.assertTrue(all(len(c) == 3 and c[2] for c in cells), cells)

    def test_the_storm_is_reported_from_its_rows(self):
        storm = [r for r in json.loads(FIXTURE.read_text())["rows"] if r["scenario"] == "d-storm"]
        self.assertTrue(storm)
        self.assertIn(f"## d. Start storm: {storm[0]['workers']} workers starting at once", self.text)
