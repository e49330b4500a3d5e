//! A small HTTP/1.1 upstream server for the proxy tests, on std threads.
//!
//! Paths: `/echo…` describes the request it got; `/upload` counts the body;
//! `/download?size=N` sends N bytes (to `HEAD`, only their length); `/stream` sends one chunk, then waits
//! for [`Upstream::release`]; `/slow-head` sleeps 2 s before answering;
//! `/reset` promises 1000 bytes, sends 10 and closes; `/then-close`
//! answers as keep-alive, then closes the connection 50 ms later; `/http10` answers as
//! an HTTP/1.0 server (and closes); `/chunked` sends `hello` chunked (to
//! `HEAD`, the same head: `transfer-encoding: chunked`, no length); `/ws`
//! is a WebSocket echo. Every
//! response carries `x-upstream: NAME`. It counts the connections it
//! accepted and those that ended (closed by the peer or failed).
// Each test crate that includes this file uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct Upstream {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    ended: Arc<AtomicUsize>,
    released: Arc<AtomicBool>,
}

impl Upstream {
    pub fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let released = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(AtomicUsize::new(0));
        let (name, counter, release) = (name.to_string(), requests.clone(), released.clone());
        let (accepts, ends) = (accepted.clone(), ended.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                accepts.fetch_add(1, Ordering::SeqCst);
                let (name, counter, release) = (name.clone(), counter.clone(), release.clone());
                let ends = ends.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &name, &counter, &release);
                    ends.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            requests,
            accepted,
            ended,
            released,
        }
    }

    /// Lets `/stream` responses finish.
    pub fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections that have ended (the peer closed them, or they failed).
    pub fn ended(&self) -> usize {
        self.ended.load(Ordering::SeqCst)
    }
}

/// A free port with nothing listening on it.
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read_head(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Head>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok(Some(Head {
        method,
        target,
        headers,
    }))
}

/// Reads the body, calling `sink` per piece; returns its length.
fn read_body(
    reader: &mut BufReader<TcpStream>,
    head: &Head,
    mut sink: impl FnMut(&[u8]),
) -> std::io::Result<u64> {
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let cap = buf.len();
    if head
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                let mut end = String::new();
                reader.read_line(&mut end)?;
                return Ok(total);
            }
            let mut left = size;
            while left > 0 {
                let n = reader.read(&mut buf[..left.min(cap)])?;
                if n == 0 {
                    return Ok(total);
                }
                sink(&buf[..n]);
                left -= n;
                total += n as u64;
            }
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    }
    let mut left: u64 = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while left > 0 {
        let n = reader.read(&mut buf[..(left.min(cap as u64)) as usize])?;
        if n == 0 {
            break;
        }
        sink(&buf[..n]);
        left -= n as u64;
        total += n as u64;
    }
    Ok(total)
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    name: &str,
    extra: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nx-upstream: {name}\r\ncontent-length: {}\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n{extra}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)
}

fn serve(
    stream: TcpStream,
    name: &str,
    counter: &AtomicUsize,
    released: &AtomicBool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    while let Some(head) = read_head(&mut reader)? {
        counter.fetch_add(1, Ordering::SeqCst);
        let path = head.target.split('?').next().unwrap_or("").to_string();
        match path.as_str() {
            "/upload" => {
                let mut sum = 0u64;
                let n = read_body(&mut reader, &head, |piece| {
                    sum = piece.iter().fold(sum, |s, b| s.wrapping_add(u64::from(*b)));
                })?;
                respond(
                    &mut out,
                    "200 OK",
                    name,
                    "",
                    format!("{n} {sum}").as_bytes(),
                )?;
            }
            "/download" => {
                read_body(&mut reader, &head, |_| {})?;
                let size: usize = head
                    .target
                    .split("size=")
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                out.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nx-upstream: {name}\r\ncontent-length: {size}\r\n\r\n"
                    )
                    .as_bytes(),
                )?;
                let chunk = vec![b'd'; 64 * 1024];
                let mut left = if head.method == "HEAD" { 0 } else { size };
                while left > 0 {
                    let n = left.min(chunk.len());
                    out.write_all(&chunk[..n])?;
                    left -= n;
                }
            }
            "/stream" => {
                read_body(&mut reader, &head, |_| {})?;
                out.write_all(format!("HTTP/1.1 200 OK\r\nx-upstream: {name}\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n6\r\nfirst\n\r\n").as_bytes())?;
                out.flush()?;
                while !released.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                out.write_all(b"7\r\nsecond\n\r\n0\r\n\r\n")?;
            }
            "/slow-head" => {
                std::thread::sleep(Duration::from_secs(2));
                respond(&mut out, "200 OK", name, "", b"late")?;
            }
            "/reset" => {
                out.write_all(format!("HTTP/1.1 200 OK\r\nx-upstream: {name}\r\ncontent-length: 1000\r\n\r\n0123456789").as_bytes())?;
                out.flush()?;
                std::thread::sleep(Duration::from_millis(50));
                return Ok(());
            }
            "/then-close" => {
                read_body(&mut reader, &head, |_| {})?;
                respond(&mut out, "200 OK", name, "", b"bye")?;
                std::thread::sleep(Duration::from_millis(50));
                return Ok(());
            }
            "/http10" => {
                read_body(&mut reader, &head, |_| {})?;
                out.write_all(
                    format!("HTTP/1.0 200 OK\r\nx-upstream: {name}\r\ncontent-length: 8\r\n\r\nfrom 1.0")
                        .as_bytes(),
                )?;
                return Ok(());
            }
            "/chunked" => {
                read_body(&mut reader, &head, |_| {})?;
                out.write_all(
                    format!("HTTP/1.1 200 OK\r\nx-upstream: {name}\r\ntransfer-encoding: chunked\r\n\r\n")
                        .as_bytes(),
                )?;
                if head.method != "HEAD" {
                    out.write_all(b"5\r\nhello\r\n0\r\n\r\n")?;
                }
            }
            "/ws" => return websocket_echo(out, reader, &head),
            _ => {
                let mut body_len = 0u64;
                let n = read_body(&mut reader, &head, |piece| body_len += piece.len() as u64)?;
                let mut text = format!("{} {}\n", head.method, head.target);
                for (n, v) in &head.headers {
                    text.push_str(&format!("{n}: {v}\n"));
                }
                text.push_str(&format!("body-bytes: {n}\n"));
                respond(
                    &mut out,
                    "200 OK",
                    name,
                    "x-reply: yes\r\n",
                    text.as_bytes(),
                )?;
            }
        }
    }
    Ok(())
}

fn websocket_echo(
    mut out: TcpStream,
    mut reader: BufReader<TcpStream>,
    head: &Head,
) -> std::io::Result<()> {
    let key = head.header("sec-websocket-key").unwrap_or_default();
    let accept = base64(&sha1(
        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
    ));
    out.write_all(
        format!("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n")
            .as_bytes(),
    )?;
    loop {
        let mut header = [0u8; 2];
        if reader.read_exact(&mut header).is_err() {
            return Ok(());
        }
        let opcode = header[0] & 0x0f;
        let len = usize::from(header[1] & 0x7f);
        let mut mask = [0u8; 4];
        reader.read_exact(&mut mask)?;
        let mut payload = vec![0u8; len];
        reader.read_exact(&mut payload)?;
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        if opcode == 8 {
            out.write_all(&[0x88, 0])?;
            return Ok(());
        }
        let mut frame = vec![0x80 | opcode, len as u8];
        frame.extend_from_slice(&payload);
        out.write_all(&frame)?;
    }
}

/// SHA-1 (RFC 3174), for the WebSocket handshake only.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64) * 8;
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
