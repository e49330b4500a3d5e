//! Lambda functions behind routes, run by AWS's unmodified runtime clients
//! (`lambda_http` for Rust, `awslambdaric` for Python): what a client of a
//! Function URL sees, the Invoke API, and the platform's log lines.

mod common;
#[path = "common/lambda.rs"]
mod lambda;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::TempDir;
use serde_json::Value;

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

fn set_cookies(response: &common::Response) -> Vec<&str> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.as_str())
        .collect()
}

/// Every byte value, so a body survives only a binary-safe round trip.
fn binary_body() -> Vec<u8> {
    (0..=255u8).chain((0..=255u8).rev()).collect()
}

#[test]
fn rust_function_round_trips_requests_and_responses() {
    let dir = TempDir::new("lambda-rs");
    let server = lambda::start(
        &dir,
        &format!(
            "/fn = lambda:{} name=hello\n",
            lambda::rust_bootstrap().display()
        ),
    );
    let mut client = server.client();

    let response = client.request(
        "GET",
        "/fn/echo?a=1&b=two&a=3",
        &[("X-Custom", "v1"), ("Cookie", "session=abc; theme=dark")],
        b"",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let echo = json(&response.body);
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/fn/echo", "rawPath is the full request path");
    assert_eq!(echo["query"], "a=1&b=two&a=3");
    assert_eq!(echo["headers"]["x-custom"], "v1");
    assert_eq!(echo["headers"]["cookie"], "session=abc; theme=dark");
    assert_eq!(echo["function_name"], "hello");
    assert_eq!(echo["request_id"].as_str().map(str::len), Some(36));
    let deadline = echo["deadline_ms"].as_u64().unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    assert!(
        deadline > now + 1000 && deadline <= now + 3100,
        "deadline is invocation start + 3 s: {deadline} vs now {now}"
    );

    let body = binary_body();
    let response = client.request(
        "POST",
        "/fn/bin",
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(response.body, body, "binary body round trip");

    let response = client.request("GET", "/fn/cookies", &[], b"");
    assert_eq!(response.status, 200);
    assert_eq!(
        set_cookies(&response),
        ["a=1; Path=/", "b=2; HttpOnly", "c=3"]
    );
    assert_eq!(response.text(), "three cookies");

    // One instance served all three (warm), and the log has AWS's lines.
    let reports = server
        .stderr
        .wait_for_nth(Duration::from_secs(5), 2, |l| {
            l.starts_with("[hello] REPORT RequestId: ")
        })
        .expect("three REPORT lines");
    let all: Vec<String> = server
        .stderr
        .snapshot()
        .into_iter()
        .filter(|l| l.starts_with("[hello] REPORT"))
        .collect();
    assert!(
        all[0].contains("\tInit Duration: "),
        "cold start: {}",
        all[0]
    );
    assert!(!reports.contains("Init Duration"), "warm: {reports}");
    let fields: Vec<&str> = reports.split('\t').collect();
    assert!(
        fields[1].starts_with("Duration: ") && fields[1].ends_with(" ms"),
        "{reports}"
    );
    assert!(fields[2].starts_with("Billed Duration: "), "{reports}");
    assert_eq!(fields[3], "Memory Size: 128 MB");
    assert!(fields[4].starts_with("Max Memory Used: ") && fields[4].ends_with(" MB"));
    let request_id = echo["request_id"].as_str().unwrap_or_default().to_string();
    let lines = server.stderr.snapshot();
    assert!(lines.contains(&format!(
        "[hello] START RequestId: {request_id} Version: $LATEST"
    )));
    assert!(lines.contains(&format!("[hello] END RequestId: {request_id}")));
    let access = server.log_lines(3);
    assert!(
        access.iter().all(|l| l.contains(" lambda hello ")),
        "access log notes the function: {access:?}"
    );
}

#[test]
fn python_function_sees_a_payload_2_event() {
    let dir = TempDir::new("lambda-py");
    dir.write("app.py", &lambda::python_example());
    let server = lambda::start(
        &dir,
        "/py = lambda:python3 -m awslambdaric app.handler name=py memory=256 env.EXTRA=yes\n",
    );
    let mut client = server.client();
    let response = client.request(
        "POST",
        "/py/echo?a=1&a=2&s=x%20y",
        &[
            ("Host", "fn.example.com"),
            ("X-Multi", "one"),
            ("X-Multi", "two"),
            ("Cookie", "c1=v1; c2=v2"),
            ("User-Agent", "test-agent"),
            ("Content-Type", "text/plain"),
        ],
        b"hello body",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let answer = json(&response.body);
    let event = &answer["event"];
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "$default");
    assert_eq!(event["rawPath"], "/py/echo");
    assert_eq!(event["rawQueryString"], "a=1&a=2&s=x%20y");
    assert_eq!(event["queryStringParameters"]["a"], "1,2");
    assert_eq!(event["queryStringParameters"]["s"], "x y");
    assert_eq!(event["cookies"], serde_json::json!(["c1=v1", "c2=v2"]));
    assert_eq!(event["headers"]["x-multi"], "one,two");
    assert_eq!(event["headers"]["host"], "fn.example.com");
    assert_eq!(event["body"], "hello body");
    assert_eq!(event["isBase64Encoded"], false);
    let context = &event["requestContext"];
    assert_eq!(context["http"]["method"], "POST");
    assert_eq!(context["http"]["path"], "/py/echo");
    assert_eq!(context["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(context["http"]["userAgent"], "test-agent");
    assert_eq!(context["domainName"], "fn.example.com");
    assert_eq!(context["stage"], "$default");
    assert!(context["timeEpoch"].as_u64().is_some());
    assert_ne!(context["requestId"], answer["request_id"], "fresh ids");
    assert_eq!(answer["function_name"], "py");
    assert_eq!(answer["memory_limit_in_mb"], "256");
    assert_eq!(answer["env_handler"], "app.handler");
    assert_eq!(answer["env_extra"], "yes");
    assert_eq!(answer["env_region"], "us-east-1");
    let root = std::fs::canonicalize(dir.path()).ok();
    let seen = answer["env_task_root"]
        .as_str()
        .and_then(|p| std::fs::canonicalize(p).ok());
    assert_eq!(seen, root, "LAMBDA_TASK_ROOT is the config's directory");
    let remaining = answer["remaining_ms"].as_u64().unwrap_or_default();
    assert!(
        (2000..=3000).contains(&remaining),
        "remaining {remaining} ms of 3 s"
    );

    // A binary body goes in as base64 and a base64 result comes out as bytes.
    let body = binary_body();
    let response = client.request(
        "POST",
        "/py/bin",
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.body, body);

    let response = client.request("GET", "/py/cookies", &[], b"");
    assert_eq!(
        set_cookies(&response),
        ["a=1; Path=/", "b=2; HttpOnly", "c=3"]
    );

    // Results without statusCode.
    let response = client.request("GET", "/py/plain", &[], b"");
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "just a string")
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    let response = client.request("GET", "/py/json", &[], b"");
    assert_eq!(response.status, 200);
    assert_eq!(json(&response.body), serde_json::json!({"answer": 42}));
}

#[test]
fn failures_answer_as_a_function_url_and_instances_recover() {
    let dir = TempDir::new("lambda-fail");
    dir.write("app.py", &lambda::python_example());
    dir.write(
        "broken.py",
        "import no_such_module_here\n\ndef handler(event, context):\n    return 1\n",
    );
    let server = lambda::start(
        &dir,
        &format!(
            "/rs = lambda:{} name=rs timeout=1\n/py = lambda:python3 -m awslambdaric app.handler name=py\n/broken = lambda:python3 -m awslambdaric broken.handler name=broken\n",
            lambda::rust_bootstrap().display()
        ),
    );
    let mut client = server.client();
    let mut invoke_client = server.invoke_client();
    let first_pid = client.request("GET", "/rs/pid", &[], b"").text();

    // Handler errors: 502, no stack trace for the client.
    for path in ["/rs/error", "/py/error"] {
        let response = client.request("GET", path, &[], b"");
        assert_eq!(response.status, 502, "{path}");
        assert!(
            !response.text().contains("failed on purpose"),
            "{path}: {}",
            response.text()
        );
    }
    assert_eq!(
        client.request("GET", "/rs/pid", &[], b"").text(),
        first_pid,
        "a handler error keeps the instance"
    );

    // A crash: 502, logged; the next request gets a fresh instance.
    let response = client.request("GET", "/rs/crash", &[], b"");
    assert_eq!(response.status, 502);
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("Error: Runtime exited with error: exit status 3"))
        .is_some());
    let response = client.request("GET", "/rs/pid", &[], b"");
    assert_eq!(response.status, 200);
    assert_ne!(response.text(), first_pid, "recovered on a new instance");

    // A timeout: 502 after the timeout, the instance is killed.
    let pid: u32 = client
        .request("GET", "/rs/pid", &[], b"")
        .text()
        .parse()
        .unwrap_or(0);
    let started = Instant::now();
    let response = client.request("GET", "/rs/slow?ms=5000", &[], b"");
    let took = started.elapsed();
    assert_eq!(response.status, 502);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(2), |l| l.starts_with("[rs] ")
            && l.ends_with(" Task timed out after 1.00 seconds"))
        .is_some());
    assert!(
        lambda::wait_gone(pid, Duration::from_secs(2)),
        "timed-out instance killed"
    );
    assert_eq!(client.request("GET", "/rs/echo", &[], b"").status, 200);

    // An init error (the handler module does not import): 502, logged.
    let response = client.request("GET", "/broken/x", &[], b"");
    assert_eq!(response.status, 502);
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.starts_with("[broken] ")
            && l.contains("Runtime.ImportModuleError"))
        .is_some());
    // Through the Invoke API, the init error's JSON.
    let response = invoke_client.request(
        "POST",
        "/2015-03-31/functions/broken/invocations",
        &[],
        b"{}",
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(
        json(&response.body)["errorType"],
        "Runtime.ImportModuleError"
    );
    // The other functions are unaffected.
    assert_eq!(client.request("GET", "/py/hello", &[], b"").status, 200);
}

