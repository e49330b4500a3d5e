//! The shared part of the three responders: parse the requests in a read
//! buffer with httparse and append one fixed response per complete request
//! to a write buffer. Every responder calls exactly this, so they differ only
//! in their runtime and I/O driver.

pub const BODY: &[u8] = b"Hello, World!"; // 13 bytes
const KEEP_ALIVE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";
const CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nHello, World!";

/// Size of the per-connection read and write buffers.
pub const BUF_SIZE: usize = 4096;

pub enum Outcome {
    /// `consumed` bytes of the read buffer were complete requests (answered
    /// in the write buffer); the rest is a partial request. `close`: the last
    /// answered request asked to close the connection.
    Ok { consumed: usize, close: bool },
    /// Malformed request or a header block larger than the buffer: answer
    /// what was complete, then close.
    Bad { consumed: usize },
}

/// Answers every complete request in `input`. Requests have no bodies here
/// (GET); a request with a body is treated as malformed.
pub fn handle(input: &[u8], out: &mut Vec<u8>) -> Outcome {
    let mut consumed = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&input[consumed..]) {
            Ok(httparse::Status::Complete(len)) => {
                let mut close = req.version == Some(0);
                for h in req.headers.iter() {
                    if h.name.eq_ignore_ascii_case("connection") {
                        if h.value.eq_ignore_ascii_case(b"close") {
                            close = true;
                        } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                            close = false;
                        }
                    } else if h.name.eq_ignore_ascii_case("content-length")
                        || h.name.eq_ignore_ascii_case("transfer-encoding")
                    {
                        if h.value != b"0" {
                            return Outcome::Bad { consumed };
                        }
                    }
                }
                consumed += len;
                out.extend_from_slice(if close { CLOSE } else { KEEP_ALIVE });
                if close {
                    return Outcome::Ok { consumed, close: true };
                }
            }
            Ok(httparse::Status::Partial) => {
                if input.len() - consumed >= BUF_SIZE {
                    return Outcome::Bad { consumed };
                }
                return Outcome::Ok { consumed, close: false };
            }
            Err(_) => return Outcome::Bad { consumed },
        }
    }
}

/// `127.0.0.1:PORT` from the first argument or `$PORT` (default 8080).
pub fn addr() -> String {
    let port = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .unwrap_or_else(|| "8080".into());
    format!("127.0.0.1:{port}")
}

/// Printed once listening, so a driver script knows the server is up.
pub fn ready(kind: &str, addr: &str) {
    eprintln!("{kind} listening on {addr}");
}

/// Called when a client closes its keep-alive connection. With
/// `SPIKE_EXIT_ON_EOF` set (run.py's counted runs: the counting client's
/// EOF ends the server) it exits the process with status 0, so callgrind and
/// strace write their totals. SIGTERM is not enough there: valgrind 3.19
/// keeps its big lock while a thread blocks in `io_uring_enter`, so under
/// valgrind the thread waiting for SIGTERM never runs in the io_uring
/// binaries. Cold path: checked once per connection, never per request.
pub fn peer_closed() {
    static EXIT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *EXIT.get_or_init(|| std::env::var_os("SPIKE_EXIT_ON_EOF").is_some()) {
        std::process::exit(0);
    }
}

/// Makes SIGTERM and SIGINT exit the process with status 0 (so callgrind
/// writes its output). Call first thing in `main`, before any thread starts:
/// the signals are blocked and a plain thread waits for them in sigwait, so
/// no runtime needs signal support.
pub fn exit_on_sigterm() {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        std::thread::spawn(move || {
            let mut sig = 0;
            libc::sigwait(&set, &mut sig);
            std::process::exit(0);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_and_partial() {
        let mut out = Vec::new();
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HT";
        match handle(input, &mut out) {
            Outcome::Ok { consumed, close } => {
                assert_eq!(consumed, 54);
                assert!(!close);
            }
            Outcome::Bad { .. } => panic!(),
        }
        assert_eq!(out.len(), 2 * KEEP_ALIVE.len());
    }

    #[test]
    fn close_and_http10() {
        let mut out = Vec::new();
        assert!(matches!(handle(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &mut out), Outcome::Ok { close: true, .. }));
        assert!(out.ends_with(CLOSE));
        assert!(matches!(handle(b"GET / HTTP/1.0\r\n\r\n", &mut out), Outcome::Ok { close: true, .. }));
        assert!(matches!(handle(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &mut out), Outcome::Ok { close: false, .. }));
        assert!(matches!(handle(b"BAD\0\r\n\r\n", &mut out), Outcome::Bad { consumed: 0 }));
    }
}
