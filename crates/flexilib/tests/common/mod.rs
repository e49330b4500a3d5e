//! Test support: start the real `flexilib` binary on a free loopback port,
//! build C libraries with the system compiler, and speak raw HTTP/1.1.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Directory holding the built binary and the example cdylib.
pub fn build_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_flexilib"))
        .parent()
        .expect("binary has a parent directory")
        .to_path_buf()
}

/// The Rust example library, built by `cargo build --workspace`.
pub fn rust_example() -> PathBuf {
    let path = build_dir().join("libflexilib_example_rust.so");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests (see README)",
        path.display()
    );
    path
}

/// The Rust SDK's ABI-2 example (`examples/rust-instance`), built by
/// `cargo build --workspace`.
pub fn rust_instance_example() -> PathBuf {
    let path = build_dir().join("libflexilib_example_instance.so");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests (see README)",
        path.display()
    );
    path
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("flexilib-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles C source `src` (a path) into `out` with the system compiler.
pub fn compile_c(src: &Path, out: &Path) {
    let include = workspace().join("include");
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args([
            "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-I",
        ])
        .arg(&include)
        .arg("-o")
        .arg(out)
        .arg(src)
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "compiling {} failed", src.display());
}

/// A C library whose `handle_request` returns NULL (the server answers 500).
pub const NULL_HANDLER_C: &str = "#include \"flexilib.h\"\nstruct flexilib_response *handle_request(struct flexilib_request *r) { (void)r; return 0; }\n";

/// Compiles C source text into `dir/name`.
pub fn compile_c_text(dir: &TempDir, name: &str, source: &str) -> PathBuf {
    let src = dir.write(&format!("{name}.c"), source);
    let out = dir.path().join(name);
    compile_c(&src, &out);
    out
}

/// The ABI-2 C example (instances, asynchronous, streaming), compiled into `dir`.
pub fn c_stream_example(dir: &TempDir) -> PathBuf {
    let out = dir.path().join("libstream.so");
    compile_c(&workspace().join("examples/c-stream/stream.c"), &out);
    out
}

/// The C example library, compiled into `dir`.
pub fn c_example(dir: &TempDir) -> PathBuf {
    let out = dir.path().join("libsample_c.so");
    compile_c(&workspace().join("examples/c-sample/sample.c"), &out);
    out
}

/// Lines captured from a child's output stream.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>, Arc<std::sync::atomic::AtomicBool>);

impl Lines {
    pub fn capture(stream: impl Read + Send + 'static) -> Self {
        let lines = Self::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            loop {
                // Stopped: the pipe fills up and the child's writes block.
                while sink.1.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => sink
                        .0
                        .lock()
                        .unwrap()
                        .push(line.trim_end_matches('\n').to_string()),
                }
            }
        });
        lines
    }

    /// Stops reading the stream (for good), leaving the pipe open.
    pub fn stop_reading(&self) {
        self.1.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until a line satisfies `pred`, returning it.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.wait_for_nth(timeout, 0, pred)
    }

    /// Waits until `n + 1` lines satisfy `pred`, returning the last of them.
    pub fn wait_for_nth(
        &self,
        timeout: Duration,
        n: usize,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.snapshot().into_iter().filter(|l| pred(l)).nth(n) {
                return Some(line);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A running server.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub stdout: Lines,
    pub stderr: Lines,
}

/// How to start a server.
pub struct ServerBuilder {
    config: PathBuf,
    envs: Vec<(String, String)>,
    shell_prefix: Option<String>,
}

impl ServerBuilder {
    pub fn new(config: &Path) -> Self {
        Self {
            config: config.to_path_buf(),
            envs: Vec::new(),
            shell_prefix: None,
        }
    }

    /// Runs the server through `sh -c "PREFIX; exec flexilib"` (e.g. to set
    /// a resource limit with `ulimit`).
    pub fn shell_prefix(mut self, prefix: &str) -> Self {
        self.shell_prefix = Some(prefix.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.into(), value.into()));
        self
    }

    fn command(&self) -> Command {
        let mut cmd = match &self.shell_prefix {
            None => Command::new(env!("CARGO_BIN_EXE_flexilib")),
            Some(prefix) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("{prefix}; exec \"$0\""))
                    .arg(env!("CARGO_BIN_EXE_flexilib"));
                sh
            }
        };
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", "0")
            .env("LISTEN_ADDRESS", "127.0.0.1")
            .env("RUST_LOG", "info")
            .env("FLEXILIB_CONFIG", &self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts the server and waits for it to listen.
    pub fn start(self) -> Server {
        let mut child = self.command().spawn().expect("spawn flexilib");
        let stdout = Lines::capture(child.stdout.take().expect("stdout"));
        let stderr = Lines::capture(child.stderr.take().expect("stderr"));
        let line = stderr.wait_for(Duration::from_secs(20), |l| l.contains("listening"));
        let Some(line) = line else {
            let _ = child.kill();
            panic!(
                "server did not start; stderr:\n{}",
                stderr.snapshot().join("\n")
            );
        };
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("address="))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    /// Runs the server expecting it to exit at once; returns status and stderr.
    pub fn run_to_exit(self) -> (ExitStatus, String) {
        let output = self.command().output().expect("run flexilib");
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Like [`ServerBuilder::run_to_exit`], but kills the server and panics
    /// if it has not exited within `timeout`.
    pub fn run_to_exit_within(self, timeout: Duration) -> (ExitStatus, String) {
        let mut child = self
            .command()
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn flexilib");
        let stderr = Lines::capture(child.stderr.take().expect("stderr"));
        let Some(status) = wait_timeout(&mut child, timeout) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "server still running after {timeout:?}; stderr:\n{}",
                stderr.snapshot().join("\n")
            );
        };
        // Let the capture thread drain the pipe.
        std::thread::sleep(Duration::from_millis(100));
        (status, stderr.snapshot().join("\n"))
    }
}

