import contextlib
import io
import json
import os
import unittest

import app


def load(name):
    with open(os.path.join(os.path.dirname(__file__), "events", name)) as f:
        return json.load(f)


def run(event):
    with contextlib.redirect_stdout(io.StringIO()):
        return app.handler(event, None)


class ScheduledTest(unittest.TestCase):
    def test_report_covers_the_day_before_the_tick(self):
        out = run(load("tick.json"))
        self.assertEqual(out["window"], {"start": "2026-12-02T03:00:00Z", "end": "2026-12-03T03:00:00Z"})
        self.assertEqual(out["rule"], "nightly")
        self.assertEqual(out["eventId"], "3f5a1c2e-8b7d-4e2a-9c1f-6d3b2a1e0f9c")

    def test_window_crosses_a_month(self):
        event = dict(load("tick.json"), time="2027-03-01T00:00:00Z")
        self.assertEqual(run(event)["window"]["start"], "2027-02-28T00:00:00Z")

    def test_rejects_other_events(self):
        for event in [load("not-a-schedule.json"), [], dict(load("tick.json"), time="yesterday"),
                      dict(load("tick.json"), time=None)]:
            with self.subTest(event), self.assertRaises(app.NotAScheduledEvent):
                run(event)


if __name__ == "__main__":
    unittest.main()
