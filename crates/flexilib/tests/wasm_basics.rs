//! WebAssembly routes (`wasm:PATH.wasm`), end to end through the server
//! with the C guest of `examples/wasm-hello` (built here with Zig's C
//! compiler and wit-component): the guest's answer, a request body in and a
//! streamed body out, and the limits: a trap is a 500 (backtrace in the
//! log only), a spinning guest is stopped by `cpu_ms`, a memory hog by
//! `memory_mb`, concurrent instances by `max_instances`; after each, the
//! route keeps serving.

mod common;
#[allow(dead_code)]
#[path = "common/wasm.rs"]
mod wasm;
#[allow(dead_code)]
#[path = "common/zig.rs"]
mod zig;

use std::time::Duration;

use common::{request_in_background, Client};

#[test]
fn the_guest_answers_and_echoes_and_streams() {
    let (_dir, config) = wasm::config("wasm-hello", "/ = wasm:{hello}\n");
    let server = wasm::server(&config).start();

    let hello = server.get("/greet?x=1", &[]);
    assert_eq!(hello.status, 200, "{}", hello.text());
    assert_eq!(hello.text(), "hello from a C component: GET /greet\n");
    assert_eq!(hello.header("content-type"), Some("text/plain"));

    // A request body into the guest and back, 300 KB of it (more than one
    // 64 KiB read and 4 KiB write of the guest).
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let echoed = server.client().request("POST", "/echo", &[], &body);
    assert_eq!(echoed.status, 200);
    assert_eq!(echoed.body.len(), body.len());
    assert!(echoed.body == body, "the echoed body differs");

    // Streamed: the guest writes a line, waits 200 ms, writes the next;
    // the client gets each as it is written.
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
    assert!(
        head.to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
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
fn a_trap_is_a_500_with_the_backtrace_in_the_log_only() {
    let (_dir, config) = wasm::config("wasm-trap", "/ = wasm:{hello}\n");
    let server = wasm::server(&config).start();
    let trapped = server.get("/trap", &[]);
    assert_eq!(trapped.status, 500);
    let text = trapped.text();
    assert!(
        !text.contains("backtrace") && !text.contains("unreachable") && !text.contains("wasm"),
        "the response shows the trap: {text}"
    );
    let logged = server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("guest trapped"))
        .expect("the trap is logged");
    assert!(logged.contains("wasm backtrace"), "{logged}");
    assert!(
        server
            .stderr
            .wait_for(Duration::from_secs(10), |l| l.contains("unreachable"))
            .is_some(),
        "the trap's cause is logged"
    );
    // With the guest's function names (its name section is kept).
    assert!(
        server
            .stderr
            .wait_for(Duration::from_secs(10), |l| l
                .contains("!exports_wasi_http_incoming_handler_handle"))
            .is_some(),
        "the backtrace names the guest's functions"
    );
    // The guest's stderr, written before it trapped, is in the log.
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l
            .contains("guest: about to trap"))
        .is_some());
    // The next request gets a fresh instance.
    let next = server.get("/", &[]);
    assert_eq!(next.status, 200, "{}", next.text());
}

#[test]
fn cpu_ms_stops_a_spinning_guest_and_the_route_keeps_serving() {
    let (_dir, config) = wasm::config(
        "wasm-cpu",
        "/long = wasm:{hello} cpu_ms=1500\n/ = wasm:{hello} cpu_ms=100\n",
    );
    let server = wasm::server(&config).start();

    // Stopped after its running time, answered 503, and the route serves on.
    let (response, took) = request_in_background(server.addr, "/spin", &[])
        .join()
        .expect("spinner");
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(
        response.text().contains("ran out of time"),
        "{}",
        response.text()
    );
    assert!(
        took >= Duration::from_millis(90) && took < Duration::from_secs(10),
        "stopped after {took:?}, cpu_ms=100"
    );
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("cpu_ms=100"))
        .is_some());
    assert_eq!(server.get("/", &[]).status, 200);

    // As many spinning guests as the machine has CPUs (the guests' threads)
    // do not hold up another request while they run: a guest yields its
    // thread at every epoch tick.
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let spinners: Vec<_> = (0..cpus)
        .map(|_| request_in_background(server.addr, "/long/spin", &[]))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let beside = server.get("/", &[]);
    assert_eq!(beside.status, 200);
    assert!(
        spinners.iter().all(|spinner| !spinner.is_finished()),
        "the request beside the spinning guests waited for them"
    );
    for spinner in spinners {
        let (response, _) = spinner.join().expect("spinner");
        assert_eq!(response.status, 503, "{}", response.text());
    }
}

#[test]
fn memory_mb_stops_a_memory_hog_and_the_route_keeps_serving() {
    let (_dir, config) = wasm::config(
        "wasm-memory",
        "/small = wasm:{hello} memory_mb=24\n/ = wasm:{hello}\n",
    );
    let server = wasm::server(&config).start();
    for (path, limit) in [("/small/hog", "memory_mb=24"), ("/hog", "memory_mb=128")] {
        let response = server.get(path, &[]);
        assert_eq!(response.status, 503, "{path}: {}", response.text());
        assert!(
            response.text().contains("out of memory"),
            "{}",
            response.text()
        );
        assert!(
            server
                .stderr
                .wait_for(Duration::from_secs(10), |l| l.contains(limit))
                .is_some(),
            "{path}: the limit is logged"
        );
    }
    assert_eq!(server.get("/small/", &[]).status, 200);
    assert_eq!(server.get("/", &[]).status, 200);
}

#[test]
fn max_instances_bounds_concurrent_requests() {
    let (_dir, config) = wasm::config(
        "wasm-instances",
        "/ = wasm:{hello} max_instances=1 cpu_ms=1500\n",
    );
    let server = wasm::server(&config).start();
    // A spinning guest holds the one instance for 1.5 s of running time; a
    // request while it runs is refused. (Tried again if the probe came
    // first, or took the instance before the spinning guest did.)
    let mut refused = false;
    for attempt in 1..=5u32 {
        let spinner = request_in_background(server.addr, "/spin", &[]);
        std::thread::sleep(Duration::from_millis(300) * attempt);
        let probe = Client::connect(server.addr).request("GET", "/", &[], b"");
        let (spun, took) = spinner.join().expect("spinner");
        if probe.status == 200 {
            continue;
        }
        assert_eq!(probe.status, 503, "{}", probe.text());
        assert!(probe.text().contains("too many"), "{}", probe.text());
        assert!(
            spun.status == 503 && spun.text().contains("ran out of time"),
            "the spinner did not hold the instance: {} after {took:?}",
            spun.text()
        );
        refused = true;
        break;
    }
    assert!(
        refused,
        "no request was refused while the instance was taken"
    );
    // The slot is free again.
    assert_eq!(server.get("/", &[]).status, 200);
}
