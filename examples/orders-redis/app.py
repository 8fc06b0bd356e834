"""Handles batches from the Redis stream "orders" (and an hourly tick)."""

import base64
import json


def handler(event, context):
    if event.get("detail-type") == "Scheduled Event":
        print("hourly tick at", event.get("time"))
        return {}
    failures = []
    for record in event.get("records", []):
        order = json.loads(base64.b64decode(record["data"]))
        if "id" not in order:
            # Only this entry is retried; the rest of the batch is done.
            failures.append({"itemIdentifier": record["id"]})
            continue
        print("order", order["id"], "from", record["stream"], record["id"])
    return {"batchItemFailures": failures}
