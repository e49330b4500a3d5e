//! The runtime clients FlexiLib ships (`runtimes/`): `lambda:runtime=python3.x`
//! and `lambda:runtime=nodejs*.x` run a handler with nothing installed but
//! the interpreter (the server's own `PATH`, without AWS's clients), with
//! the semantics of `awslambdaric` and `aws-lambda-ric`: the context, the
//! log format, handler errors, and init errors by AWS's error types.

mod common;

use std::time::Duration;

use common::{Server, ServerBuilder, TempDir};
use serde_json::Value;

fn json(response: &common::Response) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}), status {}: {}",
            response.status,
            response.text()
        )
    })
}

/// A server for `config`, with the Invoke API on a free port and the
/// machine's `PATH` (no runtime client installed in it).
fn start(dir: &TempDir, config: &str) -> Server {
    let path = dir.write("proxy.ini", config);
    ServerBuilder::new(&path)
        .env("INVOKE_API_ADDRESS", "127.0.0.1:0")
        .start()
}

/// Invokes `name` with `event`; the status, the function-error header and
/// the body as JSON.
fn invoke(server: &Server, name: &str, event: &str) -> (u16, Option<String>, Value) {
    let response = server.invoke_client().request(
        "POST",
        &format!("/2015-03-31/functions/{name}/invocations"),
        &[],
        event.as_bytes(),
    );
    let error = response.header("x-amz-function-error").map(String::from);
    (response.status, error, json(&response))
}

const PYTHON_APP: &str = r#"
import logging

logger = logging.getLogger()

def handler(event, context):
    if event.get("fail"):
        raise ValueError("bad input")
    logger.warning("warned %s", event.get("n"))
    print("printed", event.get("n"))
    return {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory": context.memory_limit_in_mb,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining": context.get_remaining_time_in_millis(),
        "log_group": context.log_group_name,
    }
"#;

#[test]
fn python_handlers_run_without_an_installed_client() {
    let dir = TempDir::new("shipped-py");
    std::fs::create_dir_all(dir.path().join("py")).expect("mkdir");
    dir.write("py/app.py", PYTHON_APP);
    dir.write("py/broken_import.py", "import nope_not_a_module\n");
    dir.write("py/broken_syntax.py", "def handler(:\n");
    let server = start(
        &dir,
        "/py = lambda:runtime=python3.12 handler=app.handler dir=py timeout=2 memory=256\n\
         /missing = lambda:runtime=python3.12 handler=app.nothing dir=py name=missing\n\
         /import = lambda:runtime=python3.12 handler=broken_import.handler dir=py name=imports\n\
         /syntax = lambda:runtime=python3.12 handler=broken_syntax.handler dir=py name=syntax\n\
         /future = lambda:runtime=python3.99 handler=app.handler dir=py name=future\n",
    );

    let (status, error, result) = invoke(&server, "py", r#"{"n": 7}"#);
    assert_eq!((status, error), (200, None), "{result}");
    assert_eq!(result["event"]["n"], 7);
    assert_eq!(result["function_name"], "py", "named after its directory");
    assert_eq!(result["function_version"], "$LATEST");
    assert_eq!(
        result["memory"], "256",
        "a string, as awslambdaric gives it"
    );
    let request_id = result["request_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(request_id.len(), 36);
    assert!(result["arn"]
        .as_str()
        .is_some_and(|arn| arn.starts_with("arn:aws:lambda:") && arn.ends_with(":function:py")));
    let remaining = result["remaining"].as_u64().unwrap_or_default();
    assert!(remaining > 1000 && remaining <= 2000, "{remaining}");
    assert_eq!(result["log_group"], "/aws/lambda/py");
    // `logging` in the Lambda format, `print` as it is.
    let warned = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("warned 7"))
        .unwrap_or_default();
    assert!(
        warned.starts_with("[py] [WARNING]\t")
            && warned.ends_with(&format!("\t{request_id}\twarned 7")),
        "{warned}"
    );
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l == "[py] printed 7")
        .is_some());

    // A handler's exception: reported with its type, the instance lives on.
    let (status, error, result) = invoke(&server, "py", r#"{"fail": true}"#);
    assert_eq!((status, error.as_deref()), (200, Some("Unhandled")));
    assert_eq!(result["errorType"], "ValueError");
    assert_eq!(result["errorMessage"], "bad input");
    assert!(
        result["stackTrace"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{result}"
    );
    assert_eq!(
        server.get("/py/x", &[]).status,
        200,
        "the function still answers"
    );

    // Handlers that cannot be loaded are init errors, typed as AWS types them.
    for (name, error_type, message) in [
        (
            "missing",
            "Runtime.HandlerNotFound",
            "Handler 'nothing' missing on module 'app'",
        ),
        (
            "imports",
            "Runtime.ImportModuleError",
            "Unable to import module 'broken_import': No module named 'nope_not_a_module'",
        ),
        (
            "syntax",
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module 'broken_syntax'",
        ),
    ] {
        let (status, error, result) = invoke(&server, name, "{}");
        assert_eq!(
            (status, error.as_deref()),
            (200, Some("Unhandled")),
            "{name}"
        );
        assert_eq!(result["errorType"], error_type, "{name}: {result}");
        assert!(
            result["errorMessage"]
                .as_str()
                .is_some_and(|m| m.starts_with(message)),
            "{name}: {result}"
        );
    }
    assert_eq!(server.get("/missing", &[]).status, 502);

    // The interpreter is the one installed; a different version is logged.
    let (_, error, result) = invoke(&server, "future", "{}");
    assert_eq!(error, None, "{result}");
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.starts_with(
            "[future] Runtime python3.99 requested: running Python 3."
        ))
        .is_some());
}

