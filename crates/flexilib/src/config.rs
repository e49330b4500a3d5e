//! Reading `proxy.ini`: ordered routing rules, first match wins.
//!
//! The format is the original FlexiLib's, read unchanged:
//!
//! ```ini
//! # comment
//! Host: iam /   = lib/libiam.so      # header rule: name, value prefix, path prefix
//! /c            = lib/libsample_c.so # path-prefix rule
//! /             = lib/libsample.so
//! ```
//!
//! Library paths are relative to the directory holding the config file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hyper::header::HeaderName;

/// A parsed configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file the rules came from.
    pub path: PathBuf,
    /// Rules in file order.
    pub rules: Vec<Rule>,
}

/// One `KEY = TARGET` line.
#[derive(Debug, Clone)]
pub struct Rule {
    /// 1-based line number in the file.
    pub line: usize,
    /// What a request must look like to take this rule.
    pub matcher: Matcher,
    /// Where matching requests go.
    pub target: TargetSpec,
}

/// The key of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// The request path starts with this prefix.
    PathPrefix(String),
    /// A header named `name` has a value starting with `value_prefix`, and
    /// the path starts with `path_prefix`.
    Header {
        /// Header name (compared case-insensitively).
        name: HeaderName,
        /// Prefix of the header's value.
        value_prefix: String,
        /// Prefix of the request path.
        path_prefix: String,
    },
}

/// The value of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A shared library, resolved against the config file's directory.
    Library(PathBuf),
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config: {source}", path = .path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{path}:{line}: {message}", path = .path.display())]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads and parses the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses config text; `path` names the file in errors and anchors relative library paths.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let base = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut rules = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let syntax = |message: String| ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            message,
        };
        let content = strip_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        let Some((key, value)) = content.split_once('=') else {
            return Err(syntax(format!(
                "expected `KEY = LIBRARY_PATH`, found `{content}`"
            )));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(syntax("missing key before `=`".into()));
        }
        if value.is_empty() {
            return Err(syntax(format!("missing library path after `{key} =`")));
        }
        if let Some(first) = seen.insert(normalize_key(key), line) {
            return Err(syntax(format!(
                "duplicate key `{key}` (first defined on line {first})"
            )));
        }
        let matcher = parse_key(key).map_err(syntax)?;
        rules.push(Rule {
            line,
            matcher,
            target: TargetSpec::Library(absolute(&base.join(value))),
        });
    }
    Ok(Config {
        path: path.to_path_buf(),
        rules,
    })
}

/// `path` made absolute against the working directory (not resolving
/// symlinks), so that file-change events can be matched to it.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Removes a `#` comment: one at the start of the line or after whitespace.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) {
            return &line[..i];
        }
    }
    line
}

/// Keys differing only in header-name case or spacing are duplicates.
fn normalize_key(key: &str) -> String {
    match key.split_once(':') {
        Some((name, rest)) => format!(
            "{}:{}",
            name.trim().to_ascii_lowercase(),
            rest.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
        None => key.to_string(),
    }
}

fn parse_key(key: &str) -> Result<Matcher, String> {
    let Some((name, rest)) = key.split_once(':') else {
        return path_prefix(key).map(Matcher::PathPrefix);
    };
    let name = name.trim();
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{name}` is not a valid header name"))?;
    let rest = rest.trim();
    let Some((value_prefix, path)) = rest.rsplit_once(char::is_whitespace) else {
        return Err(format!(
            "header rule needs `Header-Name: value-prefix path-prefix`, found `{key}`"
        ));
    };
    Ok(Matcher::Header {
        name,
        value_prefix: value_prefix.trim().to_string(),
        path_prefix: path_prefix(path)?,
    })
}

fn path_prefix(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!("path prefix `{text}` must start with `/`"));
    }
    if text.chars().any(char::is_whitespace) {
        return Err(format!("path prefix `{text}` must not contain spaces"));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Config {
        match parse(Path::new("/etc/fl/proxy.ini"), text) {
            Ok(config) => config,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    fn parse_err(text: &str) -> String {
        match parse(Path::new("/etc/fl/proxy.ini"), text) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn original_format() {
        let config = parse_ok(
            "# routes\n\nHost: iam / = a.so\n/c = lib/c.so # trailing\n/ = /abs/root.so\n",
        );
        assert_eq!(config.rules.len(), 3);
        assert_eq!(config.rules[0].line, 3);
        assert_eq!(
            config.rules[0].matcher,
            Matcher::Header {
                name: HeaderName::from_static("host"),
                value_prefix: "iam".into(),
                path_prefix: "/".into()
            }
        );
        assert_eq!(
            config.rules[1].target,
            TargetSpec::Library("/etc/fl/lib/c.so".into())
        );
        assert_eq!(
            config.rules[2].target,
            TargetSpec::Library("/abs/root.so".into())
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        assert_eq!(
            parse_err("/ = a.so\n\n/b\n"),
            "/etc/fl/proxy.ini:3: expected `KEY = LIBRARY_PATH`, found `/b`"
        );
        assert!(parse_err("/a = x\n/a = y\n")
            .contains(":2: duplicate key `/a` (first defined on line 1)"));
        assert!(parse_err("/a =\n").contains(":1: missing library path"));
        assert!(parse_err("a = x\n").contains(":1: path prefix `a` must start with `/`"));
        assert!(parse_err("Bad Name: x / = y\n").contains("not a valid header name"));
        assert!(parse_err("Host: iam = y\n").contains("header rule needs"));
    }
}
