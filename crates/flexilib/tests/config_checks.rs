//! Mistakes in route targets caught when the config loads, each naming
//! `proxy.ini:N`, and `--check`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{ServerBuilder, TempDir};

/// `flexilib --check --config PATH`: exit code, stdout, stderr.
fn check(config: &std::path::Path) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_flexilib"))
        .arg("--check")
        .arg("--config")
        .arg(config)
        .env_remove("FLEXILIB_CONFIG")
        .output()
        .expect("run flexilib --check");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn misspelt_target_kinds_are_errors_with_a_suggestion() {
    let dir = TempDir::new("config-schemes");
    for (value, written, meant) in [
        ("wroker:app.js", "wroker:", "worker:"),
        ("wsm:hello.wasm", "wsm:", "wasm:"),
        ("htp://127.0.0.1:9000", "htp://", "http://"),
        (
            "lamda:python3 -m awslambdaric app.handler",
            "lamda:",
            "lambda:",
        ),
        ("http:/127.0.0.1:9000", "http:", "http://"),
    ] {
        let config = dir.write("proxy.ini", &format!("# routes\n/x = {value}\n"));
        let (code, _, stderr) = check(&config);
        assert_eq!(code, Some(2), "{value}: {stderr}");
        assert!(
            stderr.contains("proxy.ini:2: unknown target kind")
                && stderr.contains(&format!("`{written}`"))
                && stderr.contains(&format!("did you mean `{meant}`")),
            "{value}: {stderr}"
        );
        // The server refuses to start with it, saying the same.
        let (status, stderr) = ServerBuilder::new(&config).run_to_exit();
        assert!(!status.success());
        assert!(
            stderr.contains(&format!("did you mean `{meant}`")),
            "{stderr}"
        );
    }
}

#[test]
fn missing_files_are_named() {
    let dir = TempDir::new("config-files");
    let missing_dir = dir.path().join("no-such-dir");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/fn = lambda:python3 app.handler dir={}\n",
            missing_dir.display()
        ),
    );
    let (code, _, stderr) = check(&config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("proxy.ini:1:")
            && stderr.contains(&format!("{} does not exist", missing_dir.display())),
        "{stderr}"
    );

    let config = dir.write("proxy.ini", "\n/fn = lambda:functions/bootstrap\n");
    let (code, _, stderr) = check(&config);
    assert_eq!(code, Some(2), "{stderr}");
    let command = dir.path().join("functions/bootstrap");
    assert!(
        stderr.contains("proxy.ini:2:")
            && stderr.contains(&format!("command {} does not exist", command.display())),
        "{stderr}"
    );

    let config = dir.write("proxy.ini", "/fn = lambda:no-such-runtime-here x.handler\n");
    let (code, _, stderr) = check(&config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`no-such-runtime-here` is not in PATH"),
        "{stderr}"
    );

    // A library that does not exist yet is a warning: the server starts,
    // says so naming the line, and serves the other routes.
    let config = dir.write(
        "proxy.ini",
        "/ok = http://127.0.0.1:9\n/later = lib/libnot-built-yet.so\n",
    );
    let (code, stdout, stderr) = check(&config);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("OK, 2 routes"), "{stdout}");
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("proxy.ini:2: library ")
            && stderr.contains("libnot-built-yet.so does not exist"),
        "{stderr}"
    );
    let server = ServerBuilder::new(&config).start();
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("proxy.ini:2: library")
            && l.contains("does not exist"))
        .is_some());
    assert_eq!(server.get("/later", &[]).status, 502);
}

#[test]
fn check_accepts_a_good_config_and_help_shows_the_route_syntax() {
    let (dir, config) = common::standard_config("");
    let (code, stdout, stderr) = check(&config);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("OK"), "{stdout}");
    drop(dir);
    let help = Command::new(env!("CARGO_BIN_EXE_flexilib"))
        .arg("--help")
        .output()
        .expect("run flexilib --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for syntax in [
        "lambda:COMMAND",
        "worker:app.js",
        "http://127.0.0.1:9000",
        "README.md",
    ] {
        assert!(help.contains(syntax), "--help lacks {syntax}");
    }
}
