"""A Lambda function for AWS's Python runtime interface client.

Run it as AWS runs it: `python3 -m awslambdaric app.handler` (FlexiLib:
`/py = lambda:python3 -m awslambdaric app.handler`, with the config in this
directory, or `dir=` pointing here). The last path segment picks what it
does, so it works under any route prefix:

* `echo` — the payload 2.0 event it received, as JSON
* `bin` — the request body back (base64 in, base64 out)
* `cookies` — three cookies in `cookies`
* `slow?ms=N` — answers after N milliseconds
* `error` — raises an exception (a handler error)
* `crash` — the process exits in the middle of the invocation
* `pid` — the process id
* `plain` — returns a bare string (no statusCode)
* `json` — returns a JSON object without statusCode
* anything else — `hello from python`
"""

import base64
import json
import os
import time

VERSION = "1"


def handler(event, context):
    path = event.get("rawPath", "")
    action = path.rsplit("/", 1)[-1]
    query = event.get("queryStringParameters") or {}
    if action == "echo":
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(
                {
                    "event": event,
                    "request_id": context.aws_request_id,
                    "function_name": context.function_name,
                    "memory_limit_in_mb": context.memory_limit_in_mb,
                    "remaining_ms": context.get_remaining_time_in_millis(),
                    "env_task_root": os.environ.get("LAMBDA_TASK_ROOT"),
                    "env_handler": os.environ.get("_HANDLER"),
                    "env_region": os.environ.get("AWS_REGION"),
                    "env_extra": os.environ.get("EXTRA"),
                }
            ),
        }
    if action == "bin":
        body = event.get("body") or ""
        raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/octet-stream"},
            "body": base64.b64encode(raw).decode(),
            "isBase64Encoded": True,
        }
    if action == "cookies":
        return {
            "statusCode": 200,
            "headers": {"content-type": "text/plain"},
            "cookies": ["a=1; Path=/", "b=2; HttpOnly", "c=3"],
            "body": "three cookies",
        }
    if action == "slow":
        time.sleep(int(query.get("ms", "0")) / 1000)
        return {"statusCode": 200, "body": f"slept in {os.getpid()}"}
    if action == "error":
        raise ValueError("the handler failed on purpose")
    if action == "crash":
        os._exit(3)
    if action == "pid":
        return {"statusCode": 200, "body": str(os.getpid())}
    if action == "version":
        return {"statusCode": 200, "body": VERSION}
    if action == "plain":
        return "just a string"
    if action == "json":
        return {"answer": 42}
    return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "hello from python"}
