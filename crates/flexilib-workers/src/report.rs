//! How a worker's failures are told: its log lines on stderr, the text of a
//! thrown value, and the answers production gives (500 for an uncaught
//! exception, 503 past the resource limits).

use flexilib_sdk::Response;
use rquickjs::Value;

/// `name: message` and the stack of a thrown value.
pub fn value_text(value: &Value<'_>) -> String {
    if let Some(object) = value.as_object() {
        let get = |key: &str| object.get::<_, Option<String>>(key).ok().flatten();
        let name = get("name").unwrap_or_else(|| "Error".into());
        let message = get("message").unwrap_or_default();
        let mut text = format!("{name}: {message}");
        if let Some(stack) = get("stack") {
            let stack = stack.trim_end();
            if !stack.is_empty() {
                text.push('\n');
                text.push_str(stack);
            }
        }
        return text;
    }
    value
        .as_string()
        .and_then(|s| s.to_string().ok())
        .map(|s| format!("Uncaught {s:?}"))
        .unwrap_or_else(|| format!("Uncaught {}", value.type_name()))
}

/// Production's answer to an uncaught exception: no details, no type.
pub(crate) fn internal_error() -> Response {
    Response::ok("Internal Server Error").status(500).as_given()
}

/// The answer for a request stopped by the CPU or memory limit.
pub(crate) fn resource_limits() -> Response {
    Response::ok("Worker exceeded resource limits\n")
        .status(503)
        .header("content-type", "text/plain;charset=UTF-8")
        .as_given()
}

/// Writes a line of the worker's output to stderr, prefixed with the route,
/// in one `write` (this library's copy of std does not share the server's
/// stderr lock: pieces written apart could interleave with its lines).
pub fn log(route: &str, text: &str) {
    use std::io::Write as _;
    let line = format!("[{route}] {text}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}
