//! Reading `proxy.ini`: ordered routing rules, first match wins.
//!
//! The format is the original FlexiLib's, read unchanged:
//!
//! ```ini
//! # comment
//! Host: iam /   = lib/libiam.so      # header rule: name, value prefix, path prefix
//! /c            = lib/libsample_c.so # path-prefix rule
//! /             = lib/libsample.so
//! /api          = http://127.0.0.1:9000/v1, http://127.0.0.1:9001/v1 host=upstream
//! ```
//!
//! Library paths are relative to the directory holding the config file. A
//! value starting with `http://` or `https://` is a list of upstream servers
//! with options ([`upstream`]);
//! one starting with `lambda:` is a Lambda function ([`lambda`]);
//! `worker:PATH` is the Cloudflare Workers runtime library with `script=PATH`;
//! `sam:PATH` is an AWS SAM application ([`sam`]);
//! `wasm:PATH` is the WebAssembly runtime library with `module=PATH` (a
//! component, or a Spin manifest).

pub mod lambda;
pub mod sam;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hyper::header::HeaderName;

pub use route_options::{RateSpec, RouteOptions};

mod library;
mod upstream;
pub use lambda::{LambdaSpec, Language};
pub use sam::SamSpec;
#[cfg(test)]
pub use upstream::UpstreamUrl;
pub use upstream::{Balance, HealthSpec, UpstreamSpec, UpstreamTlsSpec};
mod cloudflare_worker;
mod route_options;
mod static_dir;
mod wasm;
pub use library::LibrarySpec;
pub use static_dir::StaticSpec;

/// A parsed configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file the rules came from.
    pub path: PathBuf,
    /// Rules in file order.
    pub rules: Vec<Rule>,
    /// The text they were parsed from.
    pub text: String,
    /// What may be a mistake but is served anyway (a library file that does
    /// not exist yet), each naming `FILE:LINE`; the server logs them.
    pub warnings: Vec<String>,
}

