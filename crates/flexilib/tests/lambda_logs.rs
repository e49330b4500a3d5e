//! Lambda log records: a record whose lines a runtime client separates
//! with `\r` (awslambdaric's tracebacks) becomes one prefixed line each.

mod common;
#[path = "common/lambda.rs"]
mod lambda;

use std::time::Duration;

use common::TempDir;

#[test]
fn a_traceback_record_is_split_into_prefixed_lines() {
    let dir = TempDir::new("lambda-logs");
    dir.write(
        "app.py",
        "def handler(event, context):\n    raise ValueError('broken on purpose')\n",
    );
    let server = lambda::start(
        &dir,
        "/fn = lambda:python3 -m awslambdaric app.handler name=logs\n",
    );
    assert_eq!(server.get("/fn/x", &[]).status, 502);
    let traceback = server.stderr.wait_for(Duration::from_secs(5), |l| {
        l.starts_with("[logs] Traceback (most recent call last):")
    });
    assert!(
        traceback.is_some(),
        "the traceback's first line has its own prefixed line:\n{}",
        server.stderr.snapshot().join("\n")
    );
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.starts_with("[logs] ")
            && l.contains("File ")
            && l.contains("app.py"))
        .is_some());
    let lines = server.stderr.snapshot();
    assert!(
        lines.iter().all(|l| !l.contains('\r')),
        "no line holds a carriage return"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("[logs] [ERROR] ValueError: broken on purpose")));
}
