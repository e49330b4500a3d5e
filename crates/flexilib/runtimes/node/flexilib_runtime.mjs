// FlexiLib's Lambda runtime client for Node.js: what the bootstrap inside
// AWS's Node.js runtime images does, with Node's standard library only, so
// a function's directory needs nothing but its code.
//
//     node flexilib_runtime.mjs file.export
//
// FlexiLib runs it for `Runtime: nodejs*.x` in a SAM template and for
// `lambda:runtime=nodejs*.x` routes. It loads the handler from the
// function's directory (`LAMBDA_TASK_ROOT`) — `file.js`, `file.mjs` or
// `file.cjs`, CommonJS or ES module — and loops on the Runtime API
// (`AWS_LAMBDA_RUNTIME_API`), with `aws-lambda-ric`'s semantics:
//
// * a handler that cannot be loaded is an init error (`/runtime/init/error`):
//   `Runtime.MalformedHandlerName`, `Runtime.ImportModuleError`,
//   `Runtime.UserCodeSyntaxError`, `Runtime.HandlerNotFound`, or the error
//   the module threw; then the process exits 1;
// * `handler(event, context)` returning a promise (async), or
//   `handler(event, context, callback)`; `context` has `functionName`,
//   `functionVersion`, `invokedFunctionArn`, `memoryLimitInMB`,
//   `awsRequestId`, `logGroupName`, `logStreamName`, `identity`,
//   `clientContext`, `getRemainingTimeInMillis()`, and the legacy `done`,
//   `succeed`, `fail`;
// * the result is sent as JSON; an error is reported on `/error` as
//   `{errorType, errorMessage, trace}`;
// * `console` lines go to stdout as `time<TAB>request id<TAB>LEVEL<TAB>message`
//   (lines of one call joined by `\r`); `_X_AMZN_TRACE_ID` is set per
//   invocation.
//
// Response streaming (`awslambda.streamifyResponse`) needs AWS's client:
// run such a function with `aws-lambda-ric`.

import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { pathToFileURL } from "node:url";
import util from "node:util";

const RUNTIME = "/2018-06-01/runtime";
const address = process.env.AWS_LAMBDA_RUNTIME_API || "";
const colon = address.lastIndexOf(":");
const host = address.slice(0, colon);
const port = Number(address.slice(colon + 1));
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, pathname, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host, port, method, path: RUNTIME + pathname, agent, headers },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ headers: response.headers, body: Buffer.concat(chunks) }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

let requestId = "";
for (const [name, level] of [
  ["log", "INFO"],
  ["info", "INFO"],
  ["warn", "WARN"],
  ["error", "ERROR"],
  ["debug", "DEBUG"],
  ["trace", "TRACE"],
]) {
  console[name] = (...args) => {
    const message = util.format(...args).replace(/\n/g, "\r");
    process.stdout.write(`${new Date().toISOString()}\t${requestId}\t${level}\t${message}\n`);
  };
}

class FaultError extends Error {
  constructor(errorType, message) {
    super(message);
    this.name = errorType;
  }
}

function errorJson(error) {
  if (error instanceof Error) {
    return {
      errorType: error.name || "Error",
      errorMessage: error.message,
      trace: String(error.stack || "").split("\n"),
    };
  }
  return { errorType: typeof error, errorMessage: String(error), trace: [] };
}

