//! A JavaScript guest on a `wasm:` route, end to end through the server:
//! `examples/wasm-js`, built here with componentize-js and jco from npm
//! (StarlingMonkey's fetch event bound to `wasi:http/incoming-handler`).
//! Its answers depend on the request (method, path, a header, the body);
//! a body streams through it both ways; its own 404; an uncaught exception
//! is a 500 with the stack in the log only, and the route serves on; and
//! the sandbox holds for it as for the C guest: no environment, no
//! directory and no outbound host unless the route's options grant them.

mod common;
#[path = "common/upstream.rs"]
mod upstream;
#[allow(dead_code)]
#[path = "common/wasm.rs"]
mod wasm;
#[allow(dead_code)]
#[path = "common/zig.rs"]
mod zig;

use std::time::{Duration, Instant};

use common::{Server, TempDir};

/// A temp dir with `proxy.ini` holding `rules` (`{js}` stands for the
/// JavaScript guest's path) and a server for it, with the guest loaded.
fn serve(tag: &str, rules: &str, host_env: &[(&str, &str)]) -> (TempDir, Server) {
    let js = wasm::js_guest();
    let dir = TempDir::new(tag);
    std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
    std::fs::write(dir.path().join("data/hello.txt"), "file content\n").expect("data file");
    let config = dir.write(
        "proxy.ini",
        &rules.replace("{js}", &js.display().to_string()),
    );
    let mut builder = wasm::server(&config);
    for (name, value) in host_env {
        builder = builder.env(name, value);
    }
    let server = builder.start();
    let routes = rules.lines().filter(|l| l.contains("wasm:")).count();
    let ready = server
        .stderr
        .wait_for_nth(wasm::JS_COMPILE_TIMEOUT, routes - 1, |l| {
            l.contains("component ready")
        });
    assert!(
        ready.is_some(),
        "the JavaScript guest was not loaded:\n{}",
        server.stderr.snapshot().join("\n")
    );
    (dir, server)
}

/// The body of a `GET` that must answer 200.
fn text(server: &Server, path: &str) -> String {
    let response = server.get(path, &[]);
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    response.text()
}

#[test]
fn the_js_guest_answers_from_the_request() {
    let (_dir, server) = serve("wasm-js-hello", "/ = wasm:{js}\n", &[]);

    let hello = server.get("/hello?x=1", &[("x-name", "Ada")]);
    assert_eq!(hello.status, 200, "{}", hello.text());
    assert_eq!(
        hello.text(),
        "hello from a JS component: GET /hello, hello Ada\n"
    );
    assert_eq!(hello.header("content-type"), Some("text/plain"));

    // Another method, another path, another header value: another answer.
    let put = server
        .client()
        .request("PUT", "/a/b/hello", &[("X-Name", "Grace")], b"ignored");
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(
        put.text(),
        "hello from a JS component: PUT /a/b/hello, hello Grace\n"
    );
    assert_eq!(
        text(&server, "/"),
        "hello from a JS component: GET /\n",
        "no x-name, no greeting"
    );

    // The guest's own 404, not the server's.
    let missing = server.get("/no/such/page", &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), "no such page: /no/such/page\n");
}

