#!/usr/bin/env python3
"""Nimbus bootstrap for the python3.x managed runtimes.

A Lambda Runtime API client (API version 2018-06-01) using only the standard
library, for Python 3.8 and newer. It imports the handler named by _HANDLER
("module.function"; the module may be a dotted or slash-separated path) from
LAMBDA_TASK_ROOT, then PYTHONPATH, and serves invocations one at a time:
GET next, call handler(event, context), POST the JSON result or Lambda's error
JSON. Init failures go to /runtime/init/error and the process exits. Any
unexpected status from the Runtime API is fatal: Lambda treats the environment
as broken, so do we.
"""

import decimal
import http.client
import importlib
import json
import logging
import os
import sys
import time
import traceback
import urllib.parse

# print() must reach the log as it happens, interleaved with our own lines:
# without -u (or PYTHONUNBUFFERED) stdout is block-buffered, so start over with it.
if not getattr(sys.stdout, "write_through", True):
    os.execv(sys.executable, [sys.executable, "-u"] + sys.argv)

API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
USER_AGENT = "nimbus-python/%d.%d.%d" % sys.version_info[:3]
BOOTSTRAP_FILE = os.path.abspath(__file__)

# The request id of the invocation in progress, for log lines.
_request_id = ""


class FaultError(Exception):
    """An error the runtime reports with a Lambda-defined errorType."""

    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class RuntimeAPIError(Exception):
    """The Runtime API answered with an unexpected status or not at all."""


# --- Runtime API client ---------------------------------------------------


class RuntimeClient:
    def __init__(self, address):
        self.address = address
        self.conn = None

    def _request(self, method, path, body=None, headers=None, want=202):
        hdrs = {"User-Agent": USER_AGENT}
        hdrs.update(headers or {})
        # One kept-alive connection (a new one per request costs ~4x per
        # invocation). When a reused connection turns out closed before any
        # answer came back, the request goes once more on a fresh one.
        for attempt in (1, 2):
            reused = self.conn is not None
            if not reused:
                self.conn = http.client.HTTPConnection(self.address)
            try:
                self.conn.request(method, API_PREFIX + path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (OSError, http.client.HTTPException) as e:
                self.conn.close()
                self.conn = None
                stale = isinstance(e, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected))
                if not (reused and stale and attempt == 1):
                    raise RuntimeAPIError("%s %s: %s" % (method, path, e)) from e
        if resp.status != want:
            raise RuntimeAPIError(
                "%s %s: status %d: %s" % (method, path, resp.status, data[:512].decode("utf-8", "replace"))
            )
        return resp, data

    def next(self):
        return self._request("GET", "/invocation/next", want=200)

    def post_response(self, request_id, body, content_type):
        path = "/invocation/%s/response" % urllib.parse.quote(request_id, safe="")
        self._request("POST", path, body, {"Content-Type": content_type})

    def post_error(self, request_id, error):
        path = "/invocation/%s/error" % urllib.parse.quote(request_id, safe="")
        self._post_error_json(path, error)

    def post_init_error(self, error):
        self._post_error_json("/init/error", error)

    def _post_error_json(self, path, error):
        headers = {"Content-Type": "application/json", ERROR_TYPE_HEADER: error["errorType"] or "Runtime.Unknown"}
        self._request("POST", path, to_json(error).encode("utf-8"), headers)


# --- JSON ----------------------------------------------------------------


class _Encoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, decimal.Decimal):
            return int(o) if o.is_finite() and o == o.to_integral_value() else float(o)
        return super().default(o)


def to_json(obj):
    return json.dumps(obj, cls=_Encoder, ensure_ascii=False)


def decode_event(body):
    # Events are always JSON (Lambda's Invoke rejects anything else), whatever
    # content type the caller declared, so the header is not consulted.
    try:
        return json.loads(body)
    except ValueError as e:
        raise FaultError("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e)


def encode_result(result):
    if isinstance(result, (bytes, bytearray)):
        return bytes(result), "application/unknown"
    try:
        return to_json(result).encode("utf-8"), "application/json"
    except (TypeError, ValueError) as e:
        raise FaultError("Runtime.MarshalError", "Unable to marshal response: %s" % e)


# --- errors as Lambda formats them ----------------------------------------


def make_error(message, error_type, stack_trace, request_id=""):
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": stack_trace or [],
    }


def user_frames(tb):
    """Traceback frames without the bootstrap's own leading frames."""
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):
        if os.path.abspath(frame[0]) != BOOTSTRAP_FILE:
            return frames[i:]
    return frames


