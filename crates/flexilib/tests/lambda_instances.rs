//! Lambda instances: concurrency, throttling, idle reaping, hot reload of
//! the function's code and of the config, and no orphan processes.

mod common;
#[path = "common/lambda.rs"]
mod lambda;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{request_in_background, Client, TempDir};

#[test]
fn concurrent_requests_run_on_parallel_instances_up_to_the_limit() {
    let dir = TempDir::new("lambda-conc");
    let server = lambda::builder(
        &dir,
        &format!(
            "/fn = lambda:{} name=conc concurrency=4\n/q = lambda:{} name=queued concurrency=1 queue=1\n",
            lambda::rust_bootstrap().display(),
            lambda::rust_bootstrap().display()
        ),
    )
    // Logs when an invocation waits in the queue.
    .env("RUST_LOG", "info,flexilib::targets::lambda=debug")
    .start();
    // Four slow requests at once: four instances, in parallel.
    let started = Instant::now();
    let slow: Vec<_> = (0..4)
        .map(|_| request_in_background(server.addr, "/fn/slow?ms=800", &[]))
        .collect();
    let mut pids = HashSet::new();
    for handle in slow {
        let (response, _) = handle.join().expect("request thread");
        assert_eq!(response.status, 200, "{}", response.text());
        pids.insert(response.text());
    }
    let took = started.elapsed();
    assert_eq!(pids.len(), 4, "four instances: {pids:?}");
    assert!(took < Duration::from_millis(1600), "in parallel: {took:?}");

    // With all four busy, a fifth request is throttled at once.
    let busy: Vec<_> = (0..4)
        .map(|_| request_in_background(server.addr, "/fn/slow?ms=1000", &[]))
        .collect();
    server
        .stderr
        .wait_for_nth(Duration::from_secs(5), 7, |l| l.starts_with("[conc] START"))
        .expect("four invocations running");
    let started = Instant::now();
    let throttled = server.get("/fn/echo", &[]);
    assert_eq!(throttled.status, 429, "{}", throttled.text());
    assert!(started.elapsed() < Duration::from_millis(500));
    for handle in busy {
        assert_eq!(handle.join().expect("request thread").0.status, 200);
    }
    // The same instances serve again (warm): no new cold start.
    assert_eq!(server.get("/fn/echo", &[]).status, 200);
    let cold = server
        .stderr
        .snapshot()
        .iter()
        .filter(|l| l.starts_with("[conc] REPORT") && l.contains("Init Duration"))
        .count();
    assert_eq!(cold, 4, "instances are reused");

    // A queue: one request waits for the busy instance, the next is throttled.
    let first = request_in_background(server.addr, "/q/slow?ms=700", &[]);
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.starts_with("[queued] START"))
        .expect("first invocation running");
    let waiting = request_in_background(server.addr, "/q/pid", &[]);
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("invocation queued") && l.contains("function=queued")
        })
        .expect("the second request is queued");
    assert_eq!(server.get("/q/pid", &[]).status, 429, "queue full");
    let (response, waited) = waiting.join().expect("request thread");
    assert_eq!(response.status, 200, "the queued request ran");
    assert!(
        waited >= Duration::from_millis(300),
        "it waited: {waited:?}"
    );
    assert_eq!(first.join().expect("request thread").0.status, 200);
}

/// An instance's Runtime API runs on the core thread that started it; a
/// library call blocking that thread must not hold up the function's
/// requests served by other threads (another instance is started instead).
#[test]
fn a_library_call_on_an_instances_thread_does_not_hold_up_the_function() {
    let dir = TempDir::new("lambda-home");
    let server = lambda::builder(
        &dir,
        &format!(
            "/fn = lambda:{} name=home concurrency=2\n/lib = {}\n",
            lambda::rust_bootstrap().display(),
            common::rust_example().display()
        ),
    )
    .env("SERVER_THREAD_COUNT", "2")
    .env("RESERVED_IO_THREADS", "1")
    .env("RUST_LOG", "info,flexilib::cores=debug")
    .start();
    // One connection: its thread starts the instance, then blocks in a
    // library call for 4 s.
    let mut first = server.client();
    let response = first.request("GET", "/fn/pid", &[("Host", "x")], b"");
    assert_eq!(response.status, 200, "{}", response.text());
    let home_pid = response.text();
    let blocked = std::thread::spawn(move || {
        first
            .request("GET", "/lib", &[("Host", "x"), ("x-slow", "4000")], b"")
            .status
    });
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("reserve I/O thread accepting")
        })
        .expect("the library call stalls its thread");
    // Served by another thread, not after the call: by another instance.
    let started = Instant::now();
    let response = server.get("/fn/pid", &[]);
    let took = started.elapsed();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_ne!(response.text(), home_pid, "another instance");
    assert!(
        took < Duration::from_millis(2500),
        "not held up by the library call: {took:?}"
    );
    assert_eq!(blocked.join().expect("request thread"), 200);
}

