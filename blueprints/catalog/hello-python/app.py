"""Says hello, to a direct invocation or to a function URL request."""

import json
import os

GREETING = os.environ.get("GREETING", "Hello")


def greet(name):
    return "%s, %s!" % (GREETING, name or "world")


def handler(event, context):
    event = event if isinstance(event, dict) else {}
    if "requestContext" in event:
        # A function URL request (payload format 2.0): ?name=… in the query.
        name = (event.get("queryStringParameters") or {}).get("name")
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps({"message": greet(name), "requestId": context.aws_request_id}),
        }
    # A direct invocation: {"name": "…"}.
    return {"message": greet(event.get("name")), "requestId": context.aws_request_id}
