//! A Lambda instance's Runtime API belongs to that instance's processes
//! (another local process and a worker's `fetch` are refused, while the
//! function still reaches services on the host's loopback), and no process
//! a function starts outlives its instance or the server.

mod common;
#[path = "common/lambda.rs"]
mod lambda;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::{ServerBuilder, TempDir};

const APP: &str = r#"
import os, subprocess, urllib.request

def handler(event, context):
    path = event.get("rawPath", "")
    last = path.rsplit("/", 1)[-1]
    if last == "api":
        return os.environ["AWS_LAMBDA_RUNTIME_API"]
    if last == "local":
        url = event["queryStringParameters"]["url"]
        return urllib.request.urlopen(url, timeout=5).read().decode()
    if last == "daemon":
        # A process in a session of its own: not in the instance's group.
        child = subprocess.Popen(["setsid", "sleep", "300"])
        return str(child.pid)
    if last == "crash":
        os._exit(3)
    return "ok"
"#;

/// What a worker's `fetch` gets from a URL given in `?u=`.
const WORKER: &str = r#"
export default {
  async fetch(request) {
    const target = new URL(request.url).searchParams.get('u');
    try {
      const response = await fetch(target);
      return new Response(`status ${response.status}: ${await response.text()}`);
    } catch (error) {
      return new Response(`failed: ${error}`);
    }
  },
};
"#;

/// A loopback HTTP server answering every request `hello from the host`.
fn host_service() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\nconnection: close\r\n\r\nhello from the host\n",
            );
        }
    });
    address
}

#[test]
fn the_runtime_api_answers_only_its_instance() {
    common::workers_library();
    let dir = TempDir::new("lambda-isolation");
    dir.write("app.py", APP);
    dir.write("worker.js", WORKER);
    let config = format!(
        "/fn = lambda:python3 -m awslambdaric app.handler name=iso\n/w = worker:{}\n",
        dir.path().join("worker.js").display()
    );
    let server = lambda::start(&dir, &config);
    let mut client = server.client();
    let api = client.request("GET", "/fn/api", &[], b"").text();
    assert!(api.contains("127.0.0.1:"), "{api}");
    let api = api.trim_matches('"').to_string();

    // A second local process long-polls the instance's /next: refused.
    let stranger = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, http.client\n\
             c = http.client.HTTPConnection(sys.argv[1], timeout=5)\n\
             try:\n\
             \x20   c.request('GET', '/2018-06-01/runtime/invocation/next')\n\
             \x20   r = c.getresponse()\n\
             \x20   print(r.status, r.read().decode())\n\
             except Exception as e:\n\
             \x20   print('refused', e)\n",
        )
        .arg(&api)
        .output()
        .expect("run python3");
    let said = String::from_utf8_lossy(&stranger.stdout);
    assert!(
        said.starts_with("403 "),
        "a stranger must not reach the Runtime API: {said}"
    );
    assert!(!said.contains("lambda-runtime-aws-request-id"), "{said}");

    // A worker's fetch, from inside the server process: refused too.
    let response = client.request(
        "GET",
        &format!("/w?u=http://{api}/2018-06-01/runtime/invocation/next"),
        &[],
        b"",
    );
    let said = response.text();
    assert!(
        said.starts_with("status 403"),
        "a worker must not reach the Runtime API: {said}"
    );
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains(
            "Runtime API connection from a process outside the instance refused"
        ))
        .is_some());

    // The instance itself is unaffected, and reaches the host's loopback.
    let service = host_service();
    let response = client.request("GET", &format!("/fn/local?url=http://{service}/"), &[], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.text(), "hello from the host\n");
}

fn daemon(client: &mut common::Client) -> u32 {
    let response = client.request("GET", "/fn/daemon", &[], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    let pid: u32 = response.text().trim_matches('"').parse().expect("a pid");
    assert!(lambda::process_alive(pid));
    pid
}

#[test]
fn no_process_outlives_its_instance_or_the_server() {
    let dir = TempDir::new("lambda-orphans");
    dir.write("app.py", APP);
    let config = dir.write(
        "proxy.ini",
        "/fn = lambda:python3 -m awslambdaric app.handler name=orphans\n",
    );
    let start = || {
        ServerBuilder::new(&config)
            .env("PATH", &lambda::path_with_python())
            .start()
    };

    // The instance crashes: what it started in another session goes too.
    let server = start();
    let mut client = server.client();
    let first = daemon(&mut client);
    assert_eq!(client.request("GET", "/fn/crash", &[], b"").status, 502);
    assert!(
        lambda::wait_gone(first, Duration::from_secs(5)),
        "the daemon of a crashed instance is ended"
    );
    // A live instance's daemon is left alone.
    let second = daemon(&mut client);
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        lambda::process_alive(second),
        "a live instance keeps its processes"
    );

    // The server stops: everything goes.
    let (status, _, _) = server.terminate();
    assert!(status.success());
    assert!(
        lambda::wait_gone(second, Duration::from_secs(5)),
        "nothing outlives the server"
    );

    // The worker is killed outright: the supervisor ends what is left.
    let server = start();
    let mut client = server.client();
    let third = daemon(&mut client);
    let worker = lambda::worker_pid(&server, 0);
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &worker.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(
        lambda::wait_gone(third, Duration::from_secs(5)),
        "nothing outlives a killed worker"
    );
    drop(client);
    let _ = server.terminate();
}
