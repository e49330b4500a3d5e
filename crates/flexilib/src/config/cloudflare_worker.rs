//! `worker:PATH [key=value …]`: shorthand for the Cloudflare Workers
//! runtime library (`crates/flexilib-workers`) with `script=PATH`.

use std::path::{Path, PathBuf};

use super::LibrarySpec;

/// The runtime library's file name.
const LIBRARY_NAME: &str = "libflexilib_workers.so";

/// Where a runtime library is: `$variable` if set, else `name` beside the
/// server binary.
pub(super) fn runtime_library_path(variable: &str, name: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
        return Ok(super::absolute(Path::new(&path)));
    }
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the server binary to locate {name}: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    Ok(dir.join(name))
}

/// A runtime-library shorthand (`SCHEME:PATH [key=value …]`): `library`
/// with `option=PATH` first, for `runtime` (what errors call it). `usage`
/// is the error for a missing path.
pub(super) fn parse_shorthand(
    value: &str,
    route: &str,
    base: &Path,
    (scheme, option, usage): (&str, &str, &str),
    (library, runtime): (PathBuf, &'static str),
) -> Result<LibrarySpec, String> {
    let mut tokens = value.split_whitespace();
    let path = tokens.next().ok_or(usage)?;
    if path.contains('=') {
        return Err(format!("`{scheme}:{path}`: the path comes first"));
    }
    let rest: Vec<&str> = tokens.collect();
    let mut spec = super::library::parse(
        &format!("{} {}", library.display(), rest.join(" ")),
        route,
        base,
    )?;
    if spec.options.iter().any(|(key, _)| key == option) {
        return Err(format!("`{option}=` is given by `{scheme}:PATH`"));
    }
    spec.options
        .insert(0, (option.to_string(), path.to_string()));
    spec.runtime = Some(runtime);
    Ok(spec)
}

/// Parses the value after `worker:` for route `route`.
pub fn parse(value: &str, route: &str, base: &Path) -> Result<LibrarySpec, String> {
    parse_shorthand(
        value,
        route,
        base,
        (
            "worker",
            "script",
            "`worker:` needs a script: `worker:app.js` or `worker:wrangler.toml`",
        ),
        (
            runtime_library_path("WORKERS_LIBRARY", LIBRARY_NAME)?,
            "worker",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_shorthand_is_the_runtime_library_with_script() {
        let spec = parse("app/wrangler.toml threads=2", "/w", Path::new("/etc/fl"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(spec.path.ends_with(LIBRARY_NAME), "{}", spec.path.display());
        assert_eq!(
            spec.options,
            vec![
                ("script".to_string(), "app/wrangler.toml".to_string()),
                ("threads".to_string(), "2".to_string())
            ]
        );
        assert_eq!(spec.route, "/w");
        assert!(parse("", "/w", Path::new("/")).is_err());
        assert!(parse("a.js script=b.js", "/w", Path::new("/")).is_err());
        assert!(parse("threads=2", "/w", Path::new("/")).is_err());
    }
}
