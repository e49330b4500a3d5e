//! WebAssembly routes deny by default: a guest sees no environment
//! variable, no file and reaches no host over HTTP unless the route's
//! options grant it (`env.NAME=`, `dir=HOST:GUEST[:rw]`,
//! `allow_outbound=HOST[:PORT]`); a refused outbound request gets
//! wasi:http's `HTTP-request-denied` at once, not a hang.

mod common;
#[path = "common/upstream.rs"]
mod upstream;
#[allow(dead_code)]
#[path = "common/wasm.rs"]
mod wasm;
#[allow(dead_code)]
#[path = "common/zig.rs"]
mod zig;

use std::time::{Duration, Instant};

#[test]
fn environment_variables_only_from_options() {
    let (_dir, config) = wasm::config(
        "wasm-env",
        "/granted = wasm:{hello} env.SECRET=s3cret env.OTHER=x\n/ = wasm:{hello}\n",
    );
    // The server's own environment must not reach the guest.
    let server = wasm::server(&config).env("SECRET", "from-the-host").start();
    for (path, expected) in [
        ("/env?SECRET", "(unset)"),
        ("/env?PATH", "(unset)"),
        ("/env?XDG_CACHE_HOME", "(unset)"),
        ("/granted/env?SECRET", "s3cret"),
        ("/granted/env?PATH", "(unset)"),
    ] {
        let response = server.get(path, &[]);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.text(), expected, "{path}");
    }
}

#[test]
fn files_only_in_granted_directories_read_only_unless_rw() {
    let (dir, _) = wasm::config("wasm-files", "");
    let data = dir.path().join("data");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    std::fs::write(data.join("hello.txt"), "file content\n").expect("write");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/ro = wasm:{hello} dir=data:/data\n/rw = wasm:{hello} dir=scratch:/scratch:rw\n/ = wasm:{hello}\n",
            hello = wasm::guest("hello", &[]).display()
        ),
    );
    let server = wasm::server(&config).start();
    let text = |path: &str| {
        let response = server.get(path, &[]);
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        response.text()
    };
    // No directory granted: nothing to open, not even the host's own files.
    for path in [
        "/file?/data/hello.txt",
        "/file?/etc/passwd",
        "/file?hello.txt",
    ] {
        assert!(text(path).starts_with("cannot open"), "{path}");
    }
    assert_eq!(text("/ro/file?/data/hello.txt"), "file content\n");
    assert!(text("/ro/file?/etc/passwd").starts_with("cannot open"));
    assert!(text("/ro/file?/data/../../proxy.ini").starts_with("cannot open"));
    // Read-only: no writing, no new file.
    assert!(text("/ro/write?/data/new.txt").starts_with("cannot write"));
    assert!(!data.join("new.txt").exists());
    // `:rw`: written on the host.
    assert_eq!(text("/rw/write?/scratch/new.txt"), "written");
    assert_eq!(
        std::fs::read_to_string(scratch.join("new.txt"))
            .ok()
            .as_deref(),
        Some("written\n")
    );
    assert!(text("/rw/file?/data/hello.txt").starts_with("cannot open"));
}

#[test]
fn outbound_http_only_to_allowed_hosts() {
    let upstream = upstream::Upstream::start("up");
    let port = upstream.addr.port();
    let (_dir, config) = wasm::config(
        "wasm-outbound",
        &format!(
            "/allowed = wasm:{{hello}} allow_outbound=127.0.0.1:{port}\n\
             /other-port = wasm:{{hello}} allow_outbound=127.0.0.1:{}\n\
             / = wasm:{{hello}}\n",
            port.wrapping_add(1)
        ),
    );
    let server = wasm::server(&config).start();
    let target = format!("127.0.0.1:{port}/echo-me");
    for prefix in ["", "/other-port"] {
        let started = Instant::now();
        let response = server.get(&format!("{prefix}/fetch?{target}"), &[]);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.text(),
            "outbound error: HTTP-request-denied",
            "{prefix}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{prefix}: refused slowly"
        );
    }
    assert_eq!(
        upstream.count(),
        0,
        "a refused request reached the upstream"
    );
    let response = server.get(&format!("/allowed/fetch?{target}"), &[]);
    let text = response.text();
    assert!(text.starts_with("upstream said: 200 "), "{text}");
    assert!(text.contains("/echo-me"), "{text}");
    assert_eq!(upstream.count(), 1);
}
