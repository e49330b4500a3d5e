//! What a `wasm:` route is built from: its options (`module=PATH`, given by
//! the `wasm:PATH` shorthand, `dir=HOST:GUEST[:rw],…`, `env.NAME=value`,
//! `allow_outbound=host[:port],…`, `cpu_ms=`, `memory_mb=`,
//! `max_instances=`, `cache=DIR`), checked and resolved.

use std::path::{Path, PathBuf};

/// Most memory a guest may be given (the pooling allocator's slot size).
pub const MAX_MEMORY_MB: u64 = 4096;
/// Most concurrent instances a route may ask for (the pool holds
/// [`crate::engine::POOL_INSTANCES`] for every route together).
pub const MAX_INSTANCES: u64 = 1000;

/// Why a route's options are not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `module=` is missing.
    #[error("a wasm route needs module=PATH (a wasi:http component): write `wasm:PATH.wasm`")]
    NoModule,
    /// An option has a bad value.
    #[error("option {key}={value}: {message}")]
    Option {
        /// The option.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// An option this runtime does not know.
    #[error("unknown option `{0}` (known: module, dir, env.NAME, allow_outbound, cpu_ms, memory_mb, max_instances, cache; for a Spin application also variable.NAME, state)")]
    Unknown(String),
    /// An option only a Spin application (`wasm:PATH/spin.toml`) takes.
    #[error("option `{0}` is for Spin applications only (`wasm:PATH/spin.toml`)")]
    SpinOnly(String),
}

/// A host directory the guest sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// The directory on the host, absolute.
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
    /// Whether the guest may write.
    pub writable: bool,
}

/// A host the guest may send requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// Host name or address, lower case (IPv6 without brackets); `*` for
    /// any host, `*.example.com` for the names below `example.com` (from a
    /// Spin manifest).
    pub host: String,
    /// The port; `None`: the scheme's default port only (80, 443).
    pub port: Option<u16>,
    /// Any port (`:*` in a Spin manifest).
    pub any_port: bool,
    /// `Some(true)`: HTTPS only, `Some(false)`: plain HTTP only, `None`:
    /// either.
    pub tls: Option<bool>,
}

impl Outbound {
    /// An entry for `host` (lower case) and `port`, either scheme.
    pub fn host(host: &str, port: Option<u16>) -> Outbound {
        Outbound {
            host: host.to_ascii_lowercase(),
            port,
            any_port: false,
            tls: None,
        }
    }

    /// Whether a request to `host` on `port` (explicit, or `None` for the
    /// scheme's default) with TLS or not is allowed by this entry.
    pub fn allows(&self, host: &str, port: Option<u16>, tls: bool) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if self.tls.is_some_and(|allowed| allowed != tls) {
            return false;
        }
        let host_matches = match self.host.strip_prefix("*.") {
            _ if self.host == "*" => true,
            Some(domain) => host
                .len()
                .checked_sub(domain.len() + 1)
                .filter(|dot| *dot > 0)
                .and_then(|dot| host.get(dot..))
                .is_some_and(|tail| {
                    tail.starts_with('.') && tail[1..].eq_ignore_ascii_case(domain)
                }),
            None => self.host.eq_ignore_ascii_case(host),
        };
        if !host_matches {
            return false;
        }
        if self.any_port {
            return true;
        }
        let default = if tls { 443 } else { 80 };
        match self.port {
            Some(allowed) => port.unwrap_or(default) == allowed,
            None => port.is_none_or(|p| p == default),
        }
    }
}

/// A route's settings, resolved.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// The route key, for log lines.
    pub route: String,
    /// The component, absolute.
    pub module: PathBuf,
    /// Directories the guest sees.
    pub dirs: Vec<Preopen>,
    /// The guest's environment.
    pub env: Vec<(String, String)>,
    /// Hosts the guest may send HTTP requests to (none by default).
    pub outbound: Vec<Outbound>,
    /// Time a request's guest may run, in ms.
    pub cpu_ms: u64,
    /// Largest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Instances alive at once (requests in flight); more get 503.
    pub max_instances: usize,
    /// Where compiled components are kept; `None`: nowhere suitable.
    pub cache_dir: Option<PathBuf>,
    /// Spin application variables given by `variable.NAME=value`.
    pub variables: Vec<(String, String)>,
    /// A Spin application's state directory (`state=DIR`); by default
    /// `.spin` beside its manifest.
    pub state_dir: Option<PathBuf>,
}

