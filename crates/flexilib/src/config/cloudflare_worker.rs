//! `worker:PATH [key=value …]`: shorthand for the Cloudflare Workers
//! runtime library (`crates/flexilib-workers`) with `script=PATH`.

use std::path::{Path, PathBuf};

use super::LibrarySpec;

/// The runtime library's file name.
const LIBRARY_NAME: &str = "libflexilib_workers.so";

/// Where the Workers runtime library is: `WORKERS_LIBRARY` if set, else
/// beside the server binary.
fn library_path() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("WORKERS_LIBRARY").filter(|p| !p.is_empty()) {
        return Ok(super::absolute(Path::new(&path)));
    }
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the server binary to locate {LIBRARY_NAME}: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    Ok(dir.join(LIBRARY_NAME))
}

/// Parses the value after `worker:` for route `route`.
pub fn parse(value: &str, route: &str, base: &Path) -> Result<LibrarySpec, String> {
    let mut tokens = value.split_whitespace();
    let script = tokens
        .next()
        .ok_or("`worker:` needs a script: `worker:app.js` or `worker:wrangler.toml`")?;
    if script.contains('=') {
        return Err(format!("`worker:{script}`: the script path comes first"));
    }
    let rest: Vec<&str> = tokens.collect();
    let library = library_path()?;
    let mut spec = super::library::parse(
        &format!("{} {}", library.display(), rest.join(" ")),
        route,
        base,
    )?;
    if spec.options.iter().any(|(key, _)| key == "script") {
        return Err("`script=` is given by `worker:PATH`".into());
    }
    spec.options
        .insert(0, ("script".to_string(), script.to_string()));
    spec.runtime = Some("worker");
    Ok(spec)
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