#[test]
fn node_handlers_run_without_an_installed_client() {
    let dir = TempDir::new("shipped-node");
    std::fs::create_dir_all(dir.path().join("js")).expect("mkdir");
    dir.write(
        "js/index.js",
        r#"
exports.handler = async (event, context) => {
  if (event.fail) throw new TypeError("bad input");
  console.log("logged", event.n);
  return {
    event,
    functionName: context.functionName,
    memory: context.memoryLimitInMB,
    requestId: context.awsRequestId,
    arn: context.invokedFunctionArn,
    remaining: context.getRemainingTimeInMillis(),
  };
};
exports.callback = (event, context, callback) => {
  setTimeout(() => callback(null, { via: "callback", n: event.n }), 5);
};
"#,
    );
    dir.write(
        "js/esm.mjs",
        "export const handler = async (event) => ({ via: 'esm', n: event.n });\n",
    );
    let server = start(
        &dir,
        "/js = lambda:runtime=nodejs20.x handler=index.handler dir=js timeout=2\n\
         /cb = lambda:runtime=nodejs20.x handler=index.callback dir=js name=cb\n\
         /esm = lambda:runtime=nodejs22.x handler=esm.handler dir=js name=esm\n\
         /future = lambda:runtime=nodejs99.x handler=esm.handler dir=js name=future\n\
         /missing = lambda:runtime=nodejs20.x handler=index.nothing dir=js name=missing\n\
         /nofile = lambda:runtime=nodejs20.x handler=nofile.handler dir=js name=nofile\n",
    );

    let (status, error, result) = invoke(&server, "js", r#"{"n": 3}"#);
    assert_eq!((status, error), (200, None), "{result}");
    assert_eq!(result["event"]["n"], 3);
    assert_eq!(result["functionName"], "js");
    assert_eq!(result["memory"], "128");
    let request_id = result["requestId"].as_str().unwrap_or_default().to_string();
    assert_eq!(request_id.len(), 36);
    assert!(result["arn"]
        .as_str()
        .is_some_and(|a| a.ends_with(":function:js")));
    let remaining = result["remaining"].as_u64().unwrap_or_default();
    assert!(remaining > 1000 && remaining <= 2000, "{remaining}");
    let logged = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("logged 3"))
        .unwrap_or_default();
    assert!(
        logged.starts_with("[js] ") && logged.ends_with(&format!("\t{request_id}\tINFO\tlogged 3")),
        "{logged}"
    );

    assert_eq!(
        invoke(&server, "cb", r#"{"n": 4}"#).2,
        serde_json::json!({"via": "callback", "n": 4})
    );
    assert_eq!(
        invoke(&server, "esm", r#"{"n": 5}"#).2,
        serde_json::json!({"via": "esm", "n": 5})
    );

    let (_, error, result) = invoke(&server, "js", r#"{"fail": true}"#);
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(result["errorType"], "TypeError");
    assert_eq!(result["errorMessage"], "bad input");
    assert_eq!(
        server.get("/js/x", &[]).status,
        200,
        "the function still answers"
    );

    assert_eq!(
        invoke(&server, "future", r#"{"n": 6}"#).2,
        serde_json::json!({"via": "esm", "n": 6})
    );
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.starts_with(
            "[future] Runtime nodejs99.x requested: running Node "
        ))
        .is_some());

    for (name, error_type) in [
        ("missing", "Runtime.HandlerNotFound"),
        ("nofile", "Runtime.ImportModuleError"),
    ] {
        let (_, error, result) = invoke(&server, name, "{}");
        assert_eq!(error.as_deref(), Some("Unhandled"), "{name}");
        assert_eq!(result["errorType"], error_type, "{name}: {result}");
    }
}

#[test]
fn runtime_option_errors_name_the_line() {
    let dir = TempDir::new("shipped-errors");
    let config = dir.write("proxy.ini", "/a = lambda:runtime=python3.12 dir=.\n");
    let (status, stderr) = ServerBuilder::new(&config).run_to_exit_within(Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        stderr.contains("proxy.ini:1: `runtime=python3.12` needs `handler=`"),
        "{stderr}"
    );
}

#[test]
fn dependencies_are_installed_into_the_cache_or_fail_clearly() {
    let dir = TempDir::new("shipped-deps");
    let cache = TempDir::new("shipped-deps-cache");
    // A local package, so no registry is needed: a `file:` dependency.
    std::fs::create_dir_all(dir.path().join("localdep")).expect("mkdir");
    dir.write(
        "localdep/package.json",
        r#"{"name": "localdep", "version": "1.0.0", "main": "index.js"}"#,
    );
    dir.write("localdep/index.js", "exports.answer = () => 42;\n");
    std::fs::create_dir_all(dir.path().join("js")).expect("mkdir");
    dir.write(
        "js/package.json",
        &format!(
            r#"{{"name": "fn", "version": "1.0.0", "dependencies": {{"localdep": "file:{}"}}}}"#,
            dir.path().join("localdep").display()
        ),
    );
    dir.write(
        "js/index.js",
        "const dep = require('localdep');\nexports.handler = async () => ({ answer: dep.answer() });\n",
    );
    std::fs::create_dir_all(dir.path().join("py")).expect("mkdir");
    dir.write("py/requirements.txt", "this is not a requirement !!\n");
    dir.write("py/app.py", "def handler(event, context):\n    return 1\n");
    let config = dir.write(
        "proxy.ini",
        "/js = lambda:runtime=nodejs20.x handler=index.handler dir=js\n\
         /py = lambda:runtime=python3.12 handler=app.handler dir=py\n",
    );
    let server = ServerBuilder::new(&config)
        .env("INVOKE_API_ADDRESS", "127.0.0.1:0")
        .env("LAMBDA_CACHE_DIR", &cache.path().display().to_string())
        .start();

    let (status, error, result) = invoke(&server, "js", "{}");
    assert_eq!((status, error), (200, None), "{result}");
    assert_eq!(result, serde_json::json!({"answer": 42}));
    assert!(server
        .stderr
        .snapshot()
        .iter()
        .any(|l| l.starts_with("[js] installing dependencies from package.json into ")));
    let entries: Vec<_> = std::fs::read_dir(cache.path())
        .expect("the cache exists")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        entries.len() == 1 && entries[0].starts_with("node-"),
        "{entries:?}"
    );

    // An installation that fails: a 502, and a log line that says why.
    let response = server.get("/py", &[]);
    assert_eq!(response.status, 502);
    assert_eq!(
        json(&response),
        serde_json::json!({"Message": "Internal Server Error"})
    );
    let failed = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.starts_with("[py] installing dependencies from requirements.txt failed: ")
        })
        .expect("the failure is logged");
    assert!(failed.contains("this is not a requirement"), "{failed}");
    let (_, error, result) = invoke(&server, "py", "{}");
    assert_eq!(error.as_deref(), Some("Unhandled"));
    assert_eq!(result["errorType"], "Runtime.DependencyInstallFailed");
}