impl RouteConfig {
    /// Whether the module is a Spin manifest (`….toml`) rather than a
    /// component.
    pub fn is_spin(&self) -> bool {
        self.module.extension().is_some_and(|ext| ext == "toml")
    }
}

fn option_error(key: &str, value: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Option {
        key: key.to_string(),
        value: value.to_string(),
        message: message.into(),
    }
}

fn number(
    key: &str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let parsed: u64 = value
        .parse()
        .map_err(|_| option_error(key, value, "not a whole number"))?;
    if !range.contains(&parsed) {
        return Err(option_error(
            key,
            value,
            format!("must be {} to {}", range.start(), range.end()),
        ));
    }
    Ok(parsed)
}

/// `HOST:GUEST[:rw|:ro],…`.
fn parse_dirs(value: &str, base: &Path) -> Result<Vec<Preopen>, ConfigError> {
    let mut dirs = Vec::new();
    for item in value.split(',').filter(|item| !item.is_empty()) {
        let mut parts = item.split(':');
        let (Some(host), Some(guest)) = (parts.next(), parts.next()) else {
            return Err(option_error("dir", value, "expected HOST:GUEST[:rw]"));
        };
        let writable = match parts.next() {
            None | Some("ro") => false,
            Some("rw") => true,
            Some(_) => return Err(option_error("dir", value, "the mode is `ro` or `rw`")),
        };
        if parts.next().is_some() || host.is_empty() || guest.is_empty() {
            return Err(option_error("dir", value, "expected HOST:GUEST[:rw]"));
        }
        let host = base.join(host);
        if !host.is_dir() {
            return Err(option_error(
                "dir",
                value,
                format!("{} is not a directory", host.display()),
            ));
        }
        dirs.push(Preopen {
            host,
            guest: guest.to_string(),
            writable,
        });
    }
    Ok(dirs)
}

/// `host[:port],…` (IPv6 in brackets).
fn parse_outbound(value: &str) -> Result<Vec<Outbound>, ConfigError> {
    let mut hosts = Vec::new();
    for item in value.split(',').filter(|item| !item.is_empty()) {
        let bad = |message: &str| option_error("allow_outbound", value, message);
        if item.contains('/') {
            return Err(bad("hosts only (host or host:port), no scheme or path"));
        }
        let (host, port) = if let Some(rest) = item.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(bad("expected [IPv6]:port")),
            }
        } else {
            match item.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (item, None),
            }
        };
        if host.is_empty() {
            return Err(bad("an empty host"));
        }
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| bad("a port is 1 to 65535")))
            .transpose()?;
        hosts.push(Outbound::host(host, port));
    }
    Ok(hosts)
}

/// The default cache directory: `$XDG_CACHE_HOME/flexilib/wasm`, else
/// `$HOME/.cache/flexilib/wasm`, else `.flexilib-cache/wasm` in the config
/// directory.
fn default_cache_dir(base: &Path) -> PathBuf {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    if let Some(xdg) = from_env("XDG_CACHE_HOME") {
        return xdg.join("flexilib/wasm");
    }
    if let Some(home) = from_env("HOME") {
        return home.join(".cache/flexilib/wasm");
    }
    base.join(".flexilib-cache/wasm")
}

