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


def record(seq, payload):
    return {"stream": "TELEMETRY", "subject": "telemetry.x", "sequence": seq,
            "timestamp": "2026-12-03T06:00:00Z", "headers": {},
            "data": base64.b64encode(payload.encode()).decode()}


def run(event):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        resp = app.handler(event, None)
    return resp, [json.loads(line) for line in out.getvalue().splitlines()]


class ConsumerTest(unittest.TestCase):
    def test_good_batch(self):
        resp, logs = run(load("batch.json"))
        self.assertEqual(resp, {"batchItemFailures": []})
        self.assertEqual([(l["msg"], l["sensor"], l["msgId"]) for l in logs],
                         [("ok", "t-01", "t-01-1796277600"), ("alert", "t-07", None)])

    def test_bad_message_is_reported_and_the_rest_handled(self):
        resp, logs = run(load("batch-with-bad-record.json"))
        self.assertEqual(resp, {"batchItemFailures": [{"itemIdentifier": "1043"}]})
        self.assertEqual([l["sequence"] for l in logs if l["msg"] != "bad reading"], [1042, 1044])

    def test_bad_payloads(self):
        for payload in ["", "x", "[]", '{"celsius": 1}', '{"sensor": "a"}', '{"sensor": "a", "celsius": true}',
                        '{"sensor": "a", "celsius": NaN}', '{"sensor": "a", "celsius": "20"}']:
            with self.subTest(payload), self.assertRaises(app.BadReading):
                app.decode(record(1, payload))

    def test_empty_batch(self):
        self.assertEqual(run({"eventSource": "nimbus:nats", "records": []})[0], {"batchItemFailures": []})


if __name__ == "__main__":
    unittest.main()
