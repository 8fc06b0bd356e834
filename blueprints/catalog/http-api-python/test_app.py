import base64
import json
import os
import unittest

import app


class Context:
    aws_request_id = "req-1"


def load(name):
    with open(os.path.join(os.path.dirname(__file__), "events", name)) as f:
        return json.load(f)


def request(method, path, body=None, cookies=None):
    event = load("health.json")
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    if body is not None:
        event["body"] = body
    if cookies:
        event["cookies"] = cookies
    return app.handler(event, Context())


def body(resp):
    return json.loads(resp["body"])


class APITest(unittest.TestCase):
    def setUp(self):
        app.NOTES.clear()

    def test_health(self):
        resp = app.handler(load("health.json"), Context())
        self.assertEqual(resp["statusCode"], 200)
        self.assertEqual(body(resp), {"status": "healthy"})

    def test_new_visitor_gets_a_cookie(self):
        resp = app.handler(load("create-note.json"), Context())
        self.assertEqual(resp["statusCode"], 201)
        self.assertEqual(body(resp)["note"]["text"], "Buy oat milk")
        [cookie] = resp["cookies"]
        self.assertRegex(cookie, r"^visitor=v-[0-9a-f]{16}; ")
        self.assertIn("HttpOnly", cookie)
        self.assertIn("Secure", cookie)

    def test_notes_belong_to_the_visitor(self):
        ada, bob = ["visitor=v-ada"], ["visitor=v-bob"]
        created = body(request("POST", "/notes", json.dumps({"text": " tea "}), ada))["note"]
        self.assertEqual(created["text"], "tea")
        listed = request("GET", "/notes", cookies=ada)
        self.assertNotIn("cookies", listed)  # known visitors keep their cookie
        self.assertEqual(body(listed), {"visitor": "v-ada", "notes": [created]})
        self.assertEqual(body(request("GET", "/notes", cookies=bob))["notes"], [])
        got = request("GET", "/notes/" + created["id"], cookies=ada)
        self.assertEqual(body(got)["note"], created)
        self.assertEqual(request("GET", "/notes/" + created["id"], cookies=bob)["statusCode"], 404)

    def test_delete(self):
        ada = ["visitor=v-ada"]
        note = body(request("POST", "/notes", json.dumps({"text": "x"}), ada))["note"]
        resp = request("DELETE", "/notes/" + note["id"], cookies=ada)
        self.assertEqual(resp["statusCode"], 204)
        self.assertNotIn("body", resp)
        self.assertEqual(request("DELETE", "/notes/" + note["id"], cookies=ada)["statusCode"], 404)

    def test_base64_body(self):
        event = load("create-note.json")
        event["body"] = base64.b64encode(json.dumps({"text": "héllo"}).encode()).decode()
        event["isBase64Encoded"] = True
        self.assertEqual(body(app.handler(event, Context()))["note"]["text"], "héllo")

    def test_bad_requests(self):
        resp = app.handler(load("invalid-json.json"), Context())
        self.assertEqual((resp["statusCode"], body(resp)["error"]), (400, "invalid JSON body"))
        self.assertEqual(request("POST", "/notes", json.dumps({"text": ""}))["statusCode"], 400)
        self.assertEqual(request("POST", "/notes", json.dumps(["text"]))["statusCode"], 400)
        self.assertEqual(request("POST", "/notes", json.dumps({"text": "x" * 501}))["statusCode"], 400)

    def test_unknown_route_and_method(self):
        resp = app.handler(load("unknown-route.json"), Context())
        self.assertEqual((resp["statusCode"], body(resp)["error"]), (404, "no route for GET /nope"))
        resp = request("PUT", "/notes")
        self.assertEqual(resp["statusCode"], 405)
        self.assertEqual(resp["headers"]["allow"], "GET, POST")


if __name__ == "__main__":
    unittest.main()
