"""Records payments read from a Redis stream.

Each record has the stream key, the entry id ("1718000000000-0"), its
millisecond timestamp, all its fields, and "data": base64 of the entry's
"data" field, or of the JSON object of all fields when there is no "data"
field. Entries come in stream order. The answer names the entries not
handled: {"batchItemFailures": [{"itemIdentifier": "<entry id>"}]}. The
gateway acknowledges the entries before the first named one and delivers it
and the later ones again; when the retries run out it gives up exactly the
entries named and counts the others as handled. So at the first bad entry
the handler stops and names it and every later entry: none of them ran.
"""

import base64
import json

CURRENCIES = {"EUR", "USD", "GBP"}
KINDS = {"payment", "refund"}


class BadEntry(Exception):
    pass


def decode(record):
    try:
        payment = json.loads(base64.b64decode(record.get("data") or ""))
    except ValueError as e:
        raise BadEntry("data is not JSON: %s" % e)
    if not isinstance(payment, dict) or not isinstance(payment.get("paymentId"), str):
        raise BadEntry("an entry needs a paymentId")
    # Redis field values are strings; a JSON "data" field may hold numbers.
    cents = payment.get("amountCents")
    if isinstance(cents, str) and cents.isdigit():
        cents = int(cents)
    if isinstance(cents, bool) or not isinstance(cents, int) or cents <= 0:
        raise BadEntry("amountCents must be a positive whole number, not %r" % (cents,))
    if payment.get("currency") not in CURRENCIES:
        raise BadEntry("currency %r is not one of %s" % (payment.get("currency"), sorted(CURRENCIES)))
    kind = (record.get("fields") or {}).get("kind", "payment")
    if kind not in KINDS:
        raise BadEntry("kind %r is not one of %s" % (kind, sorted(KINDS)))
    return {"id": payment["paymentId"], "kind": kind, "cents": cents, "currency": payment["currency"]}


def process(payment, record):
    """Do the work for one entry; replace with yours (raise to fail the entry)."""
    signed = payment["cents"] if payment["kind"] == "payment" else -payment["cents"]
    print(json.dumps({"msg": payment["kind"], "paymentId": payment["id"], "cents": signed,
                      "currency": payment["currency"], "entry": record["id"]}))


def handler(event, context):
    records = event.get("records") or []
    for i, record in enumerate(records):
        try:
            process(decode(record), record)
        except BadEntry as e:
            print(json.dumps({"msg": "bad entry", "entry": record["id"], "error": str(e)}))
            # This entry and the ones after it did not run.
            return {"batchItemFailures": [{"itemIdentifier": r["id"]} for r in records[i:]]}
    return {"batchItemFailures": []}