def error_from_exception(exc, request_id=""):
    if isinstance(exc, FaultError):
        return make_error(exc.message, exc.error_type, exc.trace, request_id)
    # Plain tuples keep format_list to Lambda's two lines per frame.
    trace = traceback.format_list(user_frames(exc.__traceback__))
    return make_error(str(exc), type(exc).__name__, trace, request_id)


def log_error(error):
    """Write the error to the log as one record ("\\r" joins its lines)."""
    head = "[ERROR]"
    if error["errorType"]:
        head += " " + error["errorType"] + (":" if error["errorMessage"] else "")
    if error["errorMessage"]:
        head += " " + error["errorMessage"]
    lines = [head, "Traceback (most recent call last):"]
    for entry in error["stackTrace"]:
        for line in entry.splitlines():
            stripped = line.lstrip(" ")
            lines.append("\u00a0" * (len(line) - len(stripped)) + stripped)
    sys.stdout.write("\r".join(lines) + "\n")


# --- handler loading ------------------------------------------------------


def load_handler(handler):
    try:
        module_name, func_name = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultError("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise FaultError(
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module %s as a handler module" % module_name,
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        raise FaultError("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (module_name, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultError("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (module_name, e), trace)
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise FaultError("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (func_name, module_name))


# --- context ----------------------------------------------------------------


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, data):
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")

    def __init__(self, data):
        for name in self.__slots__:
            setattr(self, name, data.get(name))


class ClientContext:
    __slots__ = ("client", "custom", "env")

    def __init__(self, data):
        client = data.get("client")
        self.client = Client(client) if isinstance(client, dict) else None
        self.custom = data.get("custom")
        self.env = data.get("env")


def parse_header_json(value, name):
    try:
        return json.loads(value)
    except ValueError as e:
        raise FaultError("Runtime.LambdaContextUnmarshalError", "Unable to parse %s JSON: %s" % (name, e))


class LambdaContext:
    def __init__(self, request_id, function_arn, deadline_ms, client_context, identity):
        env = os.environ
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        # A string, as in Lambda (it comes from the environment).
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.client_context = ClientContext(client_context) if isinstance(client_context, dict) else None
        self.identity = CognitoIdentity(identity if isinstance(identity, dict) else {})
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg):
        sys.stdout.write(str(msg))


# --- logging ------------------------------------------------------------------


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id
        return True


class _StdoutHandler(logging.Handler):
    def emit(self, record):
        try:
            sys.stdout.write(self.format(record))
        except Exception:
            self.handleError(record)


def setup_logging():
    """Give the root logger Lambda's text format (its level stays WARNING)."""
    handler = _StdoutHandler()
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(_RequestIdFilter())
    logging.getLogger().addHandler(handler)


# --- main loop ------------------------------------------------------------------


def handle(client, handler, resp, body):
    request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id", "")
    try:
        client_context = resp.getheader("Lambda-Runtime-Client-Context")
        identity = resp.getheader("Lambda-Runtime-Cognito-Identity")
        context = LambdaContext(
            request_id,
            resp.getheader("Lambda-Runtime-Invoked-Function-Arn"),
            int(resp.getheader("Lambda-Runtime-Deadline-Ms") or 0),
            parse_header_json(client_context, "Client Context") if client_context else None,
            parse_header_json(identity, "Cognito Identity") if identity else None,
        )
        event = decode_event(body)
        payload, content_type = encode_result(handler(event, context))
    except Exception as e:
        error = error_from_exception(e, request_id)
        log_error(error)
        client.post_error(request_id, error)
        return
    client.post_response(request_id, payload, content_type)


def main():
    global _request_id
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        sys.stderr.write("nimbus bootstrap: AWS_LAMBDA_RUNTIME_API is not set\n")
        return 1
    client = RuntimeClient(address)
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    # The task root comes first, ahead of PYTHONPATH (layers). It replaces
    # sys.path[0], this script's directory, unless safe-path mode left it out.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(BOOTSTRAP_FILE):
        sys.path[0] = task_root
    else:
        sys.path.insert(0, task_root)
    setup_logging()

    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except Exception as e:
        error = error_from_exception(e)
        log_error(error)
        client.post_init_error(error)
        return 1

    while True:
        resp, body = client.next()
        _request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id", "")
        trace_id = resp.getheader("Lambda-Runtime-Trace-Id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        handle(client, handler, resp, body)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeAPIError as e:
        sys.stderr.write("nimbus bootstrap: runtime API: %s\n" % e)
        sys.exit(1)