/// One `KEY = TARGET` line.
#[derive(Debug, Clone)]
pub struct Rule {
    /// 1-based line number in the file.
    pub line: usize,
    /// The key as written (`/api`, `Host: example.com /`): how the admin
    /// listener's metrics and status name the route.
    pub key: String,
    /// What a request must look like to take this rule.
    pub matcher: Matcher,
    /// The server's own options (`compress=`, `limit_rate=`, `request_timeout=`).
    pub options: RouteOptions,
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
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetSpec {
    /// A shared library, resolved against the config file's directory,
    /// with the options of its per-route instance.
    Library(LibrarySpec),
    /// One or more upstream HTTP servers.
    Upstream(UpstreamSpec),
    /// A Lambda function run by the server.
    Lambda(LambdaSpec),
    /// An AWS SAM application: its functions behind its API routes.
    Sam(SamSpec),
    /// A directory of static files.
    Static(StaticSpec),
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config: {error}", path = .path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error: part of the message, deliberately not the error's
        /// `source`, which would print it twice in a chain (`{:#}`).
        error: std::io::Error,
    },
    /// A SAM template a rule names cannot be served; the error names the
    /// template's file and line, then the rule's.
    #[error("{error} (the `sam:` rule at {path}:{line})", path = .path.display())]
    Template {
        /// The config file.
        path: PathBuf,
        /// The rule's line.
        line: usize,
        /// The template's error.
        error: sam::TemplateError,
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

/// Reads and parses the config file at `path`, and checks the files its
/// rules name ([`check_files`]).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let mut config = parse(path, &read(path)?)?;
    check_files(&mut config)?;
    Ok(config)
}

/// Checks the files the rules name: a Lambda function's command or `dir=`
/// that does not exist is an error; a library file that does not exist is
/// a warning (it may appear later: it is watched, and requests get 502
/// until it does).
pub fn check_files(config: &mut Config) -> Result<(), ConfigError> {
    let path = config.path.clone();
    let mut warnings = Vec::new();
    for rule in &config.rules {
        let at = |message: String| ConfigError::Syntax {
            path: path.clone(),
            line: rule.line,
            message,
        };
        match &rule.target {
            TargetSpec::Lambda(function) => lambda::check_files(function).map_err(at)?,
            TargetSpec::Static(spec) => static_dir::check_files(spec).map_err(at)?,
            TargetSpec::Sam(spec) => {
                let app = sam::template::load(spec).map_err(|error| ConfigError::Template {
                    path: path.clone(),
                    line: rule.line,
                    error,
                })?;
                warnings.extend(app.warnings);
            }
            TargetSpec::Library(library) => {
                if !library.path.exists() {
                    warnings.push(format!(
                        "{}:{}: library {} does not exist (yet): requests get 502 until it appears",
                        path.display(),
                        rule.line,
                        library.path.display()
                    ));
                }
            }
            TargetSpec::Upstream(upstream) => {
                let prefix = match &rule.matcher {
                    Matcher::PathPrefix(prefix) => prefix,
                    Matcher::Header { path_prefix, .. } => path_prefix,
                };
                if upstream.strip_prefix && !prefix.ends_with('/') {
                    warnings.push(format!(
                        "{}:{}: the prefix `{prefix}` is replaced by the upstream's path but does not end in `/`: it also matches `{prefix}x/…`, sent as `/x/…`; write `{prefix}/`",
                        path.display(),
                        rule.line,
                    ));
                }
                if upstream.tls.insecure_skip_verify {
                    warnings.push(format!(
                        "{}:{}: insecure_skip_verify=true: the https upstreams' certificates are not verified",
                        path.display(),
                        rule.line,
                    ));
                }
            }
        }
    }
    config.warnings = warnings;
    Ok(())
}

/// Target kinds a rule's value may start with.
const SCHEMES: [&str; 7] = [
    "http://", "https://", "lambda:", "worker:", "sam:", "wasm:", "dir:",
];

/// An error for a value that starts like a target kind FlexiLib does not
/// know (`htp://x`, `wroker:app.js`), with the nearest known one; `None`
/// for a library path (which has no `name:` before its first `/`).
fn unknown_scheme(value: &str) -> Option<String> {
    let first = value.split_whitespace().next()?;
    let (scheme, _) = first.split_once(':')?;
    let looks_like_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !looks_like_scheme {
        return None;
    }
    let written = if first[scheme.len()..].starts_with("://") {
        format!("{scheme}://")
    } else {
        format!("{scheme}:")
    };
    let nearest = SCHEMES
        .iter()
        .min_by_key(|known| strsim::levenshtein(&written.to_ascii_lowercase(), known))
        .copied()
        .unwrap_or("http://");
    Some(format!(
        "unknown target kind `{written}`: did you mean `{nearest}`? (a target is a library path, `http://…`, `lambda:COMMAND`, `worker:SCRIPT`, `sam:TEMPLATE`, `wasm:COMPONENT` or `dir:DIRECTORY`)"
    ))
}

/// The text of the config file at `path` (a regular file: a FIFO or device
/// there is an error, never a read that blocks).
pub fn read(path: &Path) -> Result<String, ConfigError> {
    let read_error = |error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    };
    let mut text = String::new();
    crate::files::open_regular(path)
        .and_then(|mut file| std::io::Read::read_to_string(&mut file, &mut text))
        .map_err(read_error)?;
    Ok(text)
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
        let (value, options) = route_options::take(value).map_err(syntax)?;
        let value = value.as_ref();
        let known = SCHEMES.iter().any(|scheme| value.starts_with(scheme));
        if let Some(message) = (!known).then(|| unknown_scheme(value)).flatten() {
            return Err(syntax(message));
        }
        let target = if value.starts_with("http://") || value.starts_with("https://") {
            TargetSpec::Upstream(upstream::parse(value, base).map_err(syntax)?)
        } else if let Some(function) = value.strip_prefix("lambda:") {
            TargetSpec::Lambda(lambda::parse(function, base).map_err(syntax)?)
        } else if let Some(template) = value.strip_prefix("sam:") {
            TargetSpec::Sam(sam::parse(template, base).map_err(syntax)?)
        } else if let Some(worker) = value.strip_prefix("worker:") {
            TargetSpec::Library(cloudflare_worker::parse(worker, key, base).map_err(syntax)?)
        } else if let Some(dir) = value.strip_prefix("dir:") {
            TargetSpec::Static(static_dir::parse(dir, base).map_err(syntax)?)
        } else if let Some(component) = value.strip_prefix("wasm:") {
            TargetSpec::Library(wasm::parse(component, key, base).map_err(syntax)?)
        } else {
            TargetSpec::Library(library::parse(value, key, base).map_err(syntax)?)
        };
        rules.push(Rule {
            line,
            key: key.to_string(),
            matcher,
            options,
            target,
        });
    }
    Ok(Config {
        path: path.to_path_buf(),
        rules,
        text: text.to_string(),
        warnings: Vec::new(),
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

/// A path prefix, normalised as request paths are before matching
/// (`/%61pi//v1` is `/api/v1`; see `request_path`).
fn path_prefix(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!("path prefix `{text}` must start with `/`"));
    }
    if text.chars().any(char::is_whitespace) {
        return Err(format!("path prefix `{text}` must not contain spaces"));
    }
    crate::request_path::normalize(text)
        .map(|prefix| prefix.into_owned())
        .map_err(|error| format!("path prefix `{text}` can match no request: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_is_a_route_option_of_every_kind() {
        let config = parse(
            Path::new("p.ini"),
            "/a = http://127.0.0.1:9 compress=off\n/b = lib.so key=v compress=on\n/c = lib.so\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let compress: Vec<bool> = config
            .rules
            .iter()
            .map(|rule| rule.options.compress)
            .collect();
        assert_eq!(compress, [false, true, true]);
        let TargetSpec::Library(library) = &config.rules[1].target else {
            panic!("a library");
        };
        assert_eq!(library.options, [("key".to_string(), "v".to_string())]);
        let error = parse(Path::new("p.ini"), "/a = lib.so compress=maybe\n");
        assert!(error.is_err_and(|e| e
            .to_string()
            .contains("p.ini:1: `compress` is `on` or `off`")));
    }

    fn library_spec(path: &str, route: &str) -> TargetSpec {
        TargetSpec::Library(LibrarySpec {
            path: path.into(),
            options: Vec::new(),
            route: route.into(),
            config_dir: "/etc/fl".into(),
            runtime: None,
        })
    }

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
            library_spec("/etc/fl/lib/c.so", "/c")
        );
        assert_eq!(config.rules[2].target, library_spec("/abs/root.so", "/"));
    }

    #[test]
    fn upstream_targets() {
        let config = parse_ok(
            "/api = http://127.0.0.1:9000/v1/, http://localhost:9001/v1 host=upstream\n/raw = http://10.0.0.1:80\n/x = http://h:1/b strip_prefix=no\n",
        );
        let TargetSpec::Upstream(api) = &config.rules[0].target else {
            panic!("not upstream")
        };
        assert_eq!(api.servers.len(), 2);
        assert_eq!(
            api.servers[0],
            UpstreamUrl {
                authority: "127.0.0.1:9000".into(),
                base_path: "/v1".into(),
                https: false,
            }
        );
        assert!(api.strip_prefix && api.host_upstream);
        let TargetSpec::Upstream(raw) = &config.rules[1].target else {
            panic!("not upstream")
        };
        assert!(!raw.strip_prefix && !raw.host_upstream);
        assert_eq!(raw.servers[0].base_path, "");
        let TargetSpec::Upstream(x) = &config.rules[2].target else {
            panic!("not upstream")
        };
        assert!(!x.strip_prefix);
        assert!(parse_err("/a = http://nohost\n")
            .contains(":1: `http://nohost`: the upstream needs `host:port`"));
        assert!(parse_err("/a = http://h:1 sni=x\n").contains("need an `https://` upstream"));
        assert!(parse_err("/a = https://h:1 ca=missing.pem\n")
            .contains(":1: `ca=/etc/fl/missing.pem`: "));
        assert!(parse_err("/a = http://h:1 balance=random\n").contains("`balance` is"));
        assert!(parse_err("/a = http://h:1 interval=2\n").contains("needs `health=/path`"));
        assert!(parse_err("/a = http://h:1 health=up\n").contains("`health=up`: a path"));
        let config = parse_ok("/a = https://h:1 http://g:2 insecure_skip_verify=true sni=api.test h2=true health=/up balance=least_conn\n");
        let TargetSpec::Upstream(a) = &config.rules[0].target else {
            panic!("not upstream")
        };
        assert!(a.servers[0].https && !a.servers[1].https && a.h2);
        assert!(a.tls.insecure_skip_verify);
        assert_eq!(a.tls.sni.as_deref(), Some("api.test"));
        assert_eq!(a.balance, Balance::LeastConn);
        assert_eq!(
            a.health,
            Some(HealthSpec {
                path: "/up".into(),
                interval: std::time::Duration::from_secs(5)
            })
        );
        assert!(
            parse_err("/a = http://h:1 speed=fast\n").contains("unknown upstream option `speed`")
        );
        assert!(parse_err("/a = http://h:1 ftp://x\n").contains("expected an upstream URL"));
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
        assert!(parse_err("/a/../b = y\n")
            .contains(":1: path prefix `/a/../b` can match no request: a `.` or `..` segment"));
        assert!(parse_err("/100% = y\n").contains("can match no request"));
        assert!(parse_err("/a = http://h:1/v1/%2e%2e\n")
            .contains("`http://h:1/v1/%2e%2e`: the base path has a `.` or `..` segment"));
    }

    #[test]
    fn prefixes_are_normalised_like_request_paths() {
        let config = parse_ok("/%61pi//v1 = a.so\nHost: x /caf%C3%A9 = b.so\n");
        assert_eq!(
            config.rules[0].matcher,
            Matcher::PathPrefix("/api/v1".into())
        );
        assert!(matches!(
            &config.rules[1].matcher,
            Matcher::Header { path_prefix, .. } if path_prefix == "/café"
        ));
    }

    #[test]
    fn lambda_option_errors_name_the_line() {
        assert_eq!(
            parse_err("/a = a.so\n/f = lambda:fn/bootstrap timeout=x\n"),
            "/etc/fl/proxy.ini:2: `timeout=x`: a number of seconds above 0, at most 900"
        );
    }
}