impl Server {
    /// The TLS port the server said it listens on (`TLS_PORT=0` picks one).
    pub fn tls_port(&self) -> u16 {
        let line = self
            .stderr
            .wait_for(Duration::from_secs(5), |l| l.contains("TLS ready"))
            .expect("TLS ready");
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("tls_address="))
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line}"))
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// The Lambda Invoke API's address, from the `invoke_api=ADDR` line the
    /// server logs when `INVOKE_API_ADDRESS` is set.
    pub fn invoke_addr(&self) -> SocketAddr {
        let line = self
            .stderr
            .wait_for(Duration::from_secs(10), |l| l.contains("invoke_api="))
            .expect("the server logs its Invoke API address (INVOKE_API_ADDRESS set?)");
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("invoke_api="))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
    }

    /// A client of the Lambda Invoke API's listener.
    pub fn invoke_client(&self) -> Client {
        Client::connect(self.invoke_addr())
    }

    /// One request on a fresh connection.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut client = self.client();
        client.request("GET", path, headers, b"")
    }

    /// Sends `signal` (e.g. "HUP") to the server's main process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} {pid}");
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> (ExitStatus, Lines, Lines) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let status = wait_timeout(&mut self.child, Duration::from_secs(20))
            .expect("server exits after SIGTERM");
        // Let the capture threads drain the pipes.
        std::thread::sleep(Duration::from_millis(100));
        (status, self.stdout.clone(), self.stderr.clone())
    }

    /// Access-log lines, waiting until at least `n` are present.
    pub fn log_lines(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.stdout.snapshot();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The pid of the supervisor's current worker, if it has one.
    pub fn worker_pid(&self) -> Option<u32> {
        let pid = self.child.id();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `GET path` with `headers` on its own connection from a background
/// thread, typically a slow request the test then works around. The handle
/// yields the response and how long it took.
pub fn request_in_background(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::thread::JoinHandle<(Response, Duration)> {
    let path = path.to_string();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    std::thread::spawn(move || {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let started = Instant::now();
        let response = Client::connect(addr).request("GET", &path, &headers, b"");
        (response, started.elapsed())
    })
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`, from the status line.
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive HTTP/1.1 client on one connection.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    /// Reads a chunked body chunk by chunk, noting when each arrived;
    /// `None` if the connection ended before the last chunk.
    pub fn read_chunks(&mut self) -> Option<Vec<(Instant, Vec<u8>)>> {
        let mut chunks = Vec::new();
        loop {
            let mut size = String::new();
            if self.reader.read_line(&mut size).ok()? == 0 {
                return None;
            }
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                return Some(chunks);
            }
            chunk.truncate(size);
            chunks.push((Instant::now(), chunk));
        }
    }

    /// The buffered reader, to read a streamed body piece by piece.
    pub fn reader(&mut self) -> &mut BufReader<TcpStream> {
        &mut self.reader
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("write request");
    }

    /// Sends a request with Host and Content-Length (when a body is given).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut raw = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            raw.push_str("Host: localhost\r\n");
        }
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("\r\n");
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes);
        self.read_response(method == "HEAD").expect("a response")
    }

    /// Reads one response; `None` if the connection closed first.
    pub fn read_response(&mut self, head_only: bool) -> Option<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let mut parts = line.trim_end().splitn(3, ' ');
        let version = parts.next()?.to_string();
        let status: u16 = parts.next()?.parse().ok()?;
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h).ok()?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':')?;
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let mut response = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 100 || status == 204 || status == 304 {
            return Some(response);
        }
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).ok()?;
                let size = usize::from_str_radix(size.trim(), 16).ok()?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).ok()?;
                if size == 0 {
                    break;
                }
                response.body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().ok()?;
            let mut body = vec![0; len];
            self.reader.read_exact(&mut body).ok()?;
            response.body = body;
        } else {
            self.reader.read_to_end(&mut response.body).ok()?;
        }
        Some(response)
    }

    /// True when the server has closed the connection (EOF within `timeout`).
    pub fn is_closed_within(&mut self, timeout: Duration) -> bool {
        self.reader
            .get_mut()
            .set_read_timeout(Some(timeout))
            .expect("timeout");
        let mut buf = [0u8; 1];
        match self.reader.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

/// A temp dir with the C example and a `proxy.ini` routing to both examples:
/// `/c` → C example (relative path), `Host: iam` and `/` → Rust example.
pub fn standard_config(extra_rules: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new("std");
    c_example(&dir);
    let config = dir.write(
        "proxy.ini",
        &format!(
            "# test routes\n{extra_rules}\nHost: iam / = {rust}\n/c = libsample_c.so\n/ = {rust}\n",
            rust = rust_example().display()
        ),
    );
    (dir, config)
}

/// Creates a named pipe (FIFO) at `path`.
pub fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Names of the private directories (`flexilib-PID-…`) of process `pid` in
/// /dev/shm and the temporary directory.
pub fn private_dirs_of(pid: u32) -> Vec<String> {
    let prefix = format!("flexilib-{pid}-");
    [PathBuf::from("/dev/shm"), std::env::temp_dir()]
        .iter()
        .filter_map(|base| std::fs::read_dir(base).ok())
        .flat_map(|entries| entries.flatten())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

/// The Cloudflare Workers runtime library (`crates/flexilib-workers`),
/// built by `cargo build --workspace` beside the server binary, where
/// `worker:PATH` routes find it.
pub fn workers_library() -> PathBuf {
    let path = build_dir().join("libflexilib_workers.so");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests (see README)",
        path.display()
    );
    path
}

/// A temp dir holding `files` (name, contents; subdirectories are made)
/// and a `proxy.ini` with `rules`, for worker routes.
pub fn worker_dir(tag: &str, files: &[(&str, &str)], rules: &str) -> (TempDir, PathBuf) {
    workers_library();
    let dir = TempDir::new(tag);
    for (name, contents) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, contents).expect("write file");
    }
    let config = dir.write("proxy.ini", rules);
    (dir, config)
}

/// Replaces `name` in `dir` atomically (as editors and deploy tools do).
pub fn replace_file(dir: &TempDir, name: &str, text: &str) {
    let target = dir.path().join(name);
    let file_name = target
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let staged = target.with_file_name(format!(".{file_name}.new"));
    std::fs::write(&staged, text).expect("write");
    std::fs::rename(&staged, &target).expect("rename");
}

/// A self-signed P-256 certificate and its key, `DIR/NAME.pem` and
/// `DIR/NAME.key`, with subject `CN=NAME` and subject alternative names
/// `dns` and 127.0.0.1 (made by `openssl`).
pub fn self_signed(dir: &Path, name: &str, dns: &[&str]) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let mut names: Vec<String> = dns.iter().map(|d| format!("DNS:{d}")).collect();
    names.push("IP:127.0.0.1".into());
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj"])
        .arg(format!("/CN={name}"))
        .arg("-addext")
        .arg(format!("subjectAltName={}", names.join(",")))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl (apt-get install -y openssl)");
    assert!(status.success(), "openssl could not make a certificate");
    (cert, key)
}
