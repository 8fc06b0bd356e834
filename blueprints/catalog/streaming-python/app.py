"""Exports rows as one JSON document through a RESPONSE_STREAM function URL.

GET /?count=N answers {"of": N, "rows": [...]} with status 200 and
content type application/json: a Python function cannot write its response
piece by piece (there is no streamifyResponse for Python), so the URL sends
the returned value, JSON-encoded by the runtime, as it is. It cannot set a
status or headers either: a bad request raises, and the client gets 502.
"""

import math

MAX_ROWS = 10000


class BadRequest(Exception):
    pass


def rows(count):
    """Makes the export, one row at a time; replace with your source."""
    for i in range(1, count + 1):
        yield {"row": i, "of": count, "value": round(math.sin(i), 3)}


def parse_count(query):
    raw = (query or {}).get("count", "10")
    if not (raw.isdigit() and 1 <= int(raw) <= MAX_ROWS):
        raise BadRequest("count must be a whole number from 1 to %d" % MAX_ROWS)
    return int(raw)


def handler(event, context):
    count = parse_count(event.get("queryStringParameters"))
    return {"of": count, "rows": list(rows(count))}
