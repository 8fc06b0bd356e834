"""A Nimbus function for the python3.12 runtime."""

import os


def handler(event, context):
    name = (event or {}).get("name") or "world"
    return {
        "message": "%s, %s" % (os.environ.get("GREETING", "hello"), name),
        "function": context.function_name,
        "request_id": context.aws_request_id,
    }
