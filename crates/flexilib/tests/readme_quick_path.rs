//! The README's "Your first handler in five minutes", run as written: each
//! walk (`<!-- quick-path: NAME -->`) in a temporary directory of its own,
//! its files (`<!-- file: NAME -->` before a fenced block) saved there and
//! its `sh` blocks run line by line, so the README cannot drift from the
//! code. How lines are run:
//!
//! * `"$FL/target/release/flexilib" …` starts the server on the walk's
//!   `proxy.ini` (this test's build of it, on a free port);
//! * `curl … URL   # EXPECTED` sends the request until the body is
//!   `EXPECTED` (an edit takes a moment to reload), within 10 s;
//! * a line ending in `&` runs in the background until the walk ends;
//! * `pip install` lines are not run: the walk's `venv` is the one
//!   `scripts/install-lambda-clients.sh` made;
//! * any other line runs with `sh -c` in the walk's directory (with `FL`
//!   set to this repository) and must succeed.
//!
//! Ports 8080 (the server) and 9000 (an upstream) are replaced by free
//! ones.

mod common;
#[path = "common/lambda.rs"]
mod lambda;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{workspace, Client, Server, ServerBuilder, TempDir};

/// One walk of the README: its files and its shell lines, in order.
#[derive(Debug, Default)]
struct Walk {
    name: String,
    files: Vec<(String, String)>,
    lines: Vec<String>,
}

/// The walks, read from the README.
fn walks() -> Vec<Walk> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let mut walks: Vec<Walk> = Vec::new();
    let mut lines = readme.lines();
    let mut file_name: Option<String> = None;
    while let Some(line) = lines.next() {
        if let Some(name) = marker(line, "quick-path") {
            walks.push(Walk {
                name,
                ..Walk::default()
            });
        } else if let Some(name) = marker(line, "file") {
            file_name = Some(name);
        } else if line.starts_with("## ") && !walks.is_empty() {
            break;
        } else if let Some(language) = line.strip_prefix("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            let Some(walk) = walks.last_mut() else {
                continue;
            };
            if let Some(name) = file_name.take() {
                walk.files.push((name, body.join("\n") + "\n"));
            } else if language == "sh" {
                walk.lines.extend(body.iter().map(|l| l.to_string()));
            }
        }
    }
    walks
}

/// The value of `<!-- KEY: VALUE -->`.
fn marker(line: &str, key: &str) -> Option<String> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    Some(
        inner
            .strip_prefix(key)?
            .strip_prefix(':')?
            .trim()
            .to_string(),
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A running walk: its directory, server and background processes.
struct Walker {
    dir: TempDir,
    upstream_port: u16,
    server: Option<Server>,
    background: Vec<Child>,
}

impl Drop for Walker {
    fn drop(&mut self) {
        for child in &mut self.background {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Walker {
    fn shell(&self, line: &str) -> Command {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(line)
            .current_dir(self.dir.path())
            .env("FL", workspace());
        command
    }

    fn with_ports(&self, text: &str) -> String {
        let text = text.replace("9000", &self.upstream_port.to_string());
        match &self.server {
            Some(server) => text.replace("8080", &server.addr.port().to_string()),
            None => text,
        }
    }

    fn run(&mut self, walk: &str, line: &str) {
        let line = self.with_ports(line);
        let command = line.split(" #").next().unwrap_or("").trim();
        if command.is_empty() {
            return;
        }
        if command.starts_with("\"$FL/target/release/flexilib\"") {
            let config = self.dir.path().join("proxy.ini");
            let mut builder = ServerBuilder::new(&config);
            if self.dir.path().join("venv").exists() {
                builder = builder.env("PATH", &lambda::path_with_python());
            }
            self.server = Some(builder.start());
        } else if command.starts_with("curl ") {
            self.curl(walk, &line);
        } else if command.contains("pip install") {
            std::os::unix::fs::symlink(
                workspace().join("target/lambda-venv"),
                self.dir.path().join("venv"),
            )
            .expect("link the venv");
            lambda::python_bin();
        } else if let Some(background) = command.strip_suffix('&') {
            let child = self
                .shell(background)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            self.background.push(child);
            if background.contains("http.server") {
                wait_for_port(self.upstream_port);
            }
        } else {
            let status = self.shell(command).status().expect("run sh");
            assert!(status.success(), "{walk}: `{command}` failed: {status}");
        }
    }

    /// `curl -s [-d DATA] [-H 'NAME: VALUE'] URL   # EXPECTED`.
    fn curl(&self, walk: &str, line: &str) {
        let (command, expected) = line.split_once(" #").expect("curl line with # EXPECTED");
        let expected = expected.trim();
        let words = shell_words(command);
        let mut data = None;
        let mut headers = Vec::new();
        let mut url = None;
        let mut words = words.iter().skip(1);
        while let Some(word) = words.next() {
            match word.as_str() {
                "-s" => {}
                "-d" => data = words.next().cloned(),
                "-H" => headers.push(words.next().cloned().expect("header")),
                other => url = Some(other.to_string()),
            }
        }
        let url = url.expect("a URL");
        let path = url
            .split_once('/')
            .map(|(_, path)| format!("/{path}"))
            .expect("localhost:PORT/path");
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .filter_map(|h| h.split_once(':'))
            .map(|(n, v)| (n.trim(), v.trim()))
            .collect();
        let server = self.server.as_ref().expect("the server runs");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (method, body) = match &data {
                Some(data) => ("POST", data.as_bytes()),
                None => ("GET", &b""[..]),
            };
            let response = Client::connect(server.addr).request(method, &path, &headers, body);
            let text = response.text();
            if text.trim_end() == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{walk}: `{command}` answered {} {text:?}, the README says {expected:?}; stderr:\n{}",
                response.status,
                server.stderr.snapshot().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Splits a command line into words, with '…' and "…" quoting.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_walk(name: &str) {
    let walks = walks();
    let walk = walks
        .iter()
        .find(|walk| walk.name == name)
        .unwrap_or_else(|| panic!("no walk `{name}` in the README: {walks:?}"));
    assert!(!walk.lines.is_empty(), "{walk:?}");
    let mut walker = Walker {
        dir: TempDir::new(&format!("readme-{name}")),
        upstream_port: free_port(),
        server: None,
        background: Vec::new(),
    };
    for (file, text) in &walk.files {
        let text = walker.with_ports(text);
        std::fs::write(walker.dir.path().join(file), text).expect("write a walk's file");
    }
    for line in &walk.lines {
        walker.run(name, line);
    }
    assert!(
        walker.server.is_some(),
        "the walk `{name}` starts the server"
    );
    assert!(Path::new(walker.dir.path()).join("proxy.ini").exists());
}

#[test]
fn the_readme_walks_are_all_tested() {
    let names: Vec<String> = walks().into_iter().map(|walk| walk.name).collect();
    assert_eq!(names, ["c", "worker", "lambda", "proxy"]);
}

#[test]
fn a_handler_in_c() {
    run_walk("c");
}

#[test]
fn a_cloudflare_worker_with_kv() {
    run_walk("worker");
}

#[test]
fn a_lambda_function_in_python() {
    run_walk("lambda");
}

#[test]
fn a_reverse_proxy_route() {
    run_walk("proxy");
}
