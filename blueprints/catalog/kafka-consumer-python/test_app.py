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


def record(offset, value, partition=0):
    return {"topic": "orders", "partition": partition, "offset": offset, "timestamp": 1796277600000,
            "timestampType": "CREATE_TIME", "key": base64.b64encode(b"k").decode(),
            "value": base64.b64encode(value.encode()).decode(), "headers": []}


def run(event):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        resp = app.handler(event, None)
    return resp, [json.loads(line) for line in out.getvalue().splitlines()]


class ConsumerTest(unittest.TestCase):
    def test_good_batch(self):
        resp, logs = run(load("batch.json"))
        self.assertEqual(resp, {"batchItemFailures": []})
        self.assertEqual([(l["orderId"], l["source"]) for l in logs], [("ord-2001", "web"), ("ord-2002", "app")])

    def test_bad_record_stops_the_partition_and_names_the_rest(self):
        resp, logs = run(load("batch-with-bad-record.json"))
        # 4713 did not run either: named too, so that it is retried with
        # 4712, or given up with it, never skipped.
        self.assertEqual(resp, {"batchItemFailures": [{"itemIdentifier": "4712"}, {"itemIdentifier": "4713"}]})
        self.assertEqual([l.get("orderId") for l in logs if l["msg"] == "order"], ["ord-2001", "ord-2002"])

    def test_partitions_fail_independently(self):
        event = {"eventSource": "SelfManagedKafka", "records": {
            "orders-0": [record(7, '{"orderId":"a","amount":1}'), record(8, "[]")],
            "orders-1": [record(3, '{"orderId":"b","amount":0}', 1), record(4, '{"orderId":"c","amount":2}', 1)],
        }}
        resp, _ = run(event)
        self.assertEqual(resp, {"batchItemFailures": [{"itemIdentifier": "8"}, {"itemIdentifier": "3"}, {"itemIdentifier": "4"}]})

    def test_empty_event(self):
        self.assertEqual(run({"eventSource": "SelfManagedKafka", "records": {}})[0], {"batchItemFailures": []})

    def test_signed_header_bytes(self):
        rec = record(1, "{}")
        rec["headers"] = [{"who": [-61, -87]}]  # "é" in UTF-8
        self.assertEqual(app.header_values(rec), {"who": "é"})

    def test_bad_values(self):
        for value in ["", "nope", "[1]", '{"orderId":"a","amount":NaN}', '{"orderId":"a"}', '{"orderId":"a","amount":true}', '{"amount":1}']:
            with self.subTest(value), self.assertRaises(app.BadRecord):
                app.decode_order(record(1, value))


if __name__ == "__main__":
    unittest.main()
