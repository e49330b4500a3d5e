//! Routing, load failures and config errors.

mod common;

use common::{compile_c_text, rust_example, standard_config, ServerBuilder, TempDir};
use std::io::Read;
use std::time::Duration;

#[test]
fn unmatched_request_gets_404() {
    let dir = TempDir::new("404");
    let config = dir.write(
        "proxy.ini",
        &format!("/only = {}\n", rust_example().display()),
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/only/here", &[]).status, 200);
    assert_eq!(server.get("/elsewhere", &[]).status, 404);
}

#[test]
fn first_matching_rule_wins_and_header_rules_need_the_path_too() {
    let (_dir, config) = standard_config("Host: iam /r = libsample_c.so\n");
    let server = ServerBuilder::new(&config).start();
    // Header and path match the first rule: the C library answers.
    let c = server.get("/rest", &[("Host", "iamx")]);
    assert!(c.text().starts_with("hello from C"), "{}", c.text());
    // Header matches, path does not: next rule (Host: iam /) answers.
    assert_eq!(server.get("/x", &[("Host", "iamx")]).text(), "iam response");
    // Header value prefix does not match.
    assert_eq!(server.get("/x", &[("Host", "youare")]).text(), " 1");
}

#[test]
fn missing_library_gets_502_and_the_reason_is_logged() {
    let (_dir, config) = standard_config("/missing = no-such-lib.so\n");
    let server = ServerBuilder::new(&config).start();
    let response = server.get("/missing", &[]);
    assert_eq!(response.status, 502);
    let line = server.stderr.wait_for(Duration::from_secs(5), |l| {
        l.contains("library load failed")
    });
    let line = line.expect("load failure logged");
    assert!(line.contains("no-such-lib.so"), "{line}");
    // The server is fine and other routes still work.
    assert_eq!(server.get("/", &[]).status, 200);
}

#[test]
fn library_without_handle_request_gets_502_and_null_gets_500() {
    let dir = TempDir::new("nosym");
    compile_c_text(
        &dir,
        "libnosym.so",
        "int not_a_handler(void) { return 1; }\n",
    );
    compile_c_text(&dir, "libnull.so", common::NULL_HANDLER_C);
    compile_c_text(
        &dir,
        "libinitfail.so",
        "#include \"flexilib.h\"\nint flexilib_init(size_t v) { (void)v; return 7; }\nstruct flexilib_response *handle_request(struct flexilib_request *r) { (void)r; return 0; }\n",
    );
    let config = dir.write(
        "proxy.ini",
        "/nosym = libnosym.so\n/null = libnull.so\n/initfail = libinitfail.so\n",
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/nosym", &[]).status, 502);
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("does not export `handle_request`"))
        .is_some());
    assert_eq!(server.get("/null", &[]).status, 500);
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("handle_request returned NULL"))
        .is_some());
    assert_eq!(server.get("/initfail", &[]).status, 502);
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("flexilib_init returned 7"))
        .is_some());
}

#[test]
fn config_errors_name_file_and_line_and_stop_startup() {
    let dir = TempDir::new("badcfg");
    let config = dir.write("proxy.ini", "# ok\n/ = a.so\n\n/broken\n");
    let (status, stderr) = ServerBuilder::new(&config).run_to_exit();
    assert!(!status.success());
    let expected = format!("{}:4: expected `KEY = LIBRARY_PATH`", config.display());
    assert!(stderr.contains(&expected), "{stderr}");

    let dup = dir.write("dup.ini", "/a = x.so\n/a = y.so\n");
    let (status, stderr) = ServerBuilder::new(&dup).run_to_exit();
    assert!(!status.success());
    assert!(
        stderr.contains("dup.ini:2: duplicate key `/a` (first defined on line 1)"),
        "{stderr}"
    );

    // The OS error once, not repeated as the error's source.
    let missing = dir.path().join("absent.ini");
    for supervised in [true, false] {
        let mut builder = ServerBuilder::new(&missing);
        if !supervised {
            builder = builder.env("FLEXILIB_NO_SUPERVISOR", "1");
        }
        let (status, stderr) = builder.run_to_exit();
        assert_eq!(status.code(), Some(1));
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(
            errors,
            [format!(
                "flexilib: error: {}: cannot read config: No such file or directory (os error 2)",
                missing.display()
            )],
            "{stderr}"
        );
    }
}

