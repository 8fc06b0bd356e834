"""Invoices an order, run asynchronously.

The returned invoice is what the on_success destination receives as
responsePayload. Raising fails the invocation: Nimbus retries it (max_retries)
and then sends it to on_failure and the dead-letter destination. Raise only
for errors a retry cannot fix if you want them there fast (see README).
"""

import json
from decimal import Decimal, InvalidOperation

CURRENCIES = {"EUR", "USD", "GBP"}
MAX_QUANTITY = 1000


class InvalidOrder(Exception):
    """The order can never be invoiced; retries will not help."""


def money(value, where):
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise InvalidOrder("%s: %r is not an amount" % (where, value))
    if not amount.is_finite() or amount < 0:
        raise InvalidOrder("%s: %r is not an amount" % (where, value))
    return amount


def invoice(order):
    if not isinstance(order, dict):
        raise InvalidOrder("the event is not an order object")
    order_id = order.get("orderId")
    if not isinstance(order_id, str) or not order_id:
        raise InvalidOrder("orderId is missing")
    currency = order.get("currency")
    if currency not in CURRENCIES:
        raise InvalidOrder("%s: currency %r is not one of %s" % (order_id, currency, sorted(CURRENCIES)))
    items = order.get("items")
    if not isinstance(items, list) or not items:
        raise InvalidOrder("%s: no items" % order_id)
    lines, total = [], Decimal("0")
    for i, item in enumerate(items):
        where = "%s item %d" % (order_id, i)
        qty = item.get("quantity") if isinstance(item, dict) else None
        if not isinstance(qty, int) or isinstance(qty, bool) or not 0 < qty <= MAX_QUANTITY:
            raise InvalidOrder("%s: quantity must be 1-%d" % (where, MAX_QUANTITY))
        price = money(item.get("unitPrice"), where)
        amount = (price * qty).quantize(Decimal("0.01"))
        lines.append({"sku": item.get("sku"), "quantity": qty, "amount": str(amount)})
        total += amount
    return {
        "orderId": order_id,
        "customer": order.get("customer"),
        "status": "invoiced",
        "currency": currency,
        "lines": lines,
        "total": str(total),
    }


def handler(event, context):
    result = invoice(event)
    # One structured log line per job; the request id ties it to the
    # destination record.
    print(json.dumps({"msg": "invoiced", "orderId": result["orderId"], "total": result["total"],
                      "requestId": context.aws_request_id}))
    return result
