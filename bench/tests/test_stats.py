"""The statistics of the benchmark report (bench/taskfarm_bench/stats.py)."""

import unittest

from taskfarm_bench.stats import (
    e_pairs,
    floor3,
    median,
    medians,
    near,
    paired,
    paired_ratio,
    paired_vs_wrk,
    spread,
    storm_ratio,
)


def row(scenario, client, rep, db="postgresql", workers=1, **figures):
    return dict(scenario=scenario, db=db, workers=workers, client=client, rep=rep, **figures)


class Median(unittest.TestCase):
    def test_ignores_missing_values(self):
        self.assertEqual(median([3, None, 1, 2]), 2)

    def test_even_count_is_the_mean_of_the_middle_two(self):
        self.assertEqual(median([4, 1, 3, 2]), 2.5)

    def test_none_without_values(self):
        self.assertIsNone(median([]))
        self.assertIsNone(median([None, None]))


class Medians(unittest.TestCase):
    def setUp(self):
        self.rows = [
            row("c-postgresql", "c", 1, tasks_per_s=10.0, duplicates=0, wall_s=5.0),
            row("c-postgresql", "c", 2, tasks_per_s=30.0, duplicates=2),
            row("c-postgresql", "c", 3, tasks_per_s=20.0, duplicates=1),
            row("c-postgresql", "python", 1, tasks_per_s=7.0),
            row("c-postgresql", "c", 1, workers=2, tasks_per_s=99.0),
        ]
        self.med = medians(self.rows, ["tasks_per_s", "duplicates", "wall_s", "peak_rss_kb"])

    def test_one_row_per_scenario_db_workers_client(self):
        self.assertEqual(sorted(self.med), [("c-postgresql", "postgresql", 1, "c"),
                                            ("c-postgresql", "postgresql", 1, "python"),
                                            ("c-postgresql", "postgresql", 2, "c")])

    def test_median_of_each_figure_and_the_count(self):
        m = self.med[("c-postgresql", "postgresql", 1, "c")]
        self.assertEqual(m["tasks_per_s"], 20.0)
        self.assertEqual(m["reps"], 3)
        self.assertEqual(m["rep"], "median")

    def test_duplicates_take_the_maximum(self):
        self.assertEqual(self.med[("c-postgresql", "postgresql", 1, "c")]["duplicates"], 2)

    def test_a_figure_of_some_repetitions_only(self):
        self.assertEqual(self.med[("c-postgresql", "postgresql", 1, "c")]["wall_s"], 5.0)

    def test_a_figure_of_no_repetition_is_left_out(self):
        self.assertNotIn("peak_rss_kb", self.med[("c-postgresql", "postgresql", 1, "c")])
        self.assertNotIn("duplicates", self.med[("c-postgresql", "postgresql", 1, "python")])


