//! ABI 2 through the real server and the C example `examples/c-stream`:
//! route options and per-route instances, a watched file giving a new
//! instance generation under load, asynchronous completion without a
//! handler slot, streamed bodies with back-pressure, headers as given.

mod common;

use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{c_example, c_stream_example, Client, ServerBuilder, TempDir};

/// A directory with the stream example, a greeting file and a config.
fn setup(greeting: &str, options: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new("abi2");
    c_stream_example(&dir);
    dir.write("greeting.txt", greeting);
    let config = dir.write(
        "proxy.ini",
        &format!("/s = libstream.so greeting=greeting.txt {options}\n"),
    );
    (dir, config)
}

/// Replaces `name` in `dir` atomically (as editors and deploy tools do).
fn replace_file(dir: &TempDir, name: &str, text: &str) {
    let staged = dir.path().join(format!(".{name}.new"));
    std::fs::write(&staged, text).expect("write");
    std::fs::rename(&staged, dir.path().join(name)).expect("rename");
}

#[test]
fn options_reach_the_instance_and_a_changed_file_gives_a_new_generation_under_load() {
    let (dir, config) = setup("hello one\n", "");
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/s", &[]).text(), "hello one\n");

    // Clients hammer the route while the file changes, twice: once for a
    // good edit, once for a broken one.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, failures, served, addr) =
                (stop.clone(), failures.clone(), served.clone(), server.addr);
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                while !stop.load(Ordering::Relaxed) {
                    let response = client.request("GET", "/s", &[], b"");
                    let text = response.text();
                    if response.status != 200 || !text.starts_with("hello") {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // The load is running before the first edit.
    let deadline = Instant::now() + Duration::from_secs(10);
    while served.load(Ordering::Relaxed) < 40 {
        assert!(Instant::now() < deadline, "the load never started");
        std::thread::sleep(Duration::from_millis(5));
    }

    replace_file(&dir, "greeting.txt", "hello two\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/s", &[]).text() != "hello two\n" {
        assert!(Instant::now() < deadline, "the new instance never served");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A broken edit: the build fails and the current instance keeps serving.
    replace_file(&dir, "greeting.txt", "FAIL on purpose\n");
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("the greeting file says FAIL")
        })
        .expect("the failed build is logged");
    assert_eq!(server.get("/s", &[]).text(), "hello two\n");
    // Fixed again: a new generation.
    replace_file(&dir, "greeting.txt", "hello three\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/s", &[]).text() != "hello three\n" {
        assert!(Instant::now() < deadline, "the fixed instance never served");
        std::thread::sleep(Duration::from_millis(20));
    }

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client");
    }
    assert!(served.load(Ordering::Relaxed) > 20, "the load ran");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "failed requests");
    let stderr = server.stderr.snapshot().join("\n");
    assert!(stderr.contains("/s"), "the log names the route: {stderr}");
}

#[test]
fn fifty_pending_requests_on_two_slots_finish_in_the_time_of_one() {
    let (_dir, config) = setup("hi\n", "");
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "2")
        .start();
    let started = Instant::now();
    let requests: Vec<_> = (0..50)
        .map(|_| common::request_in_background(server.addr, "/s/later?ms=1000", &[]))
        .collect();
    for request in requests {
        let (response, _) = request.join().expect("client");
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "later after 1000ms: hi\n");
        assert_eq!(response.header("x-answered"), Some("later"));
    }
    // Holding a slot each, 50 requests on 2 slots would take 25 s.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "took {took:?}");
}

