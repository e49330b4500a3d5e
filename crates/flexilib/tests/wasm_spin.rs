//! Spin applications (`wasm:PATH/spin.toml`), end to end through the
//! server with the Python component of `examples/spin-app` (componentize-py
//! against the WIT of PyPI's `spin-sdk`, importing
//! `fermyon:spin/key-value@2.0.0` and `fermyon:spin/variables@2.0.0`):
//! routes from the manifest to components, each with its own files,
//! environment, variables and stores; key-value data that survives a
//! restart and is shared with no other application; outbound HTTP only to
//! `allowed_outbound_hosts`; an interface FlexiLib does not provide refused
//! at link time, naming it; a bad manifest named with its line.

mod common;
#[allow(dead_code)]
#[path = "common/spin.rs"]
mod spin;
#[path = "common/upstream.rs"]
mod upstream;
#[allow(dead_code)]
#[path = "common/wasm.rs"]
mod wasm;
#[allow(dead_code)]
#[path = "common/zig.rs"]
mod zig;

use std::path::Path;
use std::time::Duration;

use common::{Server, TempDir};

/// An application directory with `spin.toml` (`{app}` stands for the
/// component's path) and a `static/` directory.
fn app_dir(dir: &Path, manifest: &str) {
    std::fs::create_dir_all(dir.join("static")).expect("static dir");
    std::fs::write(dir.join("static/hello.txt"), "static file\n").expect("static file");
    let component = spin::guest("app");
    std::fs::write(
        dir.join("spin.toml"),
        manifest.replace("{app}", &component.display().to_string()),
    )
    .expect("write spin.toml");
}

/// The body of a `GET` that must answer `status`.
fn text(server: &Server, path: &str, status: u16) -> String {
    let response = server.get(path, &[]);
    assert_eq!(response.status, status, "{path}: {}", response.text());
    response.text()
}

const TWO_COMPONENTS: &str = r#"
spin_manifest_version = 2
[application]
name = "two"

[variables]
greeting = { default = "hello" }

[[trigger.http]]
route = "/api/..."
component = "api"

[[trigger.http]]
route = "/hello"
component = "web"

[component.web]
source = "{app}"
files = [{ source = "static", destination = "/static" }]
environment = { WHO = "web" }
key_value_stores = ["default"]
[component.web.variables]
message = "{{ greeting }} from web"

[component.api]
source = "{app}"
environment = { WHO = "api" }
"#;

#[test]
fn a_spin_app_is_routed_by_its_manifest() {
    let dir = TempDir::new("spin-routes");
    app_dir(&dir.path().join("app"), TWO_COMPONENTS);
    let config = dir.write("proxy.ini", "/two = wasm:app/spin.toml state=state\n");
    let server = wasm::server(&config).start();
    spin::wait_ready(&server, "/two");

    // `/hello` is exact: the web component, at its route's path.
    let info = text(&server, "/two/hello", 200);
    assert!(
        info.starts_with("hello from a Spin component in Python: /two/hello"),
        "{info}"
    );
    // `/api/...` is a wildcard: the api component sees what is below it.
    assert_eq!(text(&server, "/two/api/env/WHO", 200), "api");
    let info = text(&server, "/two/api/info", 200);
    for line in [
        "path: /two/api/info",
        "spin-path-info: /info",
        "spin-matched-route: /two/api/...",
        "spin-raw-component-route: /api/...",
        "spin-component-route: /api",
        "spin-base-path: /two",
    ] {
        assert!(info.contains(line), "{line} not in\n{info}");
    }
    // No route: 404 from the server, no component runs.
    for path in ["/two/", "/two/hello/x", "/two/apix"] {
        let response = server.get(path, &[]);
        assert_eq!(response.status, 404, "{path}: {}", response.text());
    }

    // Each component has its own grants. The web component's files are
    // there read-only; the api component has none, and neither sees the
    // host's files.
    let web = TempDir::new("spin-routes-web");
    app_dir(
        web.path(),
        &TWO_COMPONENTS.replace("route = \"/hello\"", "route = \"/web/...\""),
    );
    let config = web.write("proxy.ini", "/ = wasm:spin.toml state=state\n");
    let server = wasm::server(&config).start();
    spin::wait_ready(&server, "/");
    assert_eq!(text(&server, "/web/env/WHO", 200), "web");
    assert_eq!(
        text(&server, "/web/file/static/hello.txt", 200),
        "static file\n"
    );
    assert!(text(&server, "/api/file/static/hello.txt", 404).contains("No such file"));
    assert!(text(&server, "/web/file/etc/passwd", 404).contains("No such file"));
    assert_eq!(text(&server, "/web/var/message", 200), "hello from web");
    // Stores: only the labels the component lists.
    assert_eq!(
        text(&server, "/web/kv-open/default", 200),
        "opened default\n"
    );
    assert_eq!(
        text(&server, "/web/kv-open/other", 404),
        "error: AccessDenied\n"
    );
    assert_eq!(
        text(&server, "/api/kv-open/default", 404),
        "error: AccessDenied\n"
    );
}

