"""FlexiLib's Lambda runtime client for Python: what the bootstrap inside
AWS's Python runtime images does, with the standard library only, so a
function's directory needs nothing but its code.

    python3 flexilib_runtime.py module.function

FlexiLib runs it for `Runtime: python3.x` in a SAM template and for
`lambda:runtime=python3.x` routes. It loads the handler from the function's
directory (`LAMBDA_TASK_ROOT`, the working directory) and loops on the
Runtime API (`AWS_LAMBDA_RUNTIME_API`), with `awslambdaric`'s semantics:

* a handler that cannot be loaded is an init error (`/runtime/init/error`):
  `Runtime.MalformedHandlerName`, `Runtime.ImportModuleError`,
  `Runtime.UserCodeSyntaxError`, `Runtime.HandlerNotFound`, or the
  exception the module raised; then the process exits 1;
* `handler(event, context)`; `context` has `function_name`,
  `function_version`, `invoked_function_arn`, `memory_limit_in_mb`,
  `aws_request_id`, `log_group_name`, `log_stream_name`, `identity`,
  `client_context` and `get_remaining_time_in_millis()`;
* the result is sent as JSON; an exception is reported on `/error` as
  `{errorMessage, errorType, requestId, stackTrace}`;
* `logging` records go to stdout as `[LEVEL]<TAB>time<TAB>request id<TAB>message`
  (lines of one record joined by `\\r`), `_X_AMZN_TRACE_ID` is set per
  invocation.
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

RUNTIME = "/2018-06-01/runtime"


class RuntimeApi:
    """One keep-alive connection to the Runtime API."""

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)
        self.connection = None

    def call(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port)
            try:
                self.connection.request(method, RUNTIME + path, body=body, headers=headers or {})
                response = self.connection.getresponse()
                return response, response.read()
            except (http.client.HTTPException, OSError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")


class FaultError(Exception):
    """A handler that cannot be loaded, with the error type AWS reports."""

    def __init__(self, error_type, message):
        super().__init__(message)
        self.error_type = error_type


class CognitoIdentity:
    def __init__(self, data):
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")


class Client:
    def __init__(self, data):
        self.installation_id = data.get("installation_id")
        self.app_title = data.get("app_title")
        self.app_version_name = data.get("app_version_name")
        self.app_version_code = data.get("app_version_code")
        self.app_package_name = data.get("app_package_name")


class ClientContext:
    def __init__(self, data):
        self.client = Client(data.get("client") or {})
        self.custom = data.get("custom")
        self.env = data.get("env")


class LambdaContext:
    """The `context` a handler receives."""

    def __init__(self, request_id, deadline_ms, arn, client_context, identity):
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.client_context = ClientContext(client_context) if client_context else None
        self.identity = CognitoIdentity(identity or {})
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(int(self._deadline_ms - time.time() * 1000), 0)

    def __repr__(self):
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb}])"
        )


class LambdaLogHandler(logging.Handler):
    """`logging` records in the Lambda text format, one line each."""

    request_id = ""

    def emit(self, record):
        try:
            message = self.format(record).replace("\n", "\r")
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            millis = int(record.msecs)
            sys.stdout.write(
                f"[{record.levelname}]\t{stamp}.{millis:03d}Z\t{self.request_id}\t{message}\n"
            )
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must never fail the handler
            self.handleError(record)


def to_json(value):
    def default(item):
        if isinstance(item, decimal.Decimal):
            return int(item) if item == item.to_integral_value() else float(item)
        raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")

    return json.dumps(value, default=default).encode()


def error_body(error_type, message, request_id="", stack=None):
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": request_id,
            "stackTrace": stack or [],
        }
    ).encode()


def user_stack(error):
    """The traceback's frames below this file's."""
    frames = traceback.extract_tb(error.__traceback__)
    frames = [f for f in frames if f.filename != __file__]
    return traceback.format_list(frames)


def log_error(error_type, message, stack):
    lines = [f"[ERROR] {error_type}: {message}"]
    if stack:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in stack)
    sys.stderr.write("\r".join(lines) + "\n")
    sys.stderr.flush()


def load_handler(spec):
    module_name, _, function_name = spec.rpartition(".")
    if not module_name or not function_name:
        raise FaultError(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{spec}': not enough values to unpack (expected 2, got 1)",
        )
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise FaultError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}"
        ) from error
    except SyntaxError as error:
        raise FaultError(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {error}",
        ) from error
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise FaultError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return handler


def note_version():
    """Says so when the interpreter is not the version `Runtime` names."""
    requested = os.environ.get("AWS_EXECUTION_ENV", "").removeprefix("AWS_Lambda_python")
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if requested and requested != running and requested[0].isdigit():
        sys.stderr.write(
            f"Runtime python{requested} requested: running Python {sys.version.split()[0]}"
            " (the python3 installed here)\n"
        )


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: flexilib_runtime.py module.function")
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    # The handler's directory first, as in AWS's images (not this file's).
    sys.path[0:1] = [task_root]
    sys.stdout.reconfigure(line_buffering=True)
    log_handler = LambdaLogHandler()
    logging.getLogger().addHandler(log_handler)

    note_version()
    api = RuntimeApi(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        handler = load_handler(sys.argv[1])
    except Exception as error:  # noqa: BLE001 - every init failure is reported
        error_type = getattr(error, "error_type", type(error).__name__)
        stack = user_stack(error.__cause__ or error)
        log_error(error_type, str(error), stack)
        api.call(
            "POST",
            "/init/error",
            error_body(error_type, str(error), stack=stack),
            {"Lambda-Runtime-Function-Error-Type": error_type},
        )
        sys.exit(1)

    while True:
        response, body = api.call("GET", "/invocation/next")
        request_id = response.getheader("Lambda-Runtime-Aws-Request-Id", "")
        deadline = int(response.getheader("Lambda-Runtime-Deadline-Ms") or 0)
        trace = response.getheader("Lambda-Runtime-Trace-Id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        log_handler.request_id = request_id
        client_context = response.getheader("Lambda-Runtime-Client-Context")
        identity = response.getheader("Lambda-Runtime-Cognito-Identity")
        path = f"/invocation/{request_id}"
        try:
            try:
                event = json.loads(body) if body else None
            except ValueError as error:
                raise FaultError("Runtime.UnmarshalError", f"Unable to unmarshal input: {error}")
            context = LambdaContext(
                request_id,
                deadline,
                response.getheader("Lambda-Runtime-Invoked-Function-Arn"),
                json.loads(client_context) if client_context else None,
                json.loads(identity) if identity else None,
            )
            result = handler(event, context)
            try:
                payload = to_json(result)
            except (TypeError, ValueError) as error:
                raise FaultError("Runtime.MarshalError", f"Unable to marshal response: {error}")
            api.call("POST", f"{path}/response", payload, {"Content-Type": "application/json"})
        except Exception as error:  # noqa: BLE001 - a handler's error is reported, not fatal
            error_type = getattr(error, "error_type", type(error).__name__)
            stack = user_stack(error)
            log_error(error_type, str(error), stack)
            api.call(
                "POST",
                f"{path}/error",
                error_body(error_type, str(error), request_id, stack),
                {"Lambda-Runtime-Function-Error-Type": error_type},
            )


if __name__ == "__main__":
    main()