impl RouteConfig {
    /// Reads the route's options (`option(key)` for one, `options` for
    /// every key, to find `env.*` and mistakes). `base` is the config
    /// file's directory.
    pub fn load<'a>(
        route: &str,
        base: &Path,
        options: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut config = RouteConfig {
            route: route.to_string(),
            module: PathBuf::new(),
            dirs: Vec::new(),
            env: Vec::new(),
            outbound: Vec::new(),
            cpu_ms: 1000,
            memory_bytes: 128 << 20,
            max_instances: 100,
            cache_dir: Some(default_cache_dir(base)),
            variables: Vec::new(),
            state_dir: None,
        };
        let mut module = None;
        for (key, value) in options {
            match key {
                "module" => module = Some(base.join(value)),
                "dir" => config.dirs = parse_dirs(value, base)?,
                "allow_outbound" => config.outbound = parse_outbound(value)?,
                "cpu_ms" => config.cpu_ms = number(key, value, 1..=600_000)?,
                "memory_mb" => {
                    let mb = number(key, value, 1..=MAX_MEMORY_MB)?;
                    config.memory_bytes = usize::try_from(mb << 20)
                        .map_err(|_| option_error(key, value, "too large for this machine"))?;
                }
                "max_instances" => {
                    config.max_instances = number(key, value, 1..=MAX_INSTANCES)? as usize;
                }
                "cache" => {
                    config.cache_dir = match value {
                        "off" | "none" => None,
                        dir => Some(base.join(dir)),
                    }
                }
                "state" => config.state_dir = Some(base.join(value)),
                _ => {
                    if let Some(name) = key.strip_prefix("variable.") {
                        config.variables.push((name.to_string(), value.to_string()));
                        continue;
                    }
                    match key.strip_prefix("env.") {
                        Some(name) if !name.is_empty() && !name.contains('\0') => {
                            config.env.push((name.to_string(), value.to_string()));
                        }
                        _ => return Err(ConfigError::Unknown(key.to_string())),
                    }
                }
            }
        }
        config.module = module.ok_or(ConfigError::NoModule)?;
        if !config.is_spin() {
            if let Some((name, _)) = config.variables.first() {
                return Err(ConfigError::SpinOnly(format!("variable.{name}")));
            }
            if config.state_dir.is_some() {
                return Err(ConfigError::SpinOnly("state".into()));
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(options: &[(&str, &str)]) -> Result<RouteConfig, ConfigError> {
        RouteConfig::load("/w", Path::new("/tmp"), options.iter().copied())
    }

    #[test]
    fn defaults_deny_everything_and_bound_the_guest() {
        let config = load(&[("module", "app.wasm")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.module, PathBuf::from("/tmp/app.wasm"));
        assert!(config.dirs.is_empty() && config.env.is_empty() && config.outbound.is_empty());
        assert_eq!((config.cpu_ms, config.memory_bytes), (1000, 128 << 20));
        assert_eq!(config.max_instances, 100);
    }

    #[test]
    fn options_are_parsed_and_checked() {
        let config = load(&[
            ("module", "/abs/app.wasm"),
            ("dir", "/tmp:/data,.:/rw:rw"),
            ("env.GREETING", "hi"),
            ("allow_outbound", "Example.com,127.0.0.1:8080,[::1]:9"),
            ("cpu_ms", "50"),
            ("memory_mb", "16"),
            ("max_instances", "3"),
            ("cache", "off"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.module, PathBuf::from("/abs/app.wasm"));
        assert_eq!(config.dirs.len(), 2);
        assert!(!config.dirs[0].writable && config.dirs[1].writable);
        assert_eq!(config.dirs[1].guest, "/rw");
        assert_eq!(config.env, vec![("GREETING".to_string(), "hi".to_string())]);
        assert_eq!((config.cpu_ms, config.memory_bytes), (50, 16 << 20));
        assert_eq!(config.max_instances, 3);
        assert!(config.cache_dir.is_none());
        let [any, local, v6] = &config.outbound[..] else {
            panic!("{:?}", config.outbound)
        };
        assert!(
            any.allows("example.COM", None, true) && any.allows("example.com", Some(80), false)
        );
        assert!(!any.allows("example.com", Some(8080), false));
        assert!(!any.allows("example.org", None, false));
        assert!(
            local.allows("127.0.0.1", Some(8080), false) && !local.allows("127.0.0.1", None, false)
        );
        assert!(v6.allows("[::1]", Some(9), false));
        for bad in [
            vec![],
            vec![("module", "a.wasm"), ("cpu_ms", "0")],
            vec![("module", "a.wasm"), ("memory_mb", "99999")],
            vec![("module", "a.wasm"), ("dir", "/no/such/dir:/x")],
            vec![("module", "a.wasm"), ("dir", "/tmp:/x:rx")],
            vec![("module", "a.wasm"), ("allow_outbound", "http://x.com")],
            vec![("module", "a.wasm"), ("allow_outbound", "x.com:http")],
            vec![("module", "a.wasm"), ("threads", "2")],
            vec![("module", "a.wasm"), ("env.", "x")],
            vec![("module", "a.wasm"), ("variable.x", "1")],
            vec![("module", "a.wasm"), ("state", "st")],
        ] {
            assert!(load(&bad).is_err(), "{bad:?}");
        }
        // A Spin manifest takes variables and a state directory.
        let spin = load(&[
            ("module", "app/spin.toml"),
            ("variable.who", "me"),
            ("state", "st"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(spin.is_spin());
        assert_eq!(spin.variables, vec![("who".to_string(), "me".to_string())]);
        assert_eq!(spin.state_dir, Some(PathBuf::from("/tmp/st")));
    }
}