async function loadHandler(root, spec) {
  const slash = spec.lastIndexOf("/");
  const dot = spec.indexOf(".", slash + 1);
  if (dot < 0) {
    throw new FaultError("Runtime.MalformedHandlerName", `Bad handler ${spec}`);
  }
  const modulePath = spec.slice(0, dot);
  const names = spec.slice(dot + 1).split(".");
  const file = [".js", ".mjs", ".cjs"]
    .map((extension) => path.resolve(root, modulePath + extension))
    .find((candidate) => fs.existsSync(candidate));
  if (!file) {
    throw new FaultError(
      "Runtime.ImportModuleError",
      `Error: Cannot find module '${modulePath}'`,
    );
  }
  let module;
  try {
    module = await import(pathToFileURL(file).href);
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new FaultError("Runtime.UserCodeSyntaxError", `${error.name}: ${error.message}`);
    }
    if (error && error.code === "ERR_MODULE_NOT_FOUND") {
      throw new FaultError("Runtime.ImportModuleError", `Error: ${error.message}`);
    }
    throw error;
  }
  const find = (start) => names.reduce((value, name) => (value == null ? value : value[name]), start);
  let handler = find(module);
  if (typeof handler !== "function") {
    handler = find(module.default);
  }
  if (typeof handler !== "function") {
    throw new FaultError(
      "Runtime.HandlerNotFound",
      `${path.basename(modulePath)}.${names.join(".")} is undefined or not exported`,
    );
  }
  return handler;
}

function invoke(handler, event, context) {
  return new Promise((resolve, reject) => {
    const callback = (error, result) => (error ? reject(error) : resolve(result));
    context.done = callback;
    context.succeed = (result) => callback(null, result);
    context.fail = (error) => callback(error ?? new Error("handled"));
    let returned;
    try {
      returned = handler(event, context, callback);
    } catch (error) {
      reject(error);
      return;
    }
    if (returned && typeof returned.then === "function") {
      returned.then(resolve, reject);
    } else if (handler.length < 3) {
      resolve(returned);
    }
  });
}

// Says so when Node is not the version `Runtime` names.
function noteVersion() {
  const match = /^AWS_Lambda_nodejs(\d+)/.exec(process.env.AWS_EXECUTION_ENV || "");
  if (match && match[1] !== process.versions.node.split(".")[0]) {
    process.stderr.write(
      `Runtime nodejs${match[1]}.x requested: running Node ${process.versions.node} (the node installed here)\n`,
    );
  }
}

async function main() {
  const spec = process.argv[2];
  if (!spec) {
    process.stderr.write("usage: node flexilib_runtime.mjs file.export\n");
    process.exit(2);
  }
  noteVersion();
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  let handler;
  try {
    handler = await loadHandler(root, spec);
  } catch (error) {
    const body = errorJson(error);
    console.error(`${body.errorType}: ${body.errorMessage}`);
    await call("POST", "/init/error", JSON.stringify(body), {
      "Content-Type": "application/json",
      "Lambda-Runtime-Function-Error-Type": body.errorType,
    });
    process.exit(1);
  }
  for (;;) {
    const next = await call("GET", "/invocation/next");
    const headers = next.headers;
    requestId = headers["lambda-runtime-aws-request-id"] || "";
    const deadline = Number(headers["lambda-runtime-deadline-ms"] || 0);
    if (headers["lambda-runtime-trace-id"]) {
      process.env._X_AMZN_TRACE_ID = headers["lambda-runtime-trace-id"];
    } else {
      delete process.env._X_AMZN_TRACE_ID;
    }
    const parse = (text) => (text ? JSON.parse(text) : undefined);
    const context = {
      callbackWaitsForEmptyEventLoop: true,
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      awsRequestId: requestId,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      identity: parse(headers["lambda-runtime-cognito-identity"]),
      clientContext: parse(headers["lambda-runtime-client-context"]),
      getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    };
    const base = `/invocation/${requestId}`;
    try {
      let event;
      try {
        event = JSON.parse(next.body.toString("utf8"));
      } catch (error) {
        throw new FaultError("Runtime.UnmarshalError", `Unable to parse the event: ${error.message}`);
      }
      const result = await invoke(handler, event, context);
      const payload = JSON.stringify(result === undefined ? null : result);
      await call("POST", `${base}/response`, payload, { "Content-Type": "application/json" });
    } catch (error) {
      const body = errorJson(error);
      console.error(`Invoke Error \t${JSON.stringify(body)}`);
      await call("POST", `${base}/error`, JSON.stringify(body), {
        "Content-Type": "application/json",
        "Lambda-Runtime-Function-Error-Type": body.errorType,
      });
    }
  }
}

main().catch((error) => {
  process.stderr.write(`flexilib_runtime: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
