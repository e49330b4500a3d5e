"""A REST API function (payload 1.0): returns the event it received, and
answers with both `headers` and `multiValueHeaders`."""

import json


def handler(event, context):
    created = event["httpMethod"] == "POST"
    return {
        "statusCode": 201 if created else 200,
        "headers": {"content-type": "application/json", "x-api": "rest"},
        "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]},
        "body": json.dumps({"event": event, "function": context.function_name}),
        "isBase64Encoded": False,
    }
