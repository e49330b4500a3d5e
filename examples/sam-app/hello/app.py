"""An HTTP API function (payload 2.0): says hello and shows what API Gateway
and the template gave it. Its dependency (requirements.txt) is installed by
FlexiLib on the first cold start, as `sam build` would."""

import json
import os

import humanize


def handler(event, context):
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(
            {
                "message": f"{os.environ.get('GREETING', 'hello')} from python",
                "routeKey": event.get("routeKey"),
                "rawPath": event.get("rawPath"),
                "pathParameters": event.get("pathParameters"),
                "stage": event["requestContext"]["stage"],
                "function": context.function_name,
                "memory": int(context.memory_limit_in_mb),
                "timeout": os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT"),
                "env": {k: os.environ.get(k) for k in ("STAGE", "TABLE", "GREETING")},
                "served": humanize.intcomma(1234567),
                "humanize": humanize.__version__,
            }
        ),
    }