const COUNTER: &str = r#"
spin_manifest_version = 2
[[trigger.http]]
route = "/..."
component = "counter"
[component.counter]
source = "{app}"
key_value_stores = ["default"]
"#;

#[test]
fn key_value_data_survives_a_restart_and_is_shared_with_no_other_app() {
    let dir = TempDir::new("spin-kv");
    app_dir(&dir.path().join("one"), COUNTER);
    app_dir(&dir.path().join("two"), COUNTER);
    let config = dir.write(
        "proxy.ini",
        "/one = wasm:one/spin.toml\n/two = wasm:two/spin.toml\n",
    );
    let server = wasm::server(&config).start();
    spin::wait_ready(&server, "/one");
    spin::wait_ready(&server, "/two");
    assert_eq!(text(&server, "/one/count", 200), "hits: 1\n");
    assert_eq!(text(&server, "/one/count", 200), "hits: 2\n");
    let stored = server
        .client()
        .request("PUT", "/one/kv/colour", &[], b"blue");
    assert_eq!(stored.status, 200, "{}", stored.text());
    assert_eq!(text(&server, "/one/kv/colour", 200), "blue");
    assert_eq!(text(&server, "/one/kv-keys", 200), "colour\nhits\n");
    // The other application has a store of its own.
    assert_eq!(text(&server, "/two/count", 200), "hits: 1\n");
    assert_eq!(text(&server, "/two/kv/colour", 404), "no such key\n");
    // In the state directory beside each manifest (`.spin`).
    for app in ["one", "two"] {
        let db = dir.path().join(app).join(".spin/key_value.sqlite");
        assert!(db.is_file(), "{} is missing", db.display());
    }
    let (status, _, _) = server.terminate();
    assert!(status.success(), "{status:?}");

    let server = wasm::server(&config).start();
    spin::wait_ready(&server, "/one");
    assert_eq!(text(&server, "/one/count", 200), "hits: 3\n");
    assert_eq!(text(&server, "/one/kv/colour", 200), "blue");
    let deleted = server
        .client()
        .request("DELETE", "/one/kv/colour", &[], b"");
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(text(&server, "/one/kv/colour", 404), "no such key\n");
    assert_eq!(text(&server, "/two/count", 200), "hits: 2\n");
}

const VARIABLES: &str = r#"
spin_manifest_version = 2
[variables]
greeting = { default = "hello" }
who = { required = true }
[[trigger.http]]
route = "/..."
component = "app"
[component.app]
source = "{app}"
[component.app.variables]
message = "{{ greeting }}, {{ who }}!"
plain = "no template"
"#;

#[test]
fn variables_come_from_defaults_route_options_and_templates() {
    let dir = TempDir::new("spin-vars");
    app_dir(&dir.path().join("app"), VARIABLES);
    std::fs::create_dir_all(dir.path().join("bad")).expect("dir");
    dir.write(
        "bad/spin.toml",
        "spin_manifest_version = 2\n[[trigger.http]]\nroute = \"/...\"\ncomponent = 3\n",
    );
    let config = dir.write(
        "proxy.ini",
        "/given = wasm:app/spin.toml variable.who=tester\n\
         /missing = wasm:app/spin.toml\n\
         /bad = wasm:bad/spin.toml\n",
    );
    let server = wasm::server(&config).start();
    spin::wait_ready(&server, "/given");
    assert_eq!(text(&server, "/given/var/message", 200), "hello, tester!");
    assert_eq!(text(&server, "/given/var/plain", 200), "no template");
    // Only the component's own variables, not the application's.
    assert_eq!(
        text(&server, "/given/var/who", 404),
        "error: Undefined: who\n"
    );
    assert_eq!(
        text(&server, "/given/var/Bad-Name", 404),
        "error: InvalidName: Bad-Name\n"
    );
    // A required variable without a value: the route is not served, and
    // the log says which variable and how to give it.
    assert_eq!(server.get("/missing/var/message", &[]).status, 502);
    assert!(
        server
            .stderr
            .wait_for(Duration::from_secs(10), |l| l
                .contains("variable `who` is required")
                && l.contains("variable.who="))
            .is_some(),
        "{}",
        server.stderr.snapshot().join("\n")
    );
    // The manifest is watched: a new default (renamed over it, as editors
    // save) is served once the route is rebuilt.
    let manifest = dir.path().join("app/spin.toml");
    let edited = std::fs::read_to_string(&manifest)
        .expect("read spin.toml")
        .replace("default = \"hello\"", "default = \"hi\"");
    std::fs::write(dir.path().join("app/spin.toml.new"), edited).expect("write");
    std::fs::rename(dir.path().join("app/spin.toml.new"), &manifest).expect("rename");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let message = text(&server, "/given/var/message", 200);
        if message == "hi, tester!" {
            break;
        }
        assert_eq!(message, "hello, tester!");
        assert!(
            std::time::Instant::now() < deadline,
            "the edited manifest was not served:\n{}",
            server.stderr.snapshot().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A manifest that does not parse: its file and line are logged.
    assert_eq!(server.get("/bad/", &[]).status, 502);
    let logged = server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("bad/spin.toml"))
        .unwrap_or_else(|| panic!("{}", server.stderr.snapshot().join("\n")));
    assert!(
        logged.contains("spin.toml: line 4, column 13: "),
        "{logged}"
    );
}

