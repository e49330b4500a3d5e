//! The shipped worker examples, through the real server: `worker-hello`
//! (text and a streamed body) and `worker-kv` (a router module, KV with
//! metadata and TTLs, a visit counted in `waitUntil`) and `worker-bindings`
//! (TypeScript with D1, R2, a SQLite-backed Durable Object and a service
//! binding to a second worker, by fetch and by RPC).

mod common;

use std::time::{Duration, Instant};

use common::{worker_dir, workspace, ServerBuilder};

fn start() -> (common::TempDir, common::Server) {
    let examples = workspace().join("examples");
    let (dir, config) = worker_dir(
        "workers-examples",
        &[],
        &format!(
            "/hello = worker:{hello}\n/kv = worker:{kv} state=kv-state\n",
            hello = examples.join("worker-hello/index.js").display(),
            kv = examples.join("worker-kv/wrangler.toml").display(),
        ),
    );
    let server = ServerBuilder::new(&config).start();
    (dir, server)
}

#[test]
fn worker_hello_answers_and_streams() {
    let (_dir, server) = start();
    let hello = server.get("/hello/there", &[]);
    assert_eq!(
        hello.text(),
        "Hello from a Cloudflare Worker on FlexiLib! You asked for /hello/there\n"
    );
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l == "[/hello] GET /hello/there")
        .expect("console.log reaches stderr with the route");
    let mut client = server.client();
    client.send_raw(b"GET /hello/stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = client.read_response(true).expect("head");
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    let chunks = client.read_chunks().expect("body");
    assert_eq!(chunks.len(), 5);
    assert!(chunks[4].0.duration_since(chunks[0].0) >= Duration::from_millis(600));
}

#[test]
fn worker_kv_shortens_follows_counts_lists_and_deletes() {
    let (dir, server) = start();
    let mut client = server.client();
    let created = client.request(
        "POST",
        "/kv/links",
        &[("content-type", "application/json")],
        br#"{"url": "https://example.com/some/page"}"#,
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.text();
    let code = body
        .split("\"code\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a code")
        .to_string();
    assert!(body.contains(&format!("/kv/{code}")), "{body}");

    let follow = client.request("GET", &format!("/kv/{code}"), &[], b"");
    assert_eq!(follow.status, 302);
    assert_eq!(
        follow.header("location"),
        Some("https://example.com/some/page")
    );

    // The visit is counted after the response: poll for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = client
            .request("GET", &format!("/kv/stats/{code}"), &[], b"")
            .text();
        if stats.contains("\"visits\":1") {
            assert!(
                stats.contains("\"url\":\"https://example.com/some/page\""),
                "{stats}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the visit was never counted: {stats}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let listed = client.request("GET", "/kv/links", &[], b"").text();
    assert!(listed.contains(&format!("\"code\":\"{code}\"")), "{listed}");
    assert!(listed.contains("\"next\":null"), "{listed}");

    let short_ttl = client.request(
        "POST",
        "/kv/links",
        &[("content-type", "application/json")],
        br#"{"url": "https://example.com/", "ttl": 5}"#,
    );
    assert_eq!(short_ttl.status, 400);
    assert!(
        short_ttl.text().contains("at least 60"),
        "{}",
        short_ttl.text()
    );

    let deleted = client.request("DELETE", &format!("/kv/links/{code}"), &[], b"");
    assert_eq!(deleted.status, 204);
    assert_eq!(
        client
            .request("GET", &format!("/kv/{code}"), &[], b"")
            .status,
        404
    );
    assert!(dir.path().join("kv-state/kv/links.sqlite").exists());
}

#[test]
fn worker_bindings_uses_d1_r2_a_durable_object_and_a_service() {
    let examples = workspace().join("examples/worker-bindings");
    let (_dir, config) = worker_dir(
        "workers-examples-bindings",
        &[],
        &format!(
            "/bindings = worker:{app} state=state services=greeter\n/greeter = worker:{greeter}\n",
            app = examples.join("app/wrangler.toml").display(),
            greeter = examples.join("greeter/wrangler.toml").display(),
        ),
    );
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    let post = |client: &mut common::Client, path: &str, body: &[u8]| {
        client.request("POST", path, &[], body).text()
    };
    assert_eq!(post(&mut client, "/bindings/notes", b"milk"), r#"{"id":1}"#);
    assert_eq!(post(&mut client, "/bindings/notes", b"eggs"), r#"{"id":2}"#);
    assert_eq!(
        server.get("/bindings/notes", &[]).text(),
        r#"[{"id":1,"text":"milk"},{"id":2,"text":"eggs"}]"#
    );
    let put = client.request(
        "PUT",
        "/bindings/files/a.txt",
        &[("content-type", "text/plain")],
        b"file body",
    );
    assert!(
        put.text()
            .starts_with(r#"{"key":"a.txt","size":9,"etag":"\""#),
        "{}",
        put.text()
    );
    let file = server.get("/bindings/files/a.txt", &[]);
    assert_eq!(file.text(), "file body");
    assert_eq!(file.header("content-type"), Some("text/plain"));
    assert_eq!(server.get("/bindings/files/none", &[]).status, 404);
    assert_eq!(
        server.get("/bindings/visits", &[]).text(),
        "visit number 1\n"
    );
    assert_eq!(
        server.get("/bindings/visits", &[]).text(),
        "visit number 2\n"
    );
    assert_eq!(
        server.get("/bindings/greet?name=Ann", &[]).text(),
        "Hello, Ann, from the greeter worker\n"
    );
    assert_eq!(
        server.get("/bindings/greet-rpc?name=Ann", &[]).text(),
        "Hello, Ann, by RPC (a Date: true)\n"
    );
    assert!(
        !server
            .stderr
            .snapshot()
            .iter()
            .any(|l| l.contains("not emulated")),
        "{:?}",
        server.stderr.snapshot()
    );
}