#[test]
fn idle_instances_are_stopped() {
    let dir = TempDir::new("lambda-idle");
    dir.write("app.py", &lambda::python_example());
    let server = lambda::start(
        &dir,
        "/py = lambda:python3 -m awslambdaric app.handler name=py idle=0.5\n",
    );
    let pid: u32 = server.get("/py/pid", &[]).text().parse().unwrap_or(0);
    assert!(pid > 0 && lambda::process_alive(pid));
    assert!(
        lambda::wait_gone(pid, Duration::from_secs(3)),
        "idle instance reaped"
    );
    let again: u32 = server.get("/py/pid", &[]).text().parse().unwrap_or(0);
    assert!(again > 0 && again != pid, "a new instance after reaping");
}

/// Sends requests to `path` from `threads` keep-alive clients until told
/// to stop; returns every response's status and body.
fn load(
    addr: std::net::SocketAddr,
    path: &str,
    threads: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<(u16, String, Instant)>>> {
    (0..threads)
        .map(|_| {
            let stop = Arc::clone(stop);
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut seen = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let response = client.request("GET", &path, &[], b"");
                    seen.push((response.status, response.text(), Instant::now()));
                    std::thread::sleep(Duration::from_millis(5));
                }
                seen
            })
        })
        .collect()
}

#[test]
fn a_new_executable_takes_over_without_failed_requests() {
    let dir = TempDir::new("lambda-swap");
    let bootstrap = lambda::copy_bootstrap(dir.path(), "bootstrap");
    // Three load clients and one slow request: room for all four.
    let server = lambda::start(&dir, "/fn = lambda:./bootstrap concurrency=4\n");
    assert_eq!(server.get("/fn/pid", &[]).status, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(server.addr, "/fn/pid", 3, &stop);
    std::thread::sleep(Duration::from_millis(600));
    // An invocation in flight during the swap finishes on its old instance.
    let in_flight = request_in_background(server.addr, "/fn/slow?ms=1000", &[]);
    std::thread::sleep(Duration::from_millis(200));
    let swapped = Instant::now();
    lambda::replace_bootstrap(&bootstrap);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let (slow, _) = in_flight.join().expect("in-flight request");
    assert_eq!(slow.status, 200, "the in-flight invocation completed");
    let results: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("load thread"))
        .collect();
    let failed: Vec<_> = results
        .iter()
        .filter(|(status, _, _)| *status != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "failed requests during the swap: {failed:?}"
    );
    let before: HashSet<&str> = results
        .iter()
        .filter(|(_, _, at)| *at < swapped)
        .map(|(_, pid, _)| pid.as_str())
        .collect();
    let after: HashSet<&str> = results
        .iter()
        .filter(|(_, _, at)| *at > swapped + Duration::from_secs(1))
        .map(|(_, pid, _)| pid.as_str())
        .collect();
    assert!(!before.is_empty() && !after.is_empty());
    assert!(
        before.is_disjoint(&after),
        "new instances within 1 s: {before:?} {after:?}"
    );
    let slow_pid = slow.text().trim_start_matches("slept in ").to_string();
    assert!(
        !after.contains(slow_pid.as_str()),
        "the in-flight invocation ran on an old instance ({slow_pid}), not a new one"
    );
    for pid in before {
        let pid: u32 = pid.parse().unwrap_or(0);
        assert!(
            lambda::wait_gone(pid, Duration::from_secs(2)),
            "old instance {pid} stopped"
        );
    }
}

