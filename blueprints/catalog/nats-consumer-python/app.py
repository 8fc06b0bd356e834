"""Checks sensor readings delivered by a NATS JetStream event source.

Each record has the stream, subject, stream sequence, timestamp, headers
(every value of every header) and the payload, base64. The answer names the
messages that failed by sequence: {"batchItemFailures": [{"itemIdentifier":
"1043"}]}. The handler goes on after a failure: on a work-queue stream only
the failed messages come again; on a limits stream the gateway retries from
the first failed one, so later messages may be seen twice (keep the work
idempotent).
"""

import base64
import json

ALERT_CELSIUS = 35.0


class BadReading(Exception):
    pass


def decode(record):
    try:
        reading = json.loads(base64.b64decode(record.get("data") or ""))
    except ValueError as e:
        raise BadReading("payload is not JSON: %s" % e)
    if not isinstance(reading, dict) or not isinstance(reading.get("sensor"), str):
        raise BadReading("a reading needs a sensor")
    celsius = reading.get("celsius")
    if isinstance(celsius, bool) or not isinstance(celsius, (int, float)) or celsius != celsius:
        raise BadReading("celsius is not a number: %r" % (celsius,))
    return reading


def process(reading, record):
    """Do the work for one reading; replace with yours (raise to fail the message)."""
    level = "alert" if reading["celsius"] >= ALERT_CELSIUS else "ok"
    msg_id = (record.get("headers") or {}).get("Nats-Msg-Id", [None])[0]
    print(json.dumps({"msg": level, "sensor": reading["sensor"], "celsius": reading["celsius"],
                      "subject": record["subject"], "sequence": record["sequence"], "msgId": msg_id}))
    return level


def handler(event, context):
    failures = []
    for record in event.get("records") or []:
        try:
            process(decode(record), record)
        except BadReading as e:
            print(json.dumps({"msg": "bad reading", "sequence": record["sequence"], "error": str(e)}))
            failures.append({"itemIdentifier": str(record["sequence"])})
    return {"batchItemFailures": failures}