#[test]
fn the_example_app_is_served_as_it_is() {
    spin::guest("app");
    let dir = TempDir::new("spin-example");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/spin = wasm:{} state=state variable.who=tests\n",
            common::workspace()
                .join("examples/spin-app/spin.toml")
                .display()
        ),
    );
    let server = wasm::server(&config).start();
    spin::wait_ready(&server, "/spin");
    assert_eq!(text(&server, "/spin/var/message", 200), "hello, tests!");
    assert_eq!(text(&server, "/spin/env/APP_MODE", 200), "example");
    assert!(
        text(&server, "/spin/file/static/hello.txt", 200).starts_with("A file the component reads")
    );
    assert_eq!(text(&server, "/spin/count", 200), "hits: 1\n");
    // The state went where the route said, not into the example.
    assert!(dir.path().join("state/key_value.sqlite").is_file());
}

#[test]
fn outbound_http_only_to_allowed_outbound_hosts() {
    let upstream = upstream::Upstream::start("up");
    let port = upstream.addr.port();
    let dir = TempDir::new("spin-outbound");
    app_dir(
        &dir.path().join("app"),
        &format!(
            r#"
spin_manifest_version = 2
[variables]
upstream = {{ default = "127.0.0.1:{port}" }}
[[trigger.http]]
route = "/allowed/..."
component = "allowed"
[[trigger.http]]
route = "/other-port/..."
component = "other-port"
[[trigger.http]]
route = "/..."
component = "none"
[component.allowed]
source = "{{app}}"
allowed_outbound_hosts = ["http://{{{{ upstream }}}}"]
[component.other-port]
source = "{{app}}"
allowed_outbound_hosts = ["http://127.0.0.1:{}", "https://127.0.0.1:{port}"]
[component.none]
source = "{{app}}"
"#,
            port.wrapping_add(1)
        ),
    );
    let config = dir.write("proxy.ini", "/ = wasm:app/spin.toml\n");
    let server = wasm::server(&config).start();
    spin::wait_ready(&server, "/");
    let target = format!("127.0.0.1:{port}/echo-me");
    for prefix in ["", "/other-port"] {
        let answer = text(&server, &format!("{prefix}/fetch/{target}"), 500);
        assert_eq!(answer, "error: HttpRequestDenied\n", "{prefix}");
    }
    assert_eq!(
        upstream.count(),
        0,
        "a refused request reached the upstream"
    );
    let answer = text(&server, &format!("/allowed/fetch/{target}"), 200);
    assert!(answer.starts_with("200 "), "{answer}");
    assert!(answer.contains("/echo-me"), "{answer}");
    assert_eq!(upstream.count(), 1);
}

#[test]
fn an_interface_not_provided_fails_the_link_naming_it() {
    let dir = TempDir::new("spin-unprovided");
    let with_sqlite = spin::guest("app-with-sqlite");
    app_dir(&dir.path().join("app"), COUNTER);
    std::fs::create_dir_all(dir.path().join("sqlite")).expect("dir");
    dir.write(
        "sqlite/spin.toml",
        &COUNTER.replace("{app}", &with_sqlite.display().to_string()),
    );
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/sqlite = wasm:sqlite/spin.toml\n\
             /plain = wasm:{}\n\
             / = wasm:app/spin.toml\n",
            spin::guest("app").display()
        ),
    );
    let server = wasm::server(&config).start();
    // A component importing Spin's SQLite interface: refused, named.
    let logged = server
        .stderr
        .wait_for(spin::COMPILE_TIMEOUT, |l| {
            l.contains("cannot link") && l.contains("spin-app-with-sqlite.wasm")
        })
        .unwrap_or_else(|| panic!("{}", server.stderr.snapshot().join("\n")));
    assert!(logged.contains("fermyon:spin/sqlite@2.0.0"), "{logged}");
    assert!(logged.contains("Spin component `counter`"), "{logged}");
    let response = server.get("/sqlite/count", &[]);
    assert_eq!(response.status, 502, "{}", response.text());
    // Spin's interfaces are for Spin applications: the same component as
    // a plain `wasm:` route does not link, and the log names the import.
    let response = server.get("/plain/", &[]);
    assert_eq!(response.status, 502, "{}", response.text());
    assert!(
        server
            .stderr
            .wait_for(Duration::from_secs(10), |l| l.contains("cannot link")
                && l.contains("fermyon:spin/")
                && !l.contains("sqlite"))
            .is_some(),
        "{}",
        server.stderr.snapshot().join("\n")
    );
    // The server and the other routes are unharmed.
    spin::wait_ready(&server, "/");
    assert_eq!(text(&server, "/count", 200), "hits: 1\n");
}
