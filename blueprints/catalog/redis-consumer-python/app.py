"""Records payments read from a Redis stream.

Each record has the stream key, the entry id ("1718000000000-0"), its
millisecond timestamp, all its fields, and "data": base64 of the entry's
"data" field, or of the JSON object of all fields when there is no "data"
field. Entries come in stream order. The answer names the first entry that
failed: {"batchItemFailures": [{"itemIdentifier": "<entry id>"}]}; that entry
and every later one in the batch come again, so the handler stops there.
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
    for record in event.get("records") or []:
        try:
            process(decode(record), record)
        except BadEntry as e:
            print(json.dumps({"msg": "bad entry", "entry": record["id"], "error": str(e)}))
            # This entry and the ones after it come again.
            return {"batchItemFailures": [{"itemIdentifier": record["id"]}]}
    return {"batchItemFailures": []}
