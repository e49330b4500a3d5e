//! ABI 3: a library answers `101 Switching Protocols` and takes the
//! connection over (the C header's contract, from C).

mod common;

use common::{compile_c_text, ServerBuilder, TempDir};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Upper-cases what the client sends and echoes it; ends the connection
/// when the client closes its side.
const UPPER_ECHO: &str = r#"
#include "flexilib.h"
#include <stdlib.h>
#include <string.h>

size_t flexilib_abi_version(void) { return FLEXILIB_ABI_VERSION; }
int flexilib_init(size_t host_abi_version) { return host_abi_version < 3; }

struct conn { const struct flexilib_host *host; uint64_t call; };

/* Runs on an I/O thread: it must not wait, so writes do not block. */
static void readable(void *data) {
    struct conn *c = data;
    char buf[4096];
    for (;;) {
        size_t n = 0;
        int status = c->host->stream_read(c->call, buf, sizeof buf, &n);
        if (status == FLEXILIB_CLOSED) {
            c->host->stream_write(c->call, "BYE\n", 4, FLEXILIB_WRITE_NONBLOCK);
            c->host->stream_end(c->call, 1);
            free(c);
            return;
        }
        if (status != FLEXILIB_OK) { free(c); return; }
        if (n == 0) break;
        for (size_t i = 0; i < n; i++)
            if (buf[i] >= 'a' && buf[i] <= 'z') buf[i] -= 32;
        c->host->stream_write(c->call, buf, n, FLEXILIB_WRITE_NONBLOCK);
    }
    c->host->stream_on_readable(c->call, readable, c);
}

struct flexilib_response *handle_request(struct flexilib_request *req) {
    static struct flexilib_header headers[1] = {{"upgrade", 7, "upper-echo", 10}};
    struct flexilib_response_v2 *r = req->alloc(req->arena, sizeof *r, 8);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->base.status = 101;
    r->base.headers = headers;
    r->base.headers_len = 1;
    r->flags = FLEXILIB_RESPONSE_STREAM;
    struct conn *c = malloc(sizeof *c);
    if (!c) return NULL;
    c->host = req->host;
    c->call = req->call;
    req->host->stream_on_readable(req->call, readable, c);
    return &r->base;
}
"#;

fn upgrade_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: upper-echo\r\n\r\n")
}

/// Reads a response head (status line and fields).
fn read_head(reader: &mut BufReader<TcpStream>) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("head line");
        let line = line.trim_end().to_string();
        if line.is_empty() {
            return lines;
        }
        lines.push(line);
    }
}

#[test]
fn a_library_takes_over_an_upgraded_connection() {
    let dir = TempDir::new("upgrade-lib");
    let library = compile_c_text(&dir, "libupper.so", UPPER_ECHO);
    let config = dir.write("proxy.ini", &format!("/up = {}\n", library.display()));
    let server = ServerBuilder::new(&config).start();

    let stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    // Bytes sent right behind the request reach the library too.
    writer
        .write_all(format!("{}early ", upgrade_request("/up")).as_bytes())
        .expect("send");
    let head = read_head(&mut reader);
    assert_eq!(head[0], "HTTP/1.1 101 Switching Protocols", "{head:?}");
    assert!(
        head.iter()
            .any(|l| l.eq_ignore_ascii_case("upgrade: upper-echo")),
        "{head:?}"
    );
    assert!(
        head.iter()
            .any(|l| l.eq_ignore_ascii_case("connection: upgrade")),
        "{head:?}"
    );
    assert!(
        !head
            .iter()
            .any(|l| l.to_ascii_lowercase().starts_with("content-")),
        "{head:?}"
    );

    let mut echoed = vec![0u8; 6];
    reader.read_exact(&mut echoed).expect("early bytes echoed");
    assert_eq!(echoed, b"EARLY ");
    for word in ["hello ", "world "] {
        writer.write_all(word.as_bytes()).expect("send");
        let mut back = vec![0u8; word.len()];
        reader.read_exact(&mut back).expect("echo");
        assert_eq!(back, word.to_ascii_uppercase().as_bytes());
    }
    // The client closes its side: the library says goodbye and ends.
    writer.shutdown(Shutdown::Write).expect("half close");
    let mut rest = String::new();
    reader.read_to_string(&mut rest).expect("to the end");
    assert_eq!(rest, "BYE\n");

    // A 101 to a request that asked for no upgrade is the library's error.
    let response = server.get("/up", &[]);
    assert_eq!(response.status, 500, "{}", response.text());
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("asked for no upgrade"))
        .is_some());
    // The server goes on serving upgrades.
    let mut again = TcpStream::connect(server.addr).expect("connect");
    again
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    again
        .write_all(format!("{}abc", upgrade_request("/up")).as_bytes())
        .expect("send");
    let mut reader = BufReader::new(again);
    assert_eq!(
        read_head(&mut reader)[0],
        "HTTP/1.1 101 Switching Protocols"
    );
    let mut back = [0u8; 3];
    reader.read_exact(&mut back).expect("echo");
    assert_eq!(&back, b"ABC");
}

/// Answers 101 and never reads what the client sends.
const DEAF: &str = r#"
#include "flexilib.h"
#include <string.h>
size_t flexilib_abi_version(void) { return FLEXILIB_ABI_VERSION; }
int flexilib_init(size_t host_abi_version) { return host_abi_version < 3; }
struct flexilib_response *handle_request(struct flexilib_request *req) {
    struct flexilib_response_v2 *r = req->alloc(req->arena, sizeof *r, 8);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->base.status = 101;
    r->flags = FLEXILIB_RESPONSE_STREAM;
    return &r->base;
}
"#;

/// A hostile client floods an upgraded connection whose library does not
/// read: the server stops reading it (bounded buffer), so the client can
/// push only what the buffers hold, and others are served meanwhile.
#[test]
fn a_flood_into_a_library_that_does_not_read_is_bounded() {
    let dir = TempDir::new("upgrade-flood");
    let library = compile_c_text(&dir, "libdeaf.so", DEAF);
    let config = dir.write("proxy.ini", &format!("/deaf = {}\n", library.display()));
    let server = ServerBuilder::new(&config).start();
    let mut stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .write_all(upgrade_request("/deaf").as_bytes())
        .expect("send");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    assert_eq!(
        read_head(&mut reader)[0],
        "HTTP/1.1 101 Switching Protocols"
    );
    stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let chunk = vec![b'x'; 64 * 1024];
    let mut pushed = 0usize;
    while pushed < 256 << 20 {
        match stream.write(&chunk) {
            Ok(n) => pushed += n,
            Err(_) => break,
        }
    }
    // 256 KiB held for the library plus the kernel's socket buffers.
    assert!(
        pushed < 64 << 20,
        "the server kept reading: {pushed} bytes taken"
    );
    assert_eq!(server.get("/deaf", &[]).status, 500, "others are served");
}
