//! Cloudflare Workers emulation, outbound `fetch()`: requests forwarded
//! with `new Request(url, request)` (method, headers, body), redirects
//! followed or handed over, `AbortSignal.timeout`, and https to a local TLS
//! server whose certificate the system store trusts (`SSL_CERT_FILE`) —
//! and refused when the name does not match.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{worker_dir, ServerBuilder};

const UPSTREAM: &str = r#"
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/up/echo') {
      return Response.json({ method: request.method, token: request.headers.get('x-token'), body: await request.text() });
    }
    if (url.pathname === '/up/redirect') return Response.redirect(new URL('/up/echo', request.url).href, 302);
    if (url.pathname === '/up/slow') { await new Promise((r) => setTimeout(r, 2000)); return new Response('late'); }
    return new Response('?', { status: 404 });
  },
};
"#;

const CALLER: &str = r#"
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const target = url.searchParams.get('to');
    try {
      if (url.pathname === '/call/forward') {
        const r = await fetch(new Request(new URL('/up/echo', request.url), request));
        return new Response(await r.text(), { status: r.status });
      }
      if (url.pathname === '/call/follow') {
        const r = await fetch(new URL('/up/redirect', request.url));
        return Response.json({ status: r.status, redirected: r.redirected, url: new URL(r.url).pathname, body: await r.json() });
      }
      if (url.pathname === '/call/manual') {
        const r = await fetch(new URL('/up/redirect', request.url), { redirect: 'manual' });
        return Response.json({ status: r.status, location: new URL(r.headers.get('location')).pathname });
      }
      if (url.pathname === '/call/timeout') {
        await fetch(new URL('/up/slow', request.url), { signal: AbortSignal.timeout(200) });
        return new Response('not aborted');
      }
      if (url.pathname === '/call/https') {
        const r = await fetch(target);
        return new Response(`${r.status} ${await r.text()}`);
      }
    } catch (e) {
      return new Response(`${e.name}: ${e.message}`, { status: 502 });
    }
    return new Response('?', { status: 404 });
  },
};
"#;

/// A local https server (Python's `ssl`) with a self-signed certificate
/// for 127.0.0.1 only; killed on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &Path) -> TlsServer {
        // A test CA (trusted through SSL_CERT_FILE) and a leaf certificate
        // it signs, for 127.0.0.1 only.
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write extensions");
        let openssl = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run openssl");
            assert!(status.success(), "openssl {args:?} failed");
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=flexilib-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=flexilib-test",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ]);
        let script = r#"
import http.server, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'secure hello'
        self.send_response(200)
        self.send_header('content-type', 'text/plain')
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(dir.join("cert.pem"))
            .arg(dir.join("key.pem"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("run python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the port");
        let port = line.trim().parse().expect("a port number");
        TlsServer { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> (common::TempDir, common::Server, TlsServer) {
    let (dir, config) = worker_dir(
        "workers-fetch",
        &[("up.js", UPSTREAM), ("call.js", CALLER)],
        "/up = worker:up.js\n/call = worker:call.js\n",
    );
    let tls = TlsServer::start(dir.path());
    let server = ServerBuilder::new(&config)
        .env(
            "SSL_CERT_FILE",
            &dir.path().join("ca.pem").display().to_string(),
        )
        .start();
    (dir, server, tls)
}

/// A request whose Host is the server itself, so that the worker's
/// relative URLs reach it.
fn call(
    server: &common::Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> common::Response {
    let host = server.addr.to_string();
    let mut all = vec![("Host", host.as_str())];
    all.extend_from_slice(headers);
    server.client().request(method, path, &all, body)
}

#[test]
fn requests_are_forwarded_with_method_headers_and_body() {
    let (_dir, server, _tls) = start();
    let response = call(
        &server,
        "POST",
        "/call/forward",
        &[("x-token", "t1")],
        b"payload",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.text(),
        r#"{"method":"POST","token":"t1","body":"payload"}"#
    );
}

#[test]
fn redirects_are_followed_or_handed_over() {
    let (_dir, server, _tls) = start();
    assert_eq!(
        call(&server, "GET", "/call/follow", &[], b"").text(),
        r#"{"status":200,"redirected":true,"url":"/up/echo","body":{"method":"GET","token":null,"body":""}}"#
    );
    assert_eq!(
        call(&server, "GET", "/call/manual", &[], b"").text(),
        r#"{"status":302,"location":"/up/echo"}"#
    );
}

#[test]
fn abort_signal_timeout_aborts_a_slow_fetch() {
    let (_dir, server, _tls) = start();
    let started = std::time::Instant::now();
    let response = call(&server, "GET", "/call/timeout", &[], b"");
    assert_eq!(
        response.text(),
        "TimeoutError: The operation was aborted due to timeout"
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
}

#[test]
fn https_is_verified_against_the_system_store() {
    let (_dir, server, tls) = start();
    let trusted = call(
        &server,
        "GET",
        &format!("/call/https?to=https://127.0.0.1:{}/", tls.port),
        &[],
        b"",
    );
    assert_eq!(trusted.text(), "200 secure hello");
    // The certificate names 127.0.0.1 only: `localhost` must not pass.
    let mismatch = call(
        &server,
        "GET",
        &format!("/call/https?to=https://localhost:{}/", tls.port),
        &[],
        b"",
    );
    assert_eq!(mismatch.status, 502);
    // workerd's error and message; the reason is in the log.
    assert_eq!(mismatch.text(), "Error: Network connection lost.");
    assert!(
        server
            .stderr
            .wait_for(std::time::Duration::from_secs(5), |l| l
                .contains("fetch https://localhost:")
                && l.contains("failed:"))
            .is_some(),
        "{:?}",
        server.stderr.snapshot()
    );
}

#[test]
fn a_failed_fetch_rejects_as_workerd_does_and_the_log_says_why() {
    // Recorded from workerd (npm @cloudflare/workerd-linux-64, 2026-11):
    // a refused connection is `Error: Network connection lost.`, a name
    // that does not resolve `Error: Network connection failed: <lookup
    // error>`, a scheme fetch cannot load a `TypeError`.
    let (_dir, config) = worker_dir(
        "workers-fetch-fail",
        &[(
            "f.js",
            "export default { async fetch() { const out = {}; for (const [k, u] of [['refused', 'http://127.0.0.1:1/'], ['badScheme', 'ftp://x/']]) { try { await fetch(u); out[k] = 'ok'; } catch (e) { out[k] = [e.name, e.message, e.constructor.name]; } } return Response.json(out); } };\n",
        )],
        "/ = worker:f.js\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(
        server.get("/", &[]).text(),
        r#"{"refused":["Error","Network connection lost.","Error"],"badScheme":["TypeError","Fetch API cannot load: ftp://x/","TypeError"]}"#
    );
    assert!(server
        .stderr
        .wait_for(std::time::Duration::from_secs(5), |l| l
            .contains("fetch http://127.0.0.1:1/ failed:")
            && l.contains("Connection refused"))
        .is_some());
}
