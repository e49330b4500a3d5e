//! Cloudflare Workers emulation, streaming: a `TransformStream` body
//! reaches the client write by write, a large `ReadableStream` body comes
//! whole at the client's pace, and outbound `fetch()` (to this very
//! server, over loopback) streams its response through.

mod common;

use std::time::{Duration, Instant};

use common::{worker_dir, ServerBuilder};

const APP: &str = r#"
const encoder = new TextEncoder();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === '/ticks') {
      const { readable, writable } = new TransformStream();
      const writer = writable.getWriter();
      ctx.waitUntil((async () => {
        for (let i = 1; i <= 5; i++) {
          await writer.write(encoder.encode(`tick ${i}\n`));
          if (i < 5) await sleep(150);
        }
        await writer.close();
      })());
      return new Response(readable, { headers: { 'content-type': 'text/plain' } });
    }
    if (url.pathname === '/big') {
      const mb = Number(url.searchParams.get('mb'));
      let sent = 0;
      const chunk = new Uint8Array(64 * 1024).fill(120);
      return new Response(new ReadableStream({
        pull(controller) {
          if (sent >= mb * 16) return controller.close();
          sent++;
          controller.enqueue(chunk);
        },
      }));
    }
    if (url.pathname === '/relay') {
      // Outbound fetch to this server; its streamed body passed through.
      const upstream = await fetch(new URL('/ticks', request.url));
      return new Response(upstream.body, { headers: { 'x-upstream-status': String(upstream.status) } });
    }
    if (url.pathname === '/echo-upper') {
      const upper = new TransformStream({
        transform(chunk, controller) {
          controller.enqueue(encoder.encode(new TextDecoder().decode(chunk).toUpperCase()));
        },
      });
      return new Response(request.body.pipeThrough(upper));
    }
    return new Response('not here', { status: 404 });
  },
};
"#;

fn start() -> (common::TempDir, common::Server) {
    let (dir, config) = worker_dir("workers-streams", &[("app.js", APP)], "/ = worker:app.js\n");
    let server = ServerBuilder::new(&config).start();
    (dir, server)
}

/// Reads a chunked response: the body and how long after the first chunk
/// the last one came.
fn chunked(client: &mut common::Client, path: &str) -> (common::Response, String, Duration) {
    // The worker fetches from the Host it was asked at: make it this server.
    let host = client.stream().peer_addr().expect("peer address");
    client.send_raw(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
    let head = client.read_response(true).expect("head");
    let chunks = client.read_chunks().expect("a complete body");
    let body: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    let spread = match (chunks.first(), chunks.last()) {
        (Some(first), Some(last)) => last.0.duration_since(first.0),
        _ => Duration::ZERO,
    };
    (head, String::from_utf8_lossy(&body).into_owned(), spread)
}

#[test]
fn each_write_reaches_the_client_as_it_happens() {
    let (_dir, server) = start();
    let mut client = server.client();
    let (head, body, spread) = chunked(&mut client, "/ticks");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(head.header("content-type"), Some("text/plain"));
    assert_eq!(body, "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n");
    // Four more writes 150 ms apart came after the first one arrived.
    assert!(
        spread >= Duration::from_millis(450),
        "the first chunk arrived only {spread:?} before the last"
    );
}

#[test]
fn outbound_fetch_streams_its_body_through() {
    let (_dir, server) = start();
    let mut client = server.client();
    let (head, body, spread) = chunked(&mut client, "/relay");
    assert_eq!(head.header("x-upstream-status"), Some("200"));
    assert_eq!(body, "tick 1\ntick 2\ntick 3\ntick 4\ntick 5\n");
    assert!(
        spread >= Duration::from_millis(450),
        "the relayed body was buffered ({spread:?})"
    );
}

#[test]
fn a_large_stream_arrives_whole_at_the_client_s_pace() {
    let (_dir, server) = start();
    let mut client = server.client();
    client.send_raw(b"GET /big?mb=8 HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = client.read_response(true).expect("head");
    assert_eq!(head.status, 200);
    // A slow start: the worker must wait (back-pressure), not fail.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let chunks = client.read_chunks().expect("a complete body");
    let total: usize = chunks.iter().map(|(_, c)| c.len()).sum();
    assert_eq!(total, 8 * 1024 * 1024);
    assert!(chunks.iter().all(|(_, c)| c.iter().all(|&b| b == b'x')));
    assert!(started.elapsed() < Duration::from_secs(20));
    // The connection is still usable afterwards.
    let again = client.request("GET", "/nowhere", &[], b"");
    assert_eq!(again.status, 404);
}

#[test]
fn a_request_body_streams_through_a_transform() {
    let (_dir, server) = start();
    let mut client = server.client();
    client
        .send_raw(b"POST /echo-upper HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello there");
    let head = client.read_response(true).expect("head");
    assert_eq!(head.status, 200);
    let chunks = client.read_chunks().expect("body");
    let body: Vec<u8> = chunks.into_iter().flat_map(|(_, c)| c).collect();
    assert_eq!(body, b"HELLO THERE");
}
