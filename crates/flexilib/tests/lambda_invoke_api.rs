//! The Lambda Invoke API's exposure and bounds: only on its own listener,
//! asynchronous invocations bounded (429, never a 202 that does not run,
//! never ahead of Function URL requests), and results that HTTP cannot
//! frame answered 502.

mod common;
#[path = "common/lambda.rs"]
mod lambda;

use std::time::Duration;

use common::{ServerBuilder, TempDir};

/// A handler with the behaviours the tests below need.
const APP: &str = r#"
import time

def handler(event, context):
    path = event.get("rawPath", "")
    last = "/" + path.rsplit("/", 1)[-1]
    if last == "/slow":
        time.sleep(int(event["queryStringParameters"]["ms"]) / 1000)
        return {"statusCode": 200, "body": "slept " + context.aws_request_id}
    if last == "/s101":
        return {"statusCode": 101, "headers": {"upgrade": "websocket"}}
    if last == "/s100":
        return {"statusCode": 100}
    if last == "/many":
        return {"statusCode": 200, "headers": {"x-h%d" % i: "v" for i in range(50000)}}
    if last == "/cookies":
        return {"statusCode": 200, "cookies": ["c%d=1" % i for i in range(5000)]}
    return {"statusCode": 200, "body": "hello " + path}
"#;

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("JSON body")
}

#[test]
fn the_invoke_api_is_off_the_public_port() {
    let dir = TempDir::new("invoke-private");
    dir.write("app.py", APP);
    // The function is reachable only with the right Host.
    let config =
        "Host: internal.example /fn = lambda:python3 -m awslambdaric app.handler name=secret\n";
    let path = dir.write("proxy.ini", config);
    let server = ServerBuilder::new(&path)
        .env("PATH", &lambda::path_with_python())
        .start();
    let response = server.client().request(
        "POST",
        "/2015-03-31/functions/secret/invocations",
        &[("Host", "anything")],
        br#"{"requestContext": {"authorizer": {"jwt": {"claims": {"sub": "admin"}}}}}"#,
    );
    assert_eq!(
        response.status, 404,
        "no route: the path is only a path on the public port"
    );
    assert!(
        !server
            .stderr
            .snapshot()
            .iter()
            .any(|l| l.contains("invoke_api=")),
        "off by default"
    );
    // With a catch-all route, the invoke path is a request like any other.
    drop(server);
    let config = "/ = lambda:python3 -m awslambdaric app.handler name=root\n";
    let server = lambda::start(&dir, config);
    let response =
        server
            .client()
            .request("POST", "/2015-03-31/functions/root/invocations", &[], b"{}");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.text(),
        "hello /2015-03-31/functions/root/invocations",
        "the function saw a Function URL request, not an invocation"
    );
    // The Invoke API's own listener answers it as AWS does.
    let mut invoke = server.invoke_client();
    let response = invoke.request(
        "POST",
        "/2015-03-31/functions/root/invocations",
        &[],
        br#"{"rawPath": "/x"}"#,
    );
    assert_eq!(response.status, 200);
    assert_eq!(json(&response.body)["body"], "hello /x");
    let response = invoke.request("GET", "/anything", &[], b"");
    assert_eq!(response.status, 404);
    assert_eq!(
        response.header("x-amzn-errortype"),
        Some("UnknownOperationException")
    );
    // Invoke API requests are in the access log.
    assert!(server
        .stdout
        .wait_for(Duration::from_secs(5), |l| l.contains(
            "\"POST /2015-03-31/functions/root/invocations HTTP/1.1\" 200"
        ))
        .is_some());
}

