//! Library route values: `PATH [key=value …]`.

use std::path::{Path, PathBuf};

/// A library route: the file, and the options its instance is built from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LibrarySpec {
    /// The library file, absolute.
    pub path: PathBuf,
    /// `key=value` options, in config order (empty for a plain library).
    pub options: Vec<(String, String)>,
    /// The route's key as written (`/w`, `Host: x /`): instances are per route.
    pub route: String,
    /// The config file's directory: relative option paths are relative to it.
    pub config_dir: PathBuf,
    /// The runtime the route was written for (`worker` for `worker:PATH`),
    /// if any: errors name it instead of the library.
    pub runtime: Option<&'static str>,
}

/// Parses `PATH [key=value …]` for the route `route`; `base` is the config
/// file's directory.
pub fn parse(value: &str, route: &str, base: &Path) -> Result<LibrarySpec, String> {
    let mut tokens = value.split_whitespace();
    let path = tokens.next().ok_or("missing library path")?;
    let mut options: Vec<(String, String)> = Vec::new();
    for token in tokens {
        let Some((key, setting)) = token.split_once('=') else {
            return Err(format!(
                "`{token}`: library options are `key=value` (paths cannot contain spaces)"
            ));
        };
        if key.is_empty() {
            return Err(format!("`{token}`: an option needs a name before `=`"));
        }
        if options.iter().any(|(seen, _)| seen == key) {
            return Err(format!("option `{key}` is given twice"));
        }
        options.push((key.to_string(), setting.to_string()));
    }
    Ok(LibrarySpec {
        path: super::absolute(&base.join(path)),
        options,
        route: route.to_string(),
        config_dir: super::absolute(base),
        runtime: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_follow_the_path() {
        let spec = parse(
            "lib/js.so script=app.js mode=fast",
            "/w",
            Path::new("/etc/fl"),
        );
        let spec = spec.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.path, PathBuf::from("/etc/fl/lib/js.so"));
        assert_eq!(
            spec.options,
            vec![
                ("script".to_string(), "app.js".to_string()),
                ("mode".to_string(), "fast".to_string())
            ]
        );
        assert_eq!(spec.config_dir, PathBuf::from("/etc/fl"));
        for bad in ["a.so script", "a.so =x", "a.so k=1 k=2"] {
            assert!(parse(bad, "/", Path::new("/")).is_err(), "{bad}");
        }
    }
}
