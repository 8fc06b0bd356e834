"""Handlers for the python bootstrap tests."""

import logging
import os

calls = 0


def echo(event, context):
    global calls
    calls += 1
    print("echo call", calls)
    return {"event": event, "calls": calls, "pid": os.getpid()}


def none(event, context):
    return None


class CustomError(Exception):
    pass


def fail(event, context):
    helper()


def helper():
    raise CustomError("custom failure")


def context_info(event, context):
    cc = context.client_context
    return {
        "aws_request_id": context.aws_request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "client_installation_id": cc.client.installation_id if cc and cc.client else None,
        "client_app_title": cc.client.app_title if cc and cc.client else None,
        "client_custom": cc.custom if cc else None,
        "client_env": cc.env if cc else None,
        "cognito_identity_id": context.identity.cognito_identity_id,
        "cognito_identity_pool_id": context.identity.cognito_identity_pool_id,
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
    }


def log(event, context):
    print("printed line")
    logging.getLogger().warning("warned %s", "here")
    logging.getLogger().info("info is below the default level")
    return "logged"


def unserializable(event, context):
    return {"value": object()}


def raw_bytes(event, context):
    return b"\x00raw"


def layered(event, context):
    import layerlib

    return layerlib.where()