#[test]
fn event_invocations_are_bounded_and_never_dropped() {
    let dir = TempDir::new("invoke-events");
    dir.write("app.py", APP);
    let config =
        "/fn = lambda:python3 -m awslambdaric app.handler name=ev concurrency=1 queue=4 timeout=10\n";
    let server = lambda::builder(&dir, config)
        .env("EVENT_QUEUE_MAX", "2")
        .env("EVENT_QUEUE_MAX_BYTES", "4096")
        .env("MAX_BODY_BYTES", "8192")
        .start();
    let mut invoke = server.invoke_client();
    let event =
        |ms: u32| format!(r#"{{"rawPath": "/slow", "queryStringParameters": {{"ms": "{ms}"}}}}"#);
    let mut accepted = Vec::new();
    for _ in 0..2 {
        let response = invoke.request(
            "POST",
            "/2015-03-31/functions/ev/invocations",
            &[("X-Amz-Invocation-Type", "Event")],
            event(700).as_bytes(),
        );
        assert_eq!(response.status, 202);
        accepted.push(response.header("x-amzn-requestid").unwrap().to_string());
    }
    // The third finds the queue full: 429, not a 202 that never runs.
    let response = invoke.request(
        "POST",
        "/2015-03-31/functions/ev/invocations",
        &[("X-Amz-Invocation-Type", "Event")],
        event(700).as_bytes(),
    );
    assert_eq!(response.status, 429);
    assert_eq!(
        response.header("x-amzn-errortype"),
        Some("TooManyRequestsException")
    );
    // A Function URL request is not throttled by the events waiting: it
    // waits in its own queue and goes before the second event.
    let response = server.get("/fn/hello", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), "hello /fn/hello");
    // Every accepted event ran.
    for id in &accepted {
        assert!(
            server
                .stderr
                .wait_for(Duration::from_secs(10), |l| l
                    .starts_with(&format!("[ev] REPORT RequestId: {id}\t")))
                .is_some(),
            "event {id} ran"
        );
    }
    // Room again once they ran.
    let response = invoke.request(
        "POST",
        "/2015-03-31/functions/ev/invocations",
        &[("X-Amz-Invocation-Type", "Event")],
        event(1).as_bytes(),
    );
    assert_eq!(response.status, 202);
    // Bytes count too: an event over EVENT_QUEUE_MAX_BYTES never fits.
    let mut big = event(1).into_bytes();
    big.truncate(big.len() - 1);
    big.extend_from_slice(format!(r#", "pad": "{}"}}"#, "x".repeat(5000)).as_bytes());
    let response = invoke.request(
        "POST",
        "/2015-03-31/functions/ev/invocations",
        &[("X-Amz-Invocation-Type", "Event")],
        &big,
    );
    assert_eq!(response.status, 429);
    // MAX_BODY_BYTES holds for the Invoke API.
    let huge = vec![b' '; 9000];
    let response = invoke.request("POST", "/2015-03-31/functions/ev/invocations", &[], &huge);
    assert_eq!(response.status, 413);
}

#[test]
fn results_http_cannot_frame_are_502() {
    let dir = TempDir::new("invoke-framing");
    dir.write("app.py", APP);
    let server = lambda::start(
        &dir,
        "/fn = lambda:python3 -m awslambdaric app.handler name=frame\n",
    );
    let mut client = server.client();
    for path in ["/fn/s101", "/fn/s100", "/fn/many", "/fn/cookies"] {
        let response = client.request("GET", path, &[], b"");
        assert_eq!(response.status, 502, "{path}");
        // The connection is still framed: the next request is answered.
        let response = client.request("GET", "/fn/ok", &[], b"");
        assert_eq!(response.status, 200, "after {path}");
        assert_eq!(response.text(), "hello /fn/ok");
    }
    // Logged as 502 (not a dropped connection logged 499), with the reason.
    for path in ["/fn/s101", "/fn/many"] {
        assert!(
            server
                .stdout
                .wait_for(Duration::from_secs(5), |l| l
                    .contains(&format!("\"GET {path} HTTP/1.1\" 502")))
                .is_some(),
            "{path} logged 502"
        );
    }
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("invalid statusCode 101"))
        .is_some());
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("header fields"))
        .is_some());
}