#[test]
fn the_first_streamed_chunk_arrives_before_the_last_is_produced() {
    let (_dir, config) = setup("hi\n", "interval_ms=150");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    client.send_raw(b"GET /s/events?n=5 HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = client.read_response(true).expect("head");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    let mut body = String::new();
    let mut first_at = None;
    loop {
        let mut size = String::new();
        client.reader().read_line(&mut size).expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex size");
        let mut chunk = vec![0; size + 2];
        client.reader().read_exact(&mut chunk).expect("chunk");
        if size == 0 {
            break;
        }
        first_at.get_or_insert_with(Instant::now);
        body.push_str(&String::from_utf8_lossy(&chunk[..size]));
    }
    let streamed_for = first_at.map(|at| at.elapsed()).unwrap_or_default();
    assert_eq!(
        body,
        "data: tick 1\n\ndata: tick 2\n\ndata: tick 3\n\ndata: tick 4\n\ndata: tick 5\n\n"
    );
    // Four more ticks 150 ms apart came after the first one.
    assert!(
        streamed_for >= Duration::from_millis(450),
        "the first chunk came only {streamed_for:?} before the end"
    );
}

/// The worker process's resident memory, in KiB.
fn worker_rss_kib(supervisor: u32) -> u64 {
    let children =
        std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children"))
            .expect("children");
    let worker = children.split_whitespace().next().expect("a worker");
    let status = std::fs::read_to_string(format!("/proc/{worker}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_slow_reader_does_not_make_memory_grow() {
    let (_dir, config) = setup("hi\n", "");
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/s", &[]).status, 200);
    let before = worker_rss_kib(server.child.id());
    // 300 MiB offered; the client reads 1 MiB and then nothing.
    let mut client = server.client();
    client.send_raw(b"GET /s/big?mb=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = client.read_response(true).expect("head");
    assert_eq!(head.status, 200);
    let mut some = vec![0; 1024 * 1024];
    client.reader().read_exact(&mut some).expect("some body");
    std::thread::sleep(Duration::from_secs(2));
    let during = worker_rss_kib(server.child.id());
    assert!(
        during < before + 40 * 1024,
        "RSS grew from {before} KiB to {during} KiB with a stalled reader"
    );
    drop(client);
    // The producer is released (its writes fail) and the server serves on.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.get("/s", &[]).text(), "hi\n");
}

#[test]
fn completion_after_the_client_left_and_a_request_never_completed() {
    let (_dir, config) = setup("hi\n", "");
    let server = ServerBuilder::new(&config)
        .env("LIBRARY_COMPLETION_TIMEOUT_SECONDS", "0.5")
        .start();
    let mut leaving = server.client();
    leaving.send_raw(b"GET /s/later?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(100));
    drop(leaving);
    // The library completes the abandoned call; the server is unaffected.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(server.get("/s", &[]).text(), "hi\n");
    let line = server
        .stdout
        .wait_for(Duration::from_secs(5), |l| l.contains("/s/later?ms=300"))
        .expect("the abandoned request is logged");
    assert!(line.contains("\" 499 "), "{line}");

    let started = Instant::now();
    let never = server.get("/s/never", &[]);
    assert_eq!(never.status, 504, "{}", never.text());
    assert!(started.elapsed() < Duration::from_secs(5));
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("did not complete the request in time")
        })
        .expect("the timeout is logged");
}

#[test]
fn an_aborted_stream_is_never_a_complete_body_and_headers_go_as_given() {
    let (_dir, config) = setup("hi\n", "");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    client.send_raw(b"GET /s/abort HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = client.read_response(true).expect("head");
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    let mut rest = Vec::new();
    let _ = client.reader().read_to_end(&mut rest);
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("partial"), "{rest}");
    assert!(
        !rest.ends_with("0\r\n\r\n"),
        "an aborted body ended like a complete one: {rest:?}"
    );

    // A producer that writes and ends the body before the head is returned.
    let quick = server.get("/s/quick", &[]);
    assert_eq!(quick.status, 200);
    assert_eq!(quick.text(), "written before the head\n");

    let bare = server.get("/s/bare", &[]);
    assert_eq!(bare.text(), "no content type\n");
    assert_eq!(bare.header("content-type"), None, "{:?}", bare.headers);
}

#[test]
fn options_for_a_library_without_instances_are_a_config_error() {
    let dir = TempDir::new("abi2-noopt");
    c_example(&dir);
    let config = dir.write("proxy.ini", "# plain\n/c = libsample_c.so mode=fast\n");
    let (status, stderr) = ServerBuilder::new(&config).run_to_exit();
    assert!(!status.success());
    assert!(
        stderr.contains("proxy.ini:2") && stderr.contains("takes no options"),
        "{stderr}"
    );
}
