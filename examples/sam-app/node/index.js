// An HTTP API function (payload 2.0) in Node.
exports.handler = async (event, context) => ({
  statusCode: 200,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    message: `hello from node, ${(event.pathParameters || {}).name || "nobody"}`,
    routeKey: event.routeKey,
    function: context.functionName,
    stage: process.env.STAGE,
  }),
});
