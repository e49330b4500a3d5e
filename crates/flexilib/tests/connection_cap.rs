//! The connection cap (`MAX_CONNECTIONS`) and running out of file
//! descriptors: at the cap an idle keep-alive connection makes room; with
//! none idle, or with no descriptor left, a newcomer is answered 503 at
//! once instead of waiting unanswered in the listen queue.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{standard_config, Client, Response, Server, ServerBuilder};

/// Connects and sends `GET path`; the response, or `None` if the server
/// closed the connection without one.
fn try_get(addr: SocketAddr, path: &str) -> Option<Response> {
    let mut client = Client::connect(addr);
    client.send_raw(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    client.read_response(false)
}

/// A client that sent part of a request head: busy, never idle.
fn half_sent(addr: SocketAddr) -> Client {
    let mut client = Client::connect(addr);
    client.send_raw(b"GET /half HTTP/1.1\r\nHost: localhost\r\n");
    client
}

fn is_at_capacity(response: &Response) -> bool {
    response.status == 503
        && response.header("connection") == Some("close")
        && response.text().contains("connection limit")
}

/// Repeats `GET path` on fresh connections until one is served 200;
/// every other answer must be the at-capacity 503.
fn get_until_served(server: &Server, path: &str) -> Response {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = try_get(server.addr, path).expect("an answer, not a dropped connection");
        if response.status == 200 {
            return response;
        }
        assert!(is_at_capacity(&response), "{response:?}");
        assert!(Instant::now() < deadline, "never served: {response:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn at_the_cap_an_idle_keep_alive_connection_makes_room() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("MAX_CONNECTIONS", "3")
        .start();
    let mut idle: Vec<Client> = (0..3).map(|_| server.client()).collect();
    for client in &mut idle {
        assert_eq!(client.request("GET", "/", &[], b"").status, 200);
    }
    // The three are at the cap; once they have been idle long enough to
    // park, a newcomer closes one of them and is served.
    get_until_served(&server, "/newcomer");
    let closed: Vec<bool> = idle
        .iter_mut()
        .map(|client| client.is_closed_within(Duration::from_millis(500)))
        .collect();
    assert_eq!(
        closed.iter().filter(|&&closed| closed).count(),
        1,
        "exactly one idle connection made room: {closed:?}"
    );
    for (client, closed) in idle.iter_mut().zip(closed) {
        if !closed {
            assert_eq!(client.request("GET", "/still", &[], b"").status, 200);
        }
    }
}

#[test]
fn at_the_cap_with_no_idle_connection_a_newcomer_gets_503_and_is_logged() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("MAX_CONNECTIONS", "2")
        .start();
    let mut busy: Vec<Client> = (0..2).map(|_| half_sent(server.addr)).collect();
    // Both are reading a request head, so neither may be closed.
    std::thread::sleep(Duration::from_millis(300));
    let refused = try_get(server.addr, "/refused").expect("an answer");
    assert!(is_at_capacity(&refused), "{refused:?}");
    assert!(
        server
            .stdout
            .wait_for(Duration::from_secs(5), |line| line
                .contains("\"GET /refused HTTP/1.1\" 503"))
            .is_some(),
        "the refusal is logged: {:?}",
        server.stdout.snapshot()
    );
    // A busy connection finishes its request and leaves: room again.
    let mut first = busy.remove(0);
    first.send_raw(b"Connection: close\r\n\r\n");
    assert_eq!(first.read_response(false).expect("answer").status, 200);
    drop(first);
    get_until_served(&server, "/after");
    // The other one was never disturbed.
    busy[0].send_raw(b"\r\n");
    assert_eq!(busy[0].read_response(false).expect("answer").status, 200);
}

#[test]
fn out_of_file_descriptors_a_newcomer_is_answered_not_left_waiting() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .shell_prefix("ulimit -n 64")
        // Far above what 64 descriptors allow: the process runs out first.
        .env("MAX_CONNECTIONS", "1000")
        // The half-sent requests hold their descriptors for the test.
        .env("HEADER_READ_TIMEOUT_SECONDS", "120")
        .start();
    // Half-sent requests until the process runs out of descriptors (it
    // says so), however many it holds besides: each holds one for the
    // header-read timeout. The few past the limit are answered 503.
    // The route's library is loaded first: loading it needs descriptors
    // (the copy it runs from), which the test is about to use up.
    assert_eq!(server.get("/warm", &[]).status, 200);
    let mut busy: Vec<Client> = Vec::new();
    let out_of_fds = |server: &Server| {
        server
            .stderr
            .snapshot()
            .iter()
            .any(|line| line.contains("out of file descriptors"))
    };
    while !out_of_fds(&server) {
        assert!(busy.len() < 200, "64 descriptors never ran out");
        busy.push(half_sent(server.addr));
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut client = Client::connect(server.addr);
    client
        .stream()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    client.send_raw(b"GET /late HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let started = Instant::now();
    let response = client.read_response(false);
    let response = response.unwrap_or_else(|| {
        panic!(
            "no answer after {:?}; stderr: {:?}",
            started.elapsed(),
            server.stderr.snapshot()
        )
    });
    // 503 while the process is out of descriptors; 200 if a refused
    // client's descriptor came free first (each is held only for a short
    // linger): either way answered, not left in the listen queue.
    assert!(
        is_at_capacity(&response) || response.status == 200,
        "{response:?}"
    );
}
