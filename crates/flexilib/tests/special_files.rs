//! Files that are not what a library or config should be: a FIFO, a huge
//! non-library. None of them may block the server or cost it memory.

mod common;

use common::{c_example, compile_c_text, mkfifo, rust_example, Client, ServerBuilder, TempDir};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `GET path` on a fresh connection, `None` if no response came within `timeout`.
fn get_within(addr: SocketAddr, path: &str, timeout: Duration) -> Option<common::Response> {
    let mut client = Client::connect(addr);
    client
        .stream()
        .set_read_timeout(Some(timeout))
        .expect("timeout");
    client.send_raw(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    client.read_response(false)
}

/// Waits until `GET path` answers `want` (status and body prefix).
fn wait_for(addr: SocketAddr, path: &str, status: u16, body_prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = get_within(addr, path, Duration::from_secs(2));
        if response
            .as_ref()
            .is_some_and(|r| r.status == status && r.text().starts_with(body_prefix))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} never answered {status} {body_prefix:?}; last: {response:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_fifo_at_a_library_or_config_path_blocks_nothing() {
    let dir = TempDir::new("fifo");
    c_example(&dir);
    mkfifo(&dir.path().join("libfifo.so"));
    let rust = rust_example();
    let base = format!(
        "/fifo = libfifo.so\n/c = libsample_c.so\n/r = {}\n",
        rust.display()
    );
    let config = dir.write("proxy.ini", &base);
    let server = ServerBuilder::new(&config).start();

    // The FIFO's route answers 502 at once, with the reason logged.
    let response = get_within(server.addr, "/fifo", Duration::from_secs(5));
    assert_eq!(response.map(|r| r.status), Some(502), "no answer for /fifo");
    let logged = server.stderr.wait_for(Duration::from_secs(5), |l| {
        l.contains("library load failed") && l.contains("libfifo.so")
    });
    assert!(
        logged.is_some_and(|l| l.contains("not a regular file (a FIFO)")),
        "{:?}",
        server.stderr.snapshot()
    );
    wait_for(server.addr, "/c", 200, "hello from C");

    // Config edits are applied...
    let staged = dir.write(
        "proxy.ini.new",
        &format!("/new = {}\n{base}", rust.display()),
    );
    std::fs::rename(&staged, &config).expect("rename config");
    wait_for(server.addr, "/new", 200, "");
    // ...and SIGHUP reloads.
    std::fs::write(&config, &base).expect("write config");
    server.signal("HUP");
    wait_for(server.addr, "/new", 404, "");
    // Library swaps go on.
    let swapped = compile_c_text(
        &dir,
        "swapped.so",
        "#include \"flexilib.h\"\nstatic struct flexilib_response r = { .ptr = \"swapped\", .len = 7 };\nstruct flexilib_response *handle_request(struct flexilib_request *q) { (void)q; return &r; }\n",
    );
    std::fs::rename(&swapped, dir.path().join("libsample_c.so")).expect("rename library");
    wait_for(server.addr, "/c", 200, "swapped");

    // A FIFO put in the config's place is rejected; the old routes serve.
    let fifo_config = dir.path().join("proxy.ini.fifo");
    mkfifo(&fifo_config);
    std::fs::rename(&fifo_config, &config).expect("rename FIFO");
    let rejected = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("config rejected"));
    let rejected = rejected.expect("FIFO config rejected");
    assert!(
        rejected.contains(&format!(
            "{}: cannot read config: not a regular file (a FIFO)",
            config.display()
        )),
        "{rejected}"
    );
    wait_for(server.addr, "/r", 200, "");
    wait_for(server.addr, "/fifo", 502, "");

    // And SIGTERM still stops the server promptly.
    let started = Instant::now();
    let (status, _, _) = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_fifo_config_at_startup_is_an_error_naming_it() {
    let dir = TempDir::new("fifocfg");
    let config = dir.path().join("proxy.ini");
    mkfifo(&config);
    for supervised in [true, false] {
        let mut builder = ServerBuilder::new(&config);
        if !supervised {
            builder = builder.env("FLEXILIB_NO_SUPERVISOR", "1");
        }
        let (status, stderr) = builder.run_to_exit_within(Duration::from_secs(10));
        assert!(!status.success());
        assert!(
            stderr.contains(&format!(
                "flexilib: error: {}: cannot read config: not a regular file (a FIFO)",
                config.display()
            )),
            "{stderr}"
        );
    }
}

/// Peak resident memory of process `pid`, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM")
}

#[test]
fn a_huge_file_at_a_library_path_is_refused_before_it_is_copied() {
    let dir = TempDir::new("huge");
    // 512 MiB, sparse: nothing on disk, but copying it would fill /dev/shm.
    let huge = std::fs::File::create(dir.path().join("libhuge.so")).expect("create");
    std::io::Write::write_all(&mut &huge, b"not a library").expect("write");
    huge.set_len(512 << 20).expect("grow");
    // A real ELF header in front of 700 MiB: over the size limit.
    let elf = std::fs::read(rust_example()).expect("read example");
    let big = std::fs::File::create(dir.path().join("libbig.so")).expect("create");
    std::io::Write::write_all(&mut &big, &elf[..64]).expect("write");
    big.set_len(700 << 20).expect("grow");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/huge = libhuge.so\n/big = libbig.so\n/ = {}\n",
            rust_example().display()
        ),
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/", &[]).status, 200);
    let worker = server.worker_pid().expect("a worker");
    let before = peak_rss_kb(worker);
    let started = Instant::now();
    assert_eq!(server.get("/huge", &[]).status, 502);
    assert_eq!(server.get("/big", &[]).status, 502);
    let took = started.elapsed();
    let grew = peak_rss_kb(worker) - before;
    assert!(took < Duration::from_millis(500), "took {took:?}");
    assert!(grew < 20 * 1024, "peak RSS grew by {grew} kB");
    for (name, why) in [
        ("libhuge.so", "not an ELF file"),
        ("libbig.so", "too large: 734003200 bytes"),
    ] {
        let line = server.stderr.wait_for(Duration::from_secs(5), |l| {
            l.contains("library load failed") && l.contains(name)
        });
        assert!(line.as_ref().is_some_and(|l| l.contains(why)), "{line:?}");
    }
    assert_eq!(server.get("/", &[]).status, 200);
}
