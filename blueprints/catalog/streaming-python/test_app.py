import json
import os
import unittest

import app


def load(name):
    with open(os.path.join(os.path.dirname(__file__), "events", name)) as f:
        return json.load(f)


class ExportTest(unittest.TestCase):
    def test_rows(self):
        out = app.handler(load("url-get.json"), None)
        self.assertEqual(out["of"], 5)
        self.assertEqual([(r["row"], r["of"]) for r in out["rows"]], [(i, 5) for i in range(1, 6)])
        self.assertEqual(out["rows"][0]["value"], 0.841)
        json.dumps(out)  # the runtime sends it as JSON

    def test_default_count(self):
        event = load("url-get.json")
        del event["queryStringParameters"]
        self.assertEqual(len(app.handler(event, None)["rows"]), 10)

    def test_bad_counts_raise(self):
        for count in ["lots", "0", "10001", "1.5", "-1", ""]:
            event = load("bad-count.json")
            event["queryStringParameters"]["count"] = count
            with self.subTest(count), self.assertRaisesRegex(app.BadRequest, "count must be"):
                app.handler(event, None)


if __name__ == "__main__":
    unittest.main()