#[test]
fn a_broken_library_is_not_retried_until_its_file_changes() {
    let dir = TempDir::new("broken");
    let library = dir.write("libbroken.so", "not a library at all");
    let config = dir.write("proxy.ini", "/ = libbroken.so\n");
    let server = ServerBuilder::new(&config).start();
    for _ in 0..5 {
        assert_eq!(server.get("/", &[]).status, 502);
    }
    std::thread::sleep(Duration::from_millis(200));
    let warnings = server
        .stderr
        .snapshot()
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("library load failed"))
        .count();
    assert_eq!(warnings, 1, "one warning per version of the file");
    // A working file in its place loads on the next request.
    let staged = dir.path().join("staged.so");
    std::fs::copy(rust_example(), &staged).expect("copy");
    std::fs::rename(&staged, &library).expect("rename");
    assert_eq!(server.get("/", &[]).status, 200);
}

#[test]
fn invalid_library_responses_get_500_with_the_reason_logged() {
    let dir = TempDir::new("invalid");
    compile_c_text(
        &dir,
        "libinvalid.so",
        r#"
#include <string.h>
#include "flexilib.h"
static struct flexilib_header bad_header = { .name_ptr = "bad name", .name_len = 8, .value_ptr = "v", .value_len = 1 };
static struct flexilib_response bad_status = { .ptr = "x", .len = 1, .status = 42 };
static struct flexilib_response bad_name = { .ptr = "x", .len = 1, .headers = &bad_header, .headers_len = 1 };
static struct flexilib_response null_body = { .ptr = 0, .len = 5 };
struct flexilib_response *handle_request(struct flexilib_request *req) {
    if (req->target_len >= 7 && memcmp(req->target, "/status", 7) == 0) return &bad_status;
    if (req->target_len >= 5 && memcmp(req->target, "/name", 5) == 0) return &bad_name;
    return &null_body;
}
"#,
    );
    let config = dir.write("proxy.ini", "/ = libinvalid.so\n");
    let server = ServerBuilder::new(&config).start();
    for (path, reason) in [
        ("/status", "invalid status 42"),
        ("/name", "invalid header name"),
        (
            "/body",
            "response field `body` is NULL with a non-zero length",
        ),
    ] {
        assert_eq!(server.get(path, &[]).status, 500, "{path}");
        let logged = server
            .stderr
            .wait_for(Duration::from_secs(5), |l| l.contains(reason));
        assert!(
            logged.is_some(),
            "{reason} not logged: {:?}",
            server.stderr.snapshot()
        );
    }
}

#[test]
fn a_status_without_a_registered_reason_gets_an_empty_one() {
    // As nginx does (`HTTP/1.1 999 `); hyper alone would write `<none>`.
    let dir = TempDir::new("reason");
    compile_c_text(
        &dir,
        "libodd.so",
        r#"
#include <string.h>
#include "flexilib.h"
static struct flexilib_response odd = { .ptr = "odd", .len = 3, .status = 999 };
static struct flexilib_response named = { .ptr = "named", .len = 5, .status = 999, .reason_ptr = "Custom", .reason_len = 6 };
static struct flexilib_response teapot = { .ptr = "tea", .len = 3, .status = 418 };
struct flexilib_response *handle_request(struct flexilib_request *req) {
    if (req->target_len >= 6 && memcmp(req->target, "/named", 6) == 0) return &named;
    if (req->target_len >= 7 && memcmp(req->target, "/teapot", 7) == 0) return &teapot;
    return &odd;
}
"#,
    );
    let config = dir.write("proxy.ini", "/ = libodd.so\n");
    let server = ServerBuilder::new(&config).start();
    for (path, status_line) in [
        ("/odd", "HTTP/1.1 999 \r\n"),
        ("/named", "HTTP/1.1 999 Custom\r\n"),
        ("/teapot", "HTTP/1.1 418 I'm a teapot\r\n"),
    ] {
        let mut client = server.client();
        client.send_raw(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let mut raw = Vec::new();
        let _ = client.stream().read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw);
        assert!(raw.starts_with(status_line), "{path}: {raw:?}");
    }
}