#[test]
fn a_body_streams_through_the_js_guest_both_ways() {
    let (_dir, server) = serve("wasm-js-echo", "/ = wasm:{js}\n", &[]);

    // 300 KB in and back out, with its content type.
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let echoed = server.client().request(
        "POST",
        "/echo",
        &[("content-type", "application/x-flexilib-test")],
        &body,
    );
    assert_eq!(echoed.status, 200, "{}", echoed.text());
    assert_eq!(
        echoed.header("content-type"),
        Some("application/x-flexilib-test")
    );
    assert_eq!(echoed.body.len(), body.len());
    assert!(echoed.body == body, "the echoed body differs");
    let small =
        server
            .client()
            .request("POST", "/echo", &[("content-type", "text/plain")], b"ping");
    assert_eq!(small.text(), "ping");

    // Three lines 200 ms apart (setTimeout in the guest), each sent as it
    // is written.
    let mut client = server.client();
    client.send_raw(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut head = String::new();
    loop {
        let mut line = String::new();
        std::io::BufRead::read_line(client.reader(), &mut line).expect("head line");
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let chunks = client.read_chunks().expect("a whole chunked body");
    let text: String = chunks
        .iter()
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .collect();
    assert_eq!(text, "line 1\nline 2\nline 3\n");
    let (first, last) = (chunks[0].0, chunks[chunks.len() - 1].0);
    assert!(
        last.duration_since(first) >= Duration::from_millis(300),
        "the lines arrived together, not as written: {:?}",
        last.duration_since(first)
    );
}

#[test]
fn an_uncaught_exception_is_a_500_with_the_stack_in_the_log_only() {
    let (_dir, server) = serve("wasm-js-throw", "/ = wasm:{js}\n", &[]);
    let thrown = server.get("/throw", &[]);
    assert_eq!(thrown.status, 500);
    assert!(
        !thrown.text().contains("on purpose") && !thrown.text().contains("app.js"),
        "the response shows the exception: {}",
        thrown.text()
    );
    // The engine writes the exception and its stack to the guest's stderr,
    // which is in the server's log with the route.
    for wanted in ["the guest threw on purpose", "app.js:"] {
        assert!(
            server
                .stderr
                .wait_for(Duration::from_secs(10), |l| l.contains("[/] guest:")
                    && l.contains(wanted))
                .is_some(),
            "{wanted:?} is not in the log:\n{}",
            server.stderr.snapshot().join("\n")
        );
    }
    // The next request gets a fresh instance.
    assert_eq!(text(&server, "/"), "hello from a JS component: GET /\n");
}

#[test]
fn the_sandbox_holds_for_the_js_guest() {
    let upstream = upstream::Upstream::start("up");
    let port = upstream.addr.port();
    let (_dir, server) = serve(
        "wasm-js-sandbox",
        &format!(
            "/granted = wasm:{{js}} env.SECRET=s3cret dir=data:/data allow_outbound=127.0.0.1:{port}\n\
             / = wasm:{{js}}\n"
        ),
        // The server's own environment must not reach the guest.
        &[("SECRET", "from-the-host")],
    );

    // Nothing granted: no variable at all, no directory, no file.
    assert_eq!(text(&server, "/env"), "[]");
    assert_eq!(text(&server, "/env?SECRET"), "(unset)");
    assert_eq!(text(&server, "/env?PATH"), "(unset)");
    assert_eq!(text(&server, "/dirs"), "[]");
    for path in ["/data/hello.txt", "/etc/passwd"] {
        let answer = text(&server, &format!("/file?{path}"));
        assert!(answer.starts_with("cannot open"), "{path}: {answer}");
    }

    // Granted: only what the options name.
    assert_eq!(text(&server, "/granted/env"), r#"["SECRET"]"#);
    assert_eq!(text(&server, "/granted/env?SECRET"), "s3cret");
    assert_eq!(text(&server, "/granted/dirs"), r#"["/data"]"#);
    assert_eq!(
        text(&server, "/granted/file?/data/hello.txt"),
        "file content\n"
    );
    for path in [
        "/etc/passwd",
        "/data/../proxy.ini",
        "/data/../../etc/passwd",
    ] {
        let answer = text(&server, &format!("/granted/file?{path}"));
        assert!(answer.starts_with("cannot open"), "{path}: {answer}");
    }

    // Outbound HTTP: refused at once unless allowed, and the refused
    // request never reaches the upstream.
    let target = format!("http://127.0.0.1:{port}/echo-me");
    let started = Instant::now();
    let refused = text(&server, &format!("/fetch?{target}"));
    assert!(refused.starts_with("outbound error: "), "{refused}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused slowly: {:?}",
        started.elapsed()
    );
    assert_eq!(
        upstream.count(),
        0,
        "a refused request reached the upstream"
    );
    let fetched = text(&server, &format!("/granted/fetch?{target}"));
    assert!(fetched.starts_with("upstream said: 200 "), "{fetched}");
    assert!(fetched.contains("/echo-me"), "{fetched}");
    assert_eq!(upstream.count(), 1);
}