#[test]
fn invoke_api_answers_as_aws() {
    let dir = TempDir::new("lambda-invoke");
    dir.write("app.py", &lambda::python_example());
    let server = lambda::start(
        &dir,
        "/py = lambda:python3 -m awslambdaric app.handler name=py\n",
    );
    let mut invoke_client = server.invoke_client();

    let response = invoke_client.request(
        "POST",
        "/2015-03-31/functions/py/invocations",
        &[],
        br#"{"rawPath": "/json"}"#,
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-amz-function-error"), None);
    assert_eq!(response.header("x-amz-executed-version"), Some("$LATEST"));
    assert_eq!(
        json(&response.body),
        serde_json::json!({"answer": 42}),
        "the raw result"
    );

    let response = invoke_client.request(
        "POST",
        "/2015-03-31/functions/py:$LATEST/invocations",
        &[],
        br#"{"rawPath": "/error"}"#,
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-amz-function-error"), Some("Unhandled"));
    let error = json(&response.body);
    assert_eq!(error["errorType"], "ValueError");
    assert_eq!(error["errorMessage"], "the handler failed on purpose");

    let response = invoke_client.request(
        "POST",
        "/2015-03-31/functions/py/invocations",
        &[("X-Amz-Invocation-Type", "Event")],
        br#"{"rawPath": "/slow", "queryStringParameters": {"ms": "300"}}"#,
    );
    assert_eq!(response.status, 202);
    let id = response
        .header("x-amzn-requestid")
        .unwrap_or_default()
        .to_string();
    assert_eq!(id.len(), 36);
    assert!(
        server
            .stderr
            .wait_for(Duration::from_secs(5), |l| l
                .starts_with(&format!("[py] REPORT RequestId: {id}\t")))
            .is_some(),
        "the asynchronous invocation ran"
    );

    let response = invoke_client.request(
        "POST",
        "/2015-03-31/functions/py/invocations",
        &[("X-Amz-Invocation-Type", "DryRun")],
        b"{}",
    );
    assert_eq!(response.status, 204);

    let response =
        invoke_client.request("POST", "/2015-03-31/functions/nope/invocations", &[], b"{}");
    assert_eq!(response.status, 404);
    assert_eq!(
        response.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    assert_eq!(json(&response.body)["Type"], "User");

    // A real client of the API: `cargo lambda invoke`.
    let invoke = |name: &str, event: &str| {
        let output = std::process::Command::new(lambda::cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(server.invoke_addr().port().to_string())
            .args(["--data-ascii", event, name])
            .current_dir(dir.path())
            .output()
            .expect("run cargo lambda invoke");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, out, err) = invoke("py", r#"{"rawPath": "/json"}"#);
    assert!(ok, "cargo lambda invoke failed: {out} {err}");
    assert_eq!(
        json(out.trim().as_bytes()),
        serde_json::json!({"answer": 42})
    );
    let (_, out, err) = invoke("py", r#"{"rawPath": "/error"}"#);
    assert!(
        out.contains("the handler failed on purpose")
            || err.contains("the handler failed on purpose"),
        "{out} {err}"
    );
    let (ok, out, err) = invoke("nope", "{}");
    assert!(!ok, "an unknown function fails: {out}");
    assert!(err.contains("Function not found"), "{err}");
}

/// Reads a chunked response on a raw socket, timing each chunk's arrival.
fn timed_chunks(stream: &mut TcpStream) -> (String, Vec<(Instant, Vec<u8>)>) {
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut chunks = Vec::new();
    loop {
        let mut size = String::new();
        if reader.read_line(&mut size).unwrap_or(0) == 0 {
            break;
        }
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let mut chunk = vec![0; size + 2];
        if reader.read_exact(&mut chunk).is_err() || size == 0 {
            break;
        }
        chunk.truncate(size);
        chunks.push((Instant::now(), chunk));
    }
    (head, chunks)
}

#[test]
fn a_streamed_response_reaches_the_client_chunk_by_chunk() {
    let dir = TempDir::new("lambda-stream");
    let server = lambda::start(
        &dir,
        &format!(
            "/s = lambda:{} name=streamer env.FLEXI_STREAMING=1\n",
            lambda::rust_bootstrap().display()
        ),
    );
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /s/stream?ms=1200 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let (head, chunks) = timed_chunks(&mut stream);
    assert!(
        head.starts_with("HTTP/1.1 201"),
        "status from the prelude: {head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("set-cookie: streamed=yes"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{head}"
    );
    let body: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    assert_eq!(String::from_utf8_lossy(&body), "first\nlast\n");
    let first = chunks
        .iter()
        .find(|(_, c)| c.starts_with(b"first"))
        .map(|(at, _)| *at)
        .expect("first chunk");
    let last = chunks.last().map(|(at, _)| *at).expect("last chunk");
    assert!(
        last.duration_since(first) >= Duration::from_millis(900),
        "the first chunk arrived {:?} before the last, which the function sent 1.2 s later",
        last.duration_since(first)
    );
}

#[test]
fn node_function_answers_and_streams() {
    let dir = TempDir::new("lambda-node");
    let ric = lambda::node_ric();
    let code = lambda::node_example_dir();
    let server = lambda::start(
        &dir,
        &format!(
            "/stream = lambda:{ric} index.stream name=jsstream dir={code}\n/js = lambda:{ric} index.handler name=js dir={code}\n",
            ric = ric.display(),
            code = code.display()
        ),
    );
    let mut client = server.client();
    let response = client.request("GET", "/js/echo?a=1&a=2", &[("Cookie", "k=v")], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    let answer = json(&response.body);
    assert_eq!(answer["event"]["rawPath"], "/js/echo");
    assert_eq!(answer["event"]["queryStringParameters"]["a"], "1,2");
    assert_eq!(answer["event"]["cookies"], serde_json::json!(["k=v"]));
    assert_eq!(answer["functionName"], "js");
    assert_eq!(answer["requestId"].as_str().map(str::len), Some(36));
    let response = client.request("GET", "/js/cookies", &[], b"");
    assert_eq!(
        set_cookies(&response),
        ["a=1; Path=/", "b=2; HttpOnly", "c=3"]
    );
    assert_eq!(client.request("GET", "/js/error", &[], b"").status, 502);
    assert_eq!(
        client.request("GET", "/js/hello", &[], b"").text(),
        "hello from node"
    );

    // streamifyResponse with an HTTP response stream.
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /stream/x?ms=1200 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let (head, chunks) = timed_chunks(&mut stream);
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("set-cookie: streamed=yes"),
        "{head}"
    );
    let body: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    assert_eq!(String::from_utf8_lossy(&body), "first\nlast\n");
    let first = chunks
        .iter()
        .find(|(_, c)| c.starts_with(b"first"))
        .map(|(at, _)| *at);
    let last = chunks.last().map(|(at, _)| *at);
    let gap = last
        .zip(first)
        .map(|(last, first)| last.duration_since(first));
    assert!(
        gap.is_some_and(|gap| gap >= Duration::from_millis(900)),
        "the first chunk arrived before the last was sent: {gap:?}"
    );
}

/// A runtime written against the Runtime API with nothing but Python's
/// standard library: it checks the API's answers to wrong calls and
/// reports what it saw (headers, environment) as its result.
const CONTRACT_RUNTIME: &str = r#"
import http.client, json, os

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)

def call(method, path, body=None, headers=None):
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request(method, "/2018-06-01/runtime/" + path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data

def error_type(data):
    try:
        return json.loads(data).get("errorType")
    except ValueError:
        return None

names = ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
         "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_REGION", "AWS_DEFAULT_REGION",
         "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ", "_HANDLER"]
environment = {name: os.environ.get(name) for name in names}

while True:
    status, headers, body = call("GET", "invocation/next")
    request_id = headers["lambda-runtime-aws-request-id"]
    event = json.loads(body)
    path = event.get("rawPath", "")
    seen = {"next_status": status, "headers": headers, "env": environment}
    unknown = call("POST", "invocation/no-such-request/response", b"{}")
    seen["unknown_id"] = [unknown[0], error_type(unknown[2])]
    busy = call("GET", "invocation/next")
    seen["next_while_running"] = [busy[0], error_type(busy[2])]
    late_init = call("POST", "init/error", b"{}")
    seen["init_error_after_init"] = [late_init[0], error_type(late_init[2])]
    if path.endswith("/big"):
        big = call("POST", "invocation/" + request_id + "/response", b"x" * (7 * 1024 * 1024))
        print("big response answered", big[0], error_type(big[2]), flush=True)
        continue
    if path.endswith("/streamfail"):
        # A streamed HTTP response that fails half way: an error trailer.
        import socket
        stream = socket.create_connection((host, int(port)))
        prelude = json.dumps({"statusCode": 200, "headers": {"content-type": "text/plain"}}).encode() + bytes(8)
        def chunk(data):
            return b"%x\r\n" % len(data) + data + b"\r\n"
        stream.sendall(
            b"POST /2018-06-01/runtime/invocation/" + request_id.encode() + b"/response HTTP/1.1\r\n"
            b"Host: runtime\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"
            b"Content-Type: application/vnd.awslambda.http-integration-response\r\n"
            b"Transfer-Encoding: chunked\r\n"
            b"Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n"
            + chunk(prelude) + chunk(b"partial ")
        )
        import time
        time.sleep(0.3)
        stream.sendall(
            b"0\r\nLambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n"
            b"Lambda-Runtime-Function-Error-Body: e30=\r\n\r\n"
        )
        answer = stream.recv(4096)
        print("streamed failure answered", answer.split(b" ")[1].decode(), flush=True)
        stream.close()
        continue
    if path.endswith("/fail"):
        failed = call("POST", "invocation/" + request_id + "/error",
                      json.dumps({"errorMessage": "custom failure", "errorType": "Custom.Failure"}),
                      {"Lambda-Runtime-Function-Error-Type": "Custom.Failure"})
        print("error answered", failed[0], flush=True)
        continue
    done = call("POST", "invocation/" + request_id + "/response", json.dumps({"statusCode": 200, "body": json.dumps(seen)}))
    again = call("POST", "invocation/" + request_id + "/response", b"{}")
    print("response answered", done[0], "then", again[0], error_type(again[2]), flush=True)
"#;

#[test]
fn the_runtime_api_keeps_its_contract() {
    let dir = TempDir::new("lambda-contract");
    dir.write("contract.py", CONTRACT_RUNTIME);
    let server = lambda::start(
        &dir,
        "/c = lambda:python3 contract.py name=contract handler=contract.handler timeout=2 memory=512\n",
    );
    let mut client = server.client();
    let mut invoke_client = server.invoke_client();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let response = client.request("GET", "/c/check", &[], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = json(&response.body);
    assert_eq!(seen["next_status"], 200);
    let headers = &seen["headers"];
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["lambda-runtime-aws-request-id"]
            .as_str()
            .map(str::len),
        Some(36)
    );
    assert_eq!(
        headers["lambda-runtime-invoked-function-arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:contract"
    );
    assert!(headers["lambda-runtime-trace-id"]
        .as_str()
        .is_some_and(|t| t.starts_with("Root=1-")));
    let deadline: u64 = headers["lambda-runtime-deadline-ms"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_default();
    assert!(
        deadline >= before + 1900 && deadline <= before + 3000,
        "deadline {deadline} = start + 2 s (request sent at {before})"
    );
    assert_eq!(
        seen["unknown_id"],
        serde_json::json!([400, "InvalidRequestID"])
    );
    assert_eq!(
        seen["next_while_running"],
        serde_json::json!([403, "InvalidStateTransition"])
    );
    assert_eq!(
        seen["init_error_after_init"],
        serde_json::json!([403, "InvalidStateTransition"])
    );
    let env = &seen["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "contract");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/contract");
    assert!(env["AWS_LAMBDA_LOG_STREAM_NAME"]
        .as_str()
        .is_some_and(|s| s.contains("/[$LATEST]")));
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "us-east-1");
    assert!(env["AWS_EXECUTION_ENV"]
        .as_str()
        .is_some_and(|e| e.starts_with("AWS_Lambda_")));
    assert_eq!(env["LAMBDA_TASK_ROOT"], env["LAMBDA_RUNTIME_DIR"]);
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(env["_HANDLER"], "contract.handler");
    assert!(
        server
            .stderr
            .wait_for(Duration::from_secs(5), |l| l
                == "[contract] response answered 202 then 400 InvalidRequestID")
            .is_some(),
        "a second result for a finished invocation is refused"
    );

    // Over 6 MiB: 413 for the runtime, 502 for the client.
    let response = client.request("GET", "/c/big", &[], b"");
    assert_eq!(response.status, 502);
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            == "[contract] big response answered 413 RequestEntityTooLarge")
        .is_some());
    let response = invoke_client.request(
        "POST",
        "/2015-03-31/functions/contract/invocations",
        &[],
        br#"{"rawPath": "/big"}"#,
    );
    assert_eq!(response.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(
        json(&response.body)["errorType"],
        "Function.ResponseSizeTooLarge"
    );

    // /error: the error JSON as the runtime posted it.
    let response = invoke_client.request(
        "POST",
        "/2015-03-31/functions/contract/invocations",
        &[],
        br#"{"rawPath": "/fail"}"#,
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(
        json(&response.body),
        serde_json::json!({"errorMessage": "custom failure", "errorType": "Custom.Failure"})
    );
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            == "[contract] error answered 202")
        .is_some());

    // A stream that fails half way (error trailer): the client gets the
    // head and what was sent, then the connection is cut (no final chunk).
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /c/streamfail HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    let received = String::from_utf8_lossy(&received);
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
    assert!(received.contains("partial "), "{received}");
    assert!(
        !received.ends_with("0\r\n\r\n"),
        "a failed stream must not look complete: {received:?}"
    );
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            == "[contract] streamed response failed: Runtime.StreamError")
        .is_some());
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            == "[contract] streamed failure answered 202")
        .is_some());

    // The client context of an Invoke API call reaches the runtime.
    let response = invoke_client.request(
        "POST",
        "/2015-03-31/functions/contract/invocations",
        &[("X-Amz-Client-Context", "eyJjdXN0b20iOnsiYSI6MX19")],
        b"{}",
    );
    let result = json(&response.body);
    let seen = json(result["body"].as_str().unwrap_or_default().as_bytes());
    assert_eq!(
        seen["headers"]["lambda-runtime-client-context"],
        r#"{"custom":{"a":1}}"#
    );
}
