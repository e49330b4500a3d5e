//! `wasm:PATH.wasm [key=value …]`: shorthand for the WebAssembly runtime
//! library (`crates/flexilib-wasm`) with `module=PATH.wasm`.

use std::path::Path;

use super::cloudflare_worker::{parse_shorthand, runtime_library_path};
use super::LibrarySpec;

/// The runtime library's file name.
const LIBRARY_NAME: &str = "libflexilib_wasm.so";

/// Parses the value after `wasm:` for route `route`.
pub fn parse(value: &str, route: &str, base: &Path) -> Result<LibrarySpec, String> {
    parse_shorthand(
        value,
        route,
        base,
        (
            "wasm",
            "module",
            "`wasm:` needs a component: `wasm:app.wasm`",
        ),
        (
            runtime_library_path("WASM_LIBRARY", LIBRARY_NAME)?,
            "WebAssembly component",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_shorthand_is_the_runtime_library_with_module() {
        let spec = parse(
            "app/hello.wasm cpu_ms=50 env.A=b",
            "/w",
            Path::new("/etc/fl"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(spec.path.ends_with(LIBRARY_NAME), "{}", spec.path.display());
        assert_eq!(spec.runtime, Some("WebAssembly component"));
        assert_eq!(
            spec.options,
            vec![
                ("module".to_string(), "app/hello.wasm".to_string()),
                ("cpu_ms".to_string(), "50".to_string()),
                ("env.A".to_string(), "b".to_string())
            ]
        );
        assert!(parse("", "/w", Path::new("/")).is_err());
        assert!(parse("a.wasm module=b.wasm", "/w", Path::new("/")).is_err());
        assert!(parse("cpu_ms=2", "/w", Path::new("/")).is_err());
    }
}
