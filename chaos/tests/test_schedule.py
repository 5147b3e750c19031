"""The fault schedule: the same seed gives the same faults; another seed,
others; every kind's parameters within their ranges."""

import unittest

from taskfarm_chaos.schedule import KINDS, make_schedule


class ScheduleTest(unittest.TestCase):
    def test_same_seed_same_faults(self):
        self.assertEqual(make_schedule(7, 300, 8, 4.0, 2.5), make_schedule(7, 300, 8, 4.0, 2.5))
        self.assertNotEqual(make_schedule(7, 300, 8, 4.0, 2.5), make_schedule(8, 300, 8, 4.0, 2.5))

    def test_ranges(self):
        faults = make_schedule(3, 3000, 8, 4.0, 2.5)
        self.assertEqual({f["kind"] for f in faults}, set(KINDS))
        times = [f["at"] for f in faults]
        self.assertEqual(times, sorted(times))
        self.assertTrue(all(0 < t < 3000 for t in times))
        for f in faults:
            if "slot" in f:
                self.assertIn(f["slot"], range(8))
            if f["kind"] == "stop-short":
                self.assertLess(f["seconds"], 4.0)
            if f["kind"] == "stop-long":
                self.assertGreater(f["seconds"], 4.0)
            if f["kind"] == "skew":
                self.assertIn(abs(f["offset"]), (2.0, 12.0))


if __name__ == "__main__":
    unittest.main()
