import copy
import json
import os
import unittest

import app


class Context:
    aws_request_id = "req-1"


def load(name):
    with open(os.path.join(os.path.dirname(__file__), "events", name)) as f:
        return json.load(f)


class WorkerTest(unittest.TestCase):
    def test_invoices_an_order(self):
        out = app.handler(load("order.json"), Context())
        self.assertEqual(out["status"], "invoiced")
        self.assertEqual(out["orderId"], "ord-1001")
        self.assertEqual(out["lines"][0], {"sku": "TEA-GREEN-100G", "quantity": 2, "amount": "9.90"})
        self.assertEqual(out["total"], "21.90")
        json.dumps(out)  # the destination record carries it as JSON

    def test_sample_invalid_order_fails(self):
        with self.assertRaisesRegex(app.InvalidOrder, "quantity must be 1-1000"):
            app.handler(load("invalid-order.json"), Context())

    def test_rejects_bad_orders(self):
        good = load("order.json")
        cases = {
            "not an object": [],
            "no id": {k: v for k, v in good.items() if k != "orderId"},
            "currency": dict(good, currency="DOGE"),
            "no items": dict(good, items=[]),
            "bool quantity": dict(good, items=[dict(good["items"][0], quantity=True)]),
            "price": dict(good, items=[dict(good["items"][0], unitPrice="free")]),
            "negative price": dict(good, items=[dict(good["items"][0], unitPrice="-1")]),
            "nan price": dict(good, items=[dict(good["items"][0], unitPrice="NaN")]),
        }
        for name, order in cases.items():
            with self.subTest(name), self.assertRaises(app.InvalidOrder):
                app.handler(copy.deepcopy(order), Context())


if __name__ == "__main__":
    unittest.main()
