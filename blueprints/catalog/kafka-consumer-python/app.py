"""Consumes order records from Kafka (Lambda's SelfManagedKafka event).

The event groups records by "<topic>-<partition>"; keys and values are
base64, header values arrays of (signed) bytes. The answer names the records
not handled: {"batchItemFailures": [{"itemIdentifier": "<offset>"}]}. The
gateway commits the partition up to the first named record and delivers it
and the ones after it again; when the retries run out it gives up exactly
the records named and counts the others as handled. So at a partition's
first bad record the handler stops and names it and every later record of
the partition: none of them ran.
"""

import base64
import json


class BadRecord(Exception):
    pass


def header_values(record):
    """Kafka headers as {name: str}; values arrive as arrays of signed bytes."""
    out = {}
    for header in record.get("headers") or []:
        for name, value in header.items():
            out[name] = bytes(b & 0xFF for b in value).decode("utf-8", "replace")
    return out


def decode_order(record):
    try:
        order = json.loads(base64.b64decode(record.get("value") or ""))
    except ValueError as e:
        raise BadRecord("value is not JSON: %s" % e)
    if not isinstance(order, dict):
        raise BadRecord("value is not an object")
    amount = order.get("amount")
    if not isinstance(order.get("orderId"), str) or isinstance(amount, bool) \
            or not isinstance(amount, (int, float)) or not amount > 0:
        raise BadRecord("an order needs an orderId and a positive amount")
    return order


def process(order, record):
    """Do the work for one order; replace with yours (raise to fail the record)."""
    print(json.dumps({"msg": "order", "orderId": order["orderId"], "amount": order["amount"],
                      "partition": record["partition"], "offset": record["offset"],
                      "source": header_values(record).get("source")}))


def handler(event, context):
    failures = []
    for key in sorted(event.get("records") or {}):
        batch = event["records"][key]
        for i, record in enumerate(batch):
            try:
                process(decode_order(record), record)
            except BadRecord as e:
                print(json.dumps({"msg": "bad record", "partition": key, "offset": record["offset"], "error": str(e)}))
                # This record and the rest of the partition did not run.
                failures.extend({"itemIdentifier": str(r["offset"])} for r in batch[i:])
                break
    return {"batchItemFailures": failures}
