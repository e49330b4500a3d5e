// A Lambda function for AWS's Node.js runtime interface client
// (`aws-lambda-ric`), run as AWS runs it:
//
//   /js = lambda:node_modules/.bin/aws-lambda-ric index.handler name=js
//
// (with the config in this directory, or `dir=` pointing here). The last
// path segment picks what it does:
//
// * `echo`    — the payload 2.0 event it received, as JSON
// * `cookies` — three cookies in `cookies`
// * `error`   — throws (a handler error)
// * anything else — `hello from node`
//
// `index.stream` is a streaming handler (`awslambda.streamifyResponse`):
// it sends `first\n`, waits `?ms=N` milliseconds, then sends `last\n`.

exports.handler = async (event, context) => {
  const action = (event.rawPath || "").split("/").pop();
  if (action === "echo") {
    return {
      statusCode: 200,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ event, requestId: context.awsRequestId, functionName: context.functionName }),
    };
  }
  if (action === "cookies") {
    return { statusCode: 200, cookies: ["a=1; Path=/", "b=2; HttpOnly", "c=3"], body: "three cookies" };
  }
  if (action === "error") {
    throw new Error("the handler failed on purpose");
  }
  return { statusCode: 200, headers: { "content-type": "text/plain" }, body: "hello from node" };
};

// `awslambda` is a global the runtime interface client provides.
exports.stream =
  typeof awslambda === "undefined"
    ? undefined
    : awslambda.streamifyResponse(async (event, responseStream) => {
        const ms = Number((event.queryStringParameters || {}).ms || 0);
        const stream = awslambda.HttpResponseStream.from(responseStream, {
          statusCode: 201,
          headers: { "content-type": "text/plain" },
          cookies: ["streamed=yes"],
        });
        stream.write("first\n");
        await new Promise((resolve) => setTimeout(resolve, ms));
        stream.write("last\n");
        stream.end();
      });
