"""A small JSON API for a function URL (payload format 2.0).

Routes:
    GET    /health        200 {"status": "healthy"}
    GET    /notes         200 {"visitor": …, "notes": [...]}
    POST   /notes         201 {"note": {...}}   body: {"text": "…"}
    GET    /notes/{id}    200 {"note": {...}} or 404
    DELETE /notes/{id}    204 or 404

Each browser gets a "visitor" cookie; notes belong to the visitor. The notes
live in this environment's memory, so they are lost when it stops and are not
shared between environments: replace NOTES with your database.
"""

import base64
import json
import re
import secrets
import time

MAX_TEXT = 500
COOKIE = "visitor"
COOKIE_ATTRS = "Path=/; Max-Age=31536000; HttpOnly; Secure; SameSite=None"

# visitor id -> {note id -> note}
NOTES = {}


class HTTPError(Exception):
    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def response(status, body=None, headers=None, cookies=None):
    out = {"statusCode": status, "headers": {}}
    if body is not None:
        out["headers"]["content-type"] = "application/json"
        out["body"] = json.dumps(body)
    out["headers"].update(headers or {})
    if cookies:
        out["cookies"] = cookies
    return out


def read_cookies(event):
    jar = {}
    for c in event.get("cookies") or []:
        name, _, value = c.partition("=")
        jar[name.strip()] = value.strip()
    return jar


def read_json(event):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    try:
        return json.loads(body)
    except ValueError:
        raise HTTPError(400, "invalid JSON body")


def list_notes(visitor, event):
    notes = sorted(NOTES.get(visitor, {}).values(), key=lambda n: n["createdAt"])
    return 200, {"visitor": visitor, "notes": notes}


def create_note(visitor, event):
    data = read_json(event)
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise HTTPError(400, 'body needs a non-empty "text"')
    if len(text) > MAX_TEXT:
        raise HTTPError(400, "text is longer than %d characters" % MAX_TEXT)
    note = {"id": secrets.token_hex(6), "text": text.strip(), "createdAt": int(time.time() * 1000)}
    NOTES.setdefault(visitor, {})[note["id"]] = note
    return 201, {"note": note}


def find_note(visitor, note_id):
    note = NOTES.get(visitor, {}).get(note_id)
    if note is None:
        raise HTTPError(404, "no note %s" % note_id)
    return note


def get_note(visitor, event, note_id):
    return 200, {"note": find_note(visitor, note_id)}


def delete_note(visitor, event, note_id):
    find_note(visitor, note_id)
    del NOTES[visitor][note_id]
    return 204, None


def health(visitor, event):
    return 200, {"status": "healthy"}


# (path pattern, {method: handler}); groups of the pattern are passed on.
ROUTES = [
    (re.compile(r"^/health$"), {"GET": health}),
    (re.compile(r"^/notes$"), {"GET": list_notes, "POST": create_note}),
    (re.compile(r"^/notes/([0-9a-f]{12})$"), {"GET": get_note, "DELETE": delete_note}),
]


def route(method, path):
    for pattern, methods in ROUTES:
        m = pattern.match(path)
        if not m:
            continue
        fn = methods.get(method)
        if fn is None:
            raise HTTPError(405, "method %s not allowed on %s" % (method, path),
                            {"allow": ", ".join(sorted(methods))})
        return fn, m.groups()
    raise HTTPError(404, "no route for %s %s" % (method, path))


def handler(event, context):
    http = event["requestContext"]["http"]
    method, path = http["method"], event.get("rawPath") or http["path"]
    visitor = read_cookies(event).get(COOKIE)
    cookies = None
    if not visitor:
        visitor = "v-" + secrets.token_hex(8)
        cookies = ["%s=%s; %s" % (COOKIE, visitor, COOKIE_ATTRS)]
    try:
        fn, args = route(method, path)
        status, body = fn(visitor, event, *args)
        return response(status, body, cookies=cookies)
    except HTTPError as e:
        return response(e.status, {"error": e.message}, headers=e.headers, cookies=cookies)