#[test]
fn changed_python_code_takes_over_without_failed_requests() {
    let dir = TempDir::new("lambda-pyswap");
    dir.write("app.py", &lambda::python_example());
    let server = lambda::start(
        &dir,
        "/py = lambda:python3 -m awslambdaric app.handler name=py concurrency=3\n",
    );
    assert_eq!(server.get("/py/version", &[]).text(), "1");
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(server.addr, "/py/version", 2, &stop);
    std::thread::sleep(Duration::from_millis(500));
    let changed = Instant::now();
    lambda::write_atomically(
        &dir,
        "app.py",
        &lambda::python_example().replace("VERSION = \"1\"", "VERSION = \"2\""),
    );
    std::thread::sleep(Duration::from_millis(1800));
    stop.store(true, Ordering::Relaxed);
    let results: Vec<_> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("load thread"))
        .collect();
    let failed: Vec<_> = results
        .iter()
        .filter(|(status, _, _)| *status != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "failed requests during the change: {failed:?}; server log:\n{}",
        server.stderr.snapshot().join("\n")
    );
    let late: Vec<&str> = results
        .iter()
        .filter(|(_, _, at)| *at > changed + Duration::from_secs(1))
        .map(|(_, version, _)| version.as_str())
        .collect();
    assert!(
        !late.is_empty() && late.iter().all(|v| *v == "2"),
        "new code within 1 s: {late:?}"
    );
}

#[test]
fn config_reload_adds_changes_and_removes_functions() {
    let dir = TempDir::new("lambda-config");
    let bootstrap = lambda::copy_bootstrap(dir.path(), "bootstrap");
    let server = lambda::start(&dir, "/a = lambda:./bootstrap name=a\n");
    let a_pid = server.get("/a/pid", &[]).text();
    // Add b, keep a as it is.
    dir.write(
        "proxy.ini",
        "/a = lambda:./bootstrap name=a\n/b = lambda:./bootstrap name=b\n",
    );
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/b/pid", &[]).status != 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.get("/b/pid", &[]).status, 200, "b added");
    assert_eq!(
        server.get("/a/pid", &[]).text(),
        a_pid,
        "a kept its warm instance"
    );
    // Change a (new timeout), remove b: both old pools' instances stop.
    let b_pid: u32 = server.get("/b/pid", &[]).text().parse().unwrap_or(0);
    dir.write("proxy.ini", "/a = lambda:./bootstrap name=a timeout=5\n");
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/b/pid", &[]).status != 404 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.get("/b/pid", &[]).status, 404, "b removed");
    assert!(
        lambda::wait_gone(b_pid, Duration::from_secs(3)),
        "b's instance stopped"
    );
    let a_old: u32 = a_pid.parse().unwrap_or(0);
    assert!(
        lambda::wait_gone(a_old, Duration::from_secs(3)),
        "a's old instance stopped"
    );
    assert_eq!(server.get("/a/pid", &[]).status, 200);
    drop(bootstrap);
}

#[test]
fn no_instance_outlives_its_worker() {
    let dir = TempDir::new("lambda-orphans");
    dir.write("app.py", &lambda::python_example());
    let mut server = lambda::start(
        &dir,
        &format!(
            "/rs = lambda:{} name=rs\n/py = lambda:python3 -m awslambdaric app.handler name=py\n",
            lambda::rust_bootstrap().display()
        ),
    );
    let worker = lambda::worker_pid(&server, 0);
    let mut pids: Vec<u32> = ["/rs/pid", "/py/pid"]
        .iter()
        .map(|path| server.get(path, &[]).text().parse().unwrap_or(0))
        .collect();
    // A slow invocation in flight too.
    let busy = request_in_background(server.addr, "/rs/slow?ms=5000", &[]);
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.starts_with("[rs] START") && !l.is_empty()
        })
        .expect("started");
    std::thread::sleep(Duration::from_millis(200));
    let children = lambda::children_of(worker);
    assert!(
        children.len() >= 2,
        "the worker runs the instances: {children:?}"
    );
    pids.extend(children);
    assert!(pids
        .iter()
        .all(|pid| *pid > 0 && lambda::process_alive(*pid)));

    let status = std::process::Command::new("kill")
        .args(["-KILL", &worker.to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()));
    for pid in &pids {
        assert!(
            lambda::wait_gone(*pid, Duration::from_secs(3)),
            "instance {pid} outlived a SIGKILLed worker"
        );
    }
    let _ = busy.join();

    // The supervisor's next worker serves, and its instances stop on SIGTERM.
    let worker = lambda::worker_pid(&server, 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pid = 0;
    while pid == 0 && Instant::now() < deadline {
        pid = server.get("/py/pid", &[]).text().parse().unwrap_or(0);
    }
    assert!(pid > 0, "the new worker serves the function");
    assert!(lambda::children_of(worker).contains(&pid));
    assert!(server.is_running());
    let (status, _, _) = server.terminate();
    assert!(status.success());
    assert!(
        lambda::wait_gone(pid, Duration::from_secs(3)),
        "instance stopped on shutdown"
    );
    let _ = Mutex::new(());
}