class Paired(unittest.TestCase):
    def test_spread(self):
        self.assertEqual(spread([2.0, 1.0, 4.0]), (2.0, 1.0, 4.0))
        self.assertIsNone(spread([]))

    def test_ratio_within_each_repetition(self):
        # The medians would give 30 / 15 = 2; the repetitions' ratios are 4, 1 and 2.
        rows = [row("c-sqlite", "c", 1, db="sqlite", tasks_per_s=40.0),
                row("c-sqlite", "python", 1, db="sqlite", tasks_per_s=10.0),
                row("c-sqlite", "c", 2, db="sqlite", tasks_per_s=15.0),
                row("c-sqlite", "python", 2, db="sqlite", tasks_per_s=15.0),
                row("c-sqlite", "c", 3, db="sqlite", tasks_per_s=30.0),
                row("c-sqlite", "python", 3, db="sqlite", tasks_per_s=15.0)]
        self.assertEqual(paired_ratio(rows, "c-sqlite", "sqlite", 1, "tasks_per_s"), (2.0, 1.0, 4.0))

    def test_a_repetition_without_its_partner_is_left_out(self):
        rows = [row("s", "c", 1, x=6.0), row("s", "python", 1, x=3.0), row("s", "c", 2, x=100.0)]
        self.assertEqual(paired(rows, lambda r: True, "x", "c", "python"), (2.0, 2.0, 2.0))

    def test_a_zero_or_missing_figure_is_left_out(self):
        rows = [row("s", "c", 1, x=6.0), row("s", "python", 1, x=0.0),
                row("s", "c", 2, x=8.0), row("s", "python", 2),
                row("s", "c", 3, x=9.0), row("s", "python", 3, x=3.0)]
        self.assertEqual(paired(rows, lambda r: True, "x", "c", "python"), (3.0, 3.0, 3.0))

    def test_none_without_any_pair(self):
        self.assertIsNone(paired([row("s", "c", 1, x=1.0)], lambda r: True, "x", "c", "python"))

    def test_only_the_point_asked_for(self):
        rows = [row("c-postgresql", "c", 1, workers=1, tasks_per_s=2.0),
                row("c-postgresql", "python", 1, workers=1, tasks_per_s=1.0),
                row("c-postgresql", "c", 1, workers=2, tasks_per_s=9.0),
                row("c-postgresql", "python", 1, workers=2, tasks_per_s=1.0)]
        self.assertEqual(paired_ratio(rows, "c-postgresql", "postgresql", 2, "tasks_per_s")[0], 9.0)

    def test_against_wrk_pairs_scenario_a_with_b_put(self):
        rows = [row("a-canned", "c", 1, db="canned", requests_per_s=800.0),
                row("a-canned", "python", 1, db="canned", requests_per_s=100.0),
                row("b-wrk", "wrk-PUT", 1, db="canned", requests_per_s=1000.0),
                row("b-wrk", "wrk-GET", 1, db="canned", requests_per_s=1.0),
                row("a-canned", "c", 2, db="canned", requests_per_s=900.0),
                row("b-wrk", "wrk-PUT", 2, db="canned", requests_per_s=1000.0)]
        med, low, high = paired_vs_wrk(rows)
        self.assertAlmostEqual(med, 0.85)
        self.assertEqual((low, high), (0.8, 0.9))
        self.assertEqual(paired_vs_wrk(rows, "python"), (0.1, 0.1, 0.1))

    def test_storm_configurations(self):
        rows = [row("d-storm", "python-password", 1, workers=64, all_hold_s=90.0),
                row("d-storm", "c-token", 1, workers=64, all_hold_s=5.0),
                row("d-storm", "c-password", 1, workers=64, all_hold_s=75.0),
                row("d-storm", "python-password", 1, workers=4, all_hold_s=1.0)]
        self.assertEqual(storm_ratio(rows, 64, "all_hold_s", "python-password", "c-token"), (18.0, 18.0, 18.0))
        self.assertEqual(storm_ratio(rows, 64, "all_hold_s", "c-password", "c-token")[0], 15.0)
        self.assertIsNone(storm_ratio(rows, 4, "all_hold_s", "python-password", "c-token"))

    def test_coalesced_against_python(self):
        rows = [row("e-stress", "c-coalesced", 1, workers=2, tasks_per_s=50.0),
                row("e-stress", "python", 1, workers=2, tasks_per_s=10.0),
                row("e-stress", "c-coalesced", 2, workers=2, tasks_per_s=40.0),
                row("e-stress", "python", 2, workers=2, tasks_per_s=10.0),
                row("e-tight", "c-coalesced", 1, workers=2, tasks_per_s=1.0)]
        self.assertEqual(e_pairs(rows, "e-stress", 2), (4.5, 4.0, 5.0))
        self.assertIsNone(e_pairs(rows, "e-tight", 2))


class Thresholds(unittest.TestCase):
    def test_floor3_rounds_down(self):
        self.assertEqual(floor3(0.7996), "0.799")
        self.assertEqual(floor3(16.0929), "16.092")

    def test_floor3_keeps_a_ratio_that_is_exactly_its_target(self):
        self.assertEqual(floor3(0.8), "0.800")
        self.assertEqual(floor3(1.15), "1.150")

    def test_near_is_within_five_percent_either_way(self):
        self.assertTrue(near(0.79, 0.8))
        self.assertTrue(near(0.83, 0.8))
        self.assertFalse(near(0.75, 0.8))
        self.assertFalse(near(0.85, 0.8))
        self.assertFalse(near(None, 0.8))


if __name__ == "__main__":
    unittest.main()
