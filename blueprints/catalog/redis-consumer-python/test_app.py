import base64
import contextlib
import io
import json
import os
import unittest

import app


def load(name):
    with open(os.path.join(os.path.dirname(__file__), "events", name)) as f:
        return json.load(f)


def record(entry_id, fields):
    data = fields["data"] if "data" in fields else json.dumps(fields, sort_keys=True)
    return {"stream": "payments", "id": entry_id, "timestamp": int(entry_id.split("-")[0]),
            "fields": fields, "data": base64.b64encode(data.encode()).decode()}


def run(event):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        resp = app.handler(event, None)
    return resp, [json.loads(line) for line in out.getvalue().splitlines()]


class ConsumerTest(unittest.TestCase):
    def test_good_batch(self):
        resp, logs = run(load("batch.json"))
        self.assertEqual(resp, {"batchItemFailures": []})
        # The refund has no "data" field: its data is the JSON of all fields.
        self.assertEqual([(l["msg"], l["paymentId"], l["cents"]) for l in logs],
                         [("payment", "pay-501", 1250), ("refund", "pay-377", -400)])

    def test_stops_at_the_first_bad_entry_and_names_the_rest(self):
        resp, logs = run(load("batch-with-bad-record.json"))
        # pay-503 (1796277600456-1) did not run either: named too, so that it
        # is retried with the bad entry, or given up with it, never skipped.
        self.assertEqual(resp, {"batchItemFailures": [{"itemIdentifier": "1796277600456-0"},
                                                      {"itemIdentifier": "1796277600456-1"}]})
        self.assertEqual([l.get("paymentId") for l in logs], ["pay-501", "pay-377", None])

    def test_bad_entries(self):
        good = {"paymentId": "p", "amountCents": 5, "currency": "EUR"}
        for fields in [{"data": "nope"}, {"data": "[]"}, {"data": json.dumps(dict(good, amountCents=0))},
                       {"data": json.dumps(dict(good, amountCents=1.5))},
                       {"data": json.dumps(dict(good, amountCents=True))},
                       {"data": json.dumps(dict(good, currency="XYZ"))},
                       {"data": json.dumps(good), "kind": "chargeback"},
                       {"paymentId": "p", "amountCents": "-5", "currency": "EUR"}]:
            with self.subTest(fields), self.assertRaises(app.BadEntry):
                app.decode(record("1-0", fields))


if __name__ == "__main__":
    unittest.main()