#[test]
fn a_waiting_lambda_request_holds_no_handler_slot() {
    let dir = TempDir::new("lambda-slots");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/fn = lambda:{} name=slow concurrency=4\n/ = {}\n",
            lambda::rust_bootstrap().display(),
            common::rust_example().display()
        ),
    );
    // One handler slot: a request holding it would block the library.
    let server = common::ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "1")
        .start();
    assert_eq!(server.get("/fn/pid", &[]).status, 200);
    let slow: Vec<_> = (0..2)
        .map(|_| request_in_background(server.addr, "/fn/slow?ms=1500", &[]))
        .collect();
    server
        .stderr
        .wait_for_nth(Duration::from_secs(5), 2, |l| l.starts_with("[slow] START"))
        .expect("two slow invocations running");
    let started = Instant::now();
    let library = server.get("/lib", &[]);
    assert_eq!(library.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the library answered while two Lambda requests waited: {:?}",
        started.elapsed()
    );
    for handle in slow {
        assert_eq!(handle.join().expect("request thread").0.status, 200);
    }
}

#[test]
fn no_instance_outlives_a_killed_server() {
    let dir = TempDir::new("lambda-server-kill");
    dir.write("app.py", &lambda::python_example());
    let server = lambda::start(
        &dir,
        &format!(
            "/rs = lambda:{} name=rs\n/py = lambda:python3 -m awslambdaric app.handler name=py\n",
            lambda::rust_bootstrap().display()
        ),
    );
    let pids: Vec<u32> = ["/rs/pid", "/py/pid"]
        .iter()
        .map(|path| server.get(path, &[]).text().parse().unwrap_or(0))
        .collect();
    assert!(pids
        .iter()
        .all(|pid| *pid > 0 && lambda::process_alive(*pid)));
    // SIGKILL of the supervisor: the worker is told to stop, and stops its instances.
    let status = std::process::Command::new("kill")
        .args(["-KILL", &server.child.id().to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()));
    for pid in &pids {
        assert!(
            lambda::wait_gone(*pid, Duration::from_secs(5)),
            "instance {pid} outlived a SIGKILLed server"
        );
    }
}

#[test]
fn a_runtime_that_never_asks_for_its_event_is_stopped() {
    let dir = TempDir::new("lambda-stuck");
    // A process that never calls the Runtime API.
    let server = lambda::start(&dir, "/stuck = lambda:sleep 60 name=stuck\n");
    let started = Instant::now();
    let response = server.get("/stuck/x", &[]);
    let took = started.elapsed();
    assert_eq!(response.status, 502, "{}", response.text());
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(14),
        "failed after the 10 s init limit: {took:?}"
    );
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(2), |l| l
            .starts_with("[stuck] INIT_REPORT")
            && l.ends_with("Status: timeout"))
        .is_some());
    let sleepers = lambda::children_of(lambda::worker_pid(&server, 0));
    assert!(
        sleepers.is_empty(),
        "the stuck process was stopped: {sleepers:?}"
    );
}

#[test]
fn a_killed_server_whose_stderr_is_gone_leaves_no_process() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("lambda-no-stderr");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/rs = lambda:{} name=rs\n",
            lambda::rust_bootstrap().display()
        ),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flexilib"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", "0")
        .env("LISTEN_ADDRESS", "127.0.0.1")
        .env("RUST_LOG", "info")
        .env("FLEXILIB_CONFIG", &config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn flexilib");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let (mut addr, mut worker) = (None, None);
    let mut line = String::new();
    while addr.is_none() || worker.is_none() {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        for word in line.split_whitespace() {
            if let Some(a) = word.strip_prefix("address=") {
                addr = a.parse::<std::net::SocketAddr>().ok();
            }
            if let Some(pid) = word.strip_prefix("pid=") {
                worker = pid.parse::<u32>().ok();
            }
        }
    }
    let (Some(addr), Some(worker)) = (addr, worker) else {
        let _ = child.kill();
        panic!("no address or worker pid on stderr");
    };
    // Nobody reads the server's stderr any more.
    drop(stderr);
    let mut client = Client::connect(addr);
    let instance: u32 = client
        .request("GET", "/rs/pid", &[], b"")
        .text()
        .parse()
        .unwrap_or(0);
    assert!(instance > 0);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lambda::wait_gone(worker, Duration::from_secs(10)),
        "the worker outlived its killed supervisor"
    );
    assert!(lambda::wait_gone(instance, Duration::from_secs(2)));
}
