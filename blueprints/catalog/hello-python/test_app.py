import json
import os
import unittest

import app


class Context:
    aws_request_id = "req-1"
    function_name = "hello"


def load(name):
    with open(os.path.join(os.path.dirname(__file__), "events", name)) as f:
        return json.load(f)


class HelloTest(unittest.TestCase):
    def test_direct_invocation(self):
        out = app.handler(load("direct.json"), Context())
        self.assertEqual(out, {"message": "Hello, Ada!", "requestId": "req-1"})

    def test_direct_invocation_without_name(self):
        self.assertEqual(app.handler({}, Context())["message"], "Hello, world!")

    def test_function_url_request(self):
        out = app.handler(load("url-get.json"), Context())
        self.assertEqual(out["statusCode"], 200)
        self.assertEqual(out["headers"]["content-type"], "application/json")
        self.assertEqual(json.loads(out["body"])["message"], "Hello, Grace!")

    def test_function_url_request_without_query(self):
        event = load("url-get.json")
        del event["queryStringParameters"]
        out = app.handler(event, Context())
        self.assertEqual(json.loads(out["body"])["message"], "Hello, world!")


if __name__ == "__main__":
    unittest.main()
