//! WebSockets in Cloudflare Workers: a worker accepts an upgrade with a
//! `WebSocketPair` and answers `101` with the client end; a real client
//! (tungstenite) talks to it.

mod common;

use common::{worker_dir, ServerBuilder};
use std::time::Duration;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Bytes, Message};

const ECHO: &str = r#"
export default {
  async fetch(request, env, ctx) {
    if (request.headers.get('upgrade') !== 'websocket') {
      if (new URL(request.url).pathname.endsWith('/wrong')) {
        const [client, server] = Object.values(new WebSocketPair());
        server.accept();
        return new Response(null, { status: 101, webSocket: client });
      }
      return new Response('expected a WebSocket', { status: 426 });
    }
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    // Sent before the response: delivered once the connection is up.
    server.send('welcome');
    let count = 0;
    server.addEventListener('message', (event) => {
      count += 1;
      if (event.data === 'close') {
        server.close(4000, 'asked to');
      } else if (event.data === 'later') {
        setTimeout(() => server.send(`later ${count}`), 20);
      } else if (typeof event.data === 'string') {
        server.send(`echo ${count}: ${event.data}`);
      } else {
        const bytes = new Uint8Array(event.data);
        server.send(bytes.map((b) => b + 1));
      }
    });
    server.onclose = (event) => {
      console.log(`closed code=${event.code} reason=${event.reason} clean=${event.wasClean}`);
    };
    return new Response(null, { status: 101, webSocket: client });
  },
};
"#;

fn text(message: Message) -> String {
    match message {
        Message::Text(text) => text.as_str().to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn a_worker_echoes_over_a_websocket() {
    let (_dir, config) = worker_dir("ws-echo", &[("echo.js", ECHO)], "/ws = worker:echo.js\n");
    let server = ServerBuilder::new(&config).start();
    let url = format!("ws://{}/ws", server.addr);

    let (mut socket, response) = tungstenite::connect(&url).expect("handshake");
    assert_eq!(response.status(), 101);
    assert_eq!(text(socket.read().expect("welcome")), "welcome");
    socket.send(Message::text("hello")).expect("send");
    assert_eq!(text(socket.read().expect("echo")), "echo 1: hello");
    socket
        .send(Message::binary(Bytes::from_static(&[1, 2, 3])))
        .expect("send");
    match socket.read().expect("binary echo") {
        Message::Binary(bytes) => assert_eq!(&bytes[..], &[2, 3, 4]),
        other => panic!("expected binary, got {other:?}"),
    }
    // A ping is answered by the runtime.
    socket
        .send(Message::Ping(Bytes::from_static(b"p")))
        .expect("ping");
    match socket.read().expect("pong") {
        Message::Pong(payload) => assert_eq!(&payload[..], b"p"),
        other => panic!("expected pong, got {other:?}"),
    }
    // A handler's timer runs, and its message goes out.
    socket.send(Message::text("later")).expect("send");
    assert_eq!(text(socket.read().expect("later")), "later 3");
    // The worker closes with its code and reason.
    socket.send(Message::text("close")).expect("send");
    match socket.read().expect("close") {
        Message::Close(Some(frame)) => {
            assert_eq!(frame.code, CloseCode::from(4000));
            assert_eq!(frame.reason.as_str(), "asked to");
        }
        other => panic!("expected a close, got {other:?}"),
    }
    // The client answers the close (as browsers do), and the connection ends.
    assert!(matches!(
        socket.read(),
        Err(tungstenite::Error::ConnectionClosed)
    ));
    // The close event reaches the worker with the client's answer.
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("closed code=4000 reason=asked to clean=true"))
        .is_some());

    // The client closes: the worker sees its code and reason.
    let (mut socket, _) = tungstenite::connect(&url).expect("handshake");
    assert_eq!(text(socket.read().expect("welcome")), "welcome");
    socket
        .close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .expect("close");
    loop {
        match socket.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(error) => panic!("close handshake: {error}"),
        }
    }
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("closed code=1000 reason=bye clean=true"))
        .is_some());

    // A client that goes away without a close: 1006, not clean.
    let (socket, _) = tungstenite::connect(&url).expect("handshake");
    drop(socket);
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("closed code=1006 reason= clean=false"))
        .is_some());

    // Plain requests are the worker's to answer; a WebSocket returned to
    // one is the worker's error (500), as on Cloudflare.
    assert_eq!(server.get("/ws", &[]).status, 426);
    let wrong = server.get("/ws/wrong", &[]);
    assert_eq!(wrong.status, 500, "{}", wrong.text());
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains(
            "which did not contain the header \"Upgrade: websocket\"."
        ))
        .is_some());
}

#[test]
fn an_oversized_message_closes_the_socket_with_1009() {
    let source = r#"
export default {
  fetch() {
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.addEventListener('message', (e) => server.send(`got ${e.data.length}`));
    server.addEventListener('close', (e) => console.log(`closed code=${e.code} clean=${e.wasClean}`));
    return new Response(null, { status: 101, webSocket: client });
  },
};
"#;
    let (_dir, config) = worker_dir("ws-big", &[("big.js", source)], "/ws = worker:big.js\n");
    let server = ServerBuilder::new(&config).start();
    let (mut socket, _) =
        tungstenite::connect(format!("ws://{}/ws", server.addr)).expect("handshake");
    socket.send(Message::text("x".repeat(1000))).expect("send");
    assert_eq!(text(socket.read().expect("answer")), "got 1000");
    // Over Cloudflare's 32 MiB limit.
    let _ = socket.send(Message::binary(vec![0u8; (32 << 20) + 1]));
    let mut code = None;
    loop {
        match socket.read() {
            Ok(Message::Close(frame)) => code = frame.map(|f| f.code),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert_eq!(code, Some(CloseCode::Size));
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("closed code=1006 clean=false"))
        .is_some());
    // The route goes on serving.
    let (mut socket, _) =
        tungstenite::connect(format!("ws://{}/ws", server.addr)).expect("handshake");
    socket.send(Message::text("ok")).expect("send");
    assert_eq!(text(socket.read().expect("answer")), "got 2");
}
