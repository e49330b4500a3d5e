//! Settings: environment variables with matching command-line flags.
//!
//! Every setting can be given as a flag or as the environment variable named
//! in `--help`; the flag wins. Invalid values stop the server at startup
//! with a message naming the setting and a non-zero exit status.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::Parser;

/// Most handler threads (`SERVER_THREAD_COUNT`).
const MAX_THREADS: u64 = 1024;
/// Most reserved I/O threads (`RESERVED_IO_THREADS`).
const MAX_RESERVED_IO_THREADS: u64 = 64;
/// Largest arena pre-allocation in KiB (`RESPONSE_PREALLOCATION_KB`): 256 MiB.
const MAX_PREALLOCATION_KB: u64 = 256 * 1024;
/// Largest arena retained between requests in KiB (`ARENA_RETAIN_KB`): 1 GiB.
const MAX_RETAIN_KB: u64 = 1024 * 1024;
/// Default connection cap (`MAX_CONNECTIONS`), if the open file limit
/// allows it.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Largest request body (`MAX_BODY_BYTES`): 1 GiB.
const MAX_BODY_BYTES: u64 = 1 << 30;

/// What `--help` says about `proxy.ini` after the settings.
const ROUTE_SYNTAX: &str = "\
Routes (proxy.ini, one `KEY = TARGET` per line, first match wins):
  KEY is a path prefix (`/api`) or a header rule (`Host: example.com /`).
  /          = lib/libhello.so [key=value ...]     a shared library (C ABI)
  /api       = http://127.0.0.1:9000[/base], http://... [strip_prefix=yes|no] [host=upstream]
  /fn        = lambda:COMMAND [ARGS] [name= timeout= memory= concurrency= queue= idle= handler= dir= env.NAME=]
  /py        = lambda:runtime=python3.12|nodejs20.x|provided.al2023 handler=app.handler dir=fn [options]
  /w         = worker:app.js | worker:wrangler.toml [key=value ...]
  /app       = sam:template.yaml [param.NAME=value ...] [client=aws] [function=ID]   an AWS SAM application
  /x         = wasm:app.wasm [dir=HOST:GUEST[:rw],... env.NAME= allow_outbound=HOST[:PORT],... cpu_ms= memory_mb= max_instances= cache=]
  /static    = dir:public                         static files (ETag, Range, index.html, .br/.gz siblings)
  /s         = wasm:spin.toml [variable.NAME= state=DIR] [options as above]   a Spin application
Check a config without serving: flexilib --check --config proxy.ini (exit 0, or 2 with FILE:LINE).
Every setting and target option: README.md (Settings, proxy.ini).";

/// A setting that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// Let's Encrypt's production directory, the default `ACME_DIRECTORY`.
#[cfg(feature = "acme")]
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Run-time settings of the server.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "flexilib",
    version,
    about = "A low-latency HTTP server whose request handlers are shared libraries loaded at run time",
    after_help = ROUTE_SYNTAX
)]
pub struct Settings {
    /// TCP port to listen on (0 picks a free port; the address is logged).
    #[arg(long, env = "PORT", default_value_t = 8069)]
    pub port: u16,

    /// IP address to listen on.
    #[arg(long, env = "LISTEN_ADDRESS", default_value = "0.0.0.0")]
    pub listen_address: IpAddr,

    /// Core threads (thread-per-core: each accepts and serves its own
    /// connections, library calls inline) and handler slots: how many
    /// library calls may run at once (1 to 1024).
    /// Default: the number of CPUs (at most 4 in debug builds).
    #[arg(long = "threads", env = "SERVER_THREAD_COUNT",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_THREADS))]
    pub server_thread_count: Option<usize>,

    /// Reserve I/O threads: they accept new connections while a core thread
    /// is stalled in a library call, so accepting, parsing and answering go
    /// on (1 to 64).
    #[arg(long, env = "RESERVED_IO_THREADS", default_value_t = 1,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_RESERVED_IO_THREADS))]
    pub reserved_io_threads: usize,

    /// KiB pre-allocated in each handler thread's request arena (at most
    /// 262144, 256 MiB).
    #[arg(long, env = "RESPONSE_PREALLOCATION_KB", default_value_t = 8,
          value_parser = RangedU64ValueParser::<usize>::new().range(0..=MAX_PREALLOCATION_KB))]
    pub response_preallocation_kb: usize,

    /// KiB an arena may keep between requests; an arena that grew past this
    /// is freed and pre-allocated afresh after the request (at most
    /// 1048576, 1 GiB).
    #[arg(long, env = "ARENA_RETAIN_KB", default_value_t = 1024,
          value_parser = RangedU64ValueParser::<usize>::new().range(0..=MAX_RETAIN_KB))]
    pub arena_retain_kb: usize,

    /// Path of the routing configuration.
    #[arg(
        long,
        env = "FLEXILIB_CONFIG",
        value_name = "FLEXILIB_CONFIG",
        default_value = "proxy.ini"
    )]
    pub config: PathBuf,

    /// Largest request head (request line and headers) in bytes; larger gets 431.
    #[arg(long, env = "MAX_HEADER_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=1024 * 1024))]
    pub max_header_bytes: u32,

    /// Most header fields in a request head; more gets 431. Never more than
    /// MAX_HEADER_BYTES can hold (4 bytes per field).
    #[arg(long = "max-header-count", env = "MAX_HEADER_COUNT", value_name = "MAX_HEADER_COUNT", default_value_t = 256,
          value_parser = clap::value_parser!(u16).range(1..=MAX_HEADER_COUNT as i64))]
    pub max_header_fields: u16,

    /// Largest request body in bytes; larger gets 413 (at most 1 GiB: a
    /// library's request body is held in memory).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(0..=MAX_BODY_BYTES))]
    pub max_body_bytes: u64,

    /// Most client connections open at once on the public listener (1 to
    /// 10,000,000). At the cap, a keep-alive connection idle for 100 ms or
    /// more is closed to make room; with none idle, the newcomer gets 503.
    /// Default: 10,000, or half the open file limit if that is lower (a
    /// proxied request holds a second descriptor).
    #[arg(long, env = "MAX_CONNECTIONS",
          value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    pub max_connections: Option<usize>,

    /// Seconds a client may take to send a complete request head.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECONDS", value_name = "HEADER_READ_TIMEOUT_SECONDS",
          default_value = "10", value_parser = parse_seconds)]
    pub header_read_timeout: Duration,

    /// Seconds a client may take to send a library request's whole body
    /// (then 408); proxied bodies stream and are not limited.
    #[arg(long, env = "BODY_READ_TIMEOUT_SECONDS", value_name = "BODY_READ_TIMEOUT_SECONDS",
          default_value = "60", value_parser = parse_seconds)]
    pub body_read_timeout: Duration,

    /// Seconds an idle keep-alive connection is kept open.
    #[arg(long, env = "KEEPALIVE_TIMEOUT_SECONDS", value_name = "KEEPALIVE_TIMEOUT_SECONDS",
          default_value = "60", value_parser = parse_seconds)]
    pub keepalive_timeout: Duration,

    /// Seconds a library may take to complete a request it answered
    /// "pending" (ABI 2); then 504.
    #[arg(long, env = "LIBRARY_COMPLETION_TIMEOUT_SECONDS", value_name = "LIBRARY_COMPLETION_TIMEOUT_SECONDS",
          default_value = "300", value_parser = parse_seconds)]
    pub library_completion_timeout: Duration,

    /// Seconds to establish a connection to an upstream server (then 504).
    #[arg(long, env = "UPSTREAM_CONNECT_TIMEOUT_SECONDS", value_name = "UPSTREAM_CONNECT_TIMEOUT_SECONDS",
          default_value = "5", value_parser = parse_seconds)]
    pub upstream_connect_timeout: Duration,

    /// Seconds an upstream may take to send its response head (then 504).
    #[arg(long, env = "UPSTREAM_RESPONSE_TIMEOUT_SECONDS", value_name = "UPSTREAM_RESPONSE_TIMEOUT_SECONDS",
          default_value = "60", value_parser = parse_seconds)]
    pub upstream_response_timeout: Duration,

    /// Seconds an idle pooled connection to an upstream is kept.
    #[arg(long, env = "UPSTREAM_IDLE_TIMEOUT_SECONDS", value_name = "UPSTREAM_IDLE_TIMEOUT_SECONDS",
          default_value = "90", value_parser = parse_seconds)]
    pub upstream_idle_timeout: Duration,

    /// Seconds an upstream that failed a connection is skipped.
    #[arg(long, env = "UPSTREAM_COOLDOWN_SECONDS", value_name = "UPSTREAM_COOLDOWN_SECONDS",
          default_value = "10", value_parser = parse_seconds)]
    pub upstream_cooldown: Duration,

    /// Run the server in this process, without the supervisor that restarts
    /// it after a crash (for debugging, or under systemd and the like).
    #[arg(long, env = "FLEXILIB_NO_SUPERVISOR", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::FalseyValueParser::new())]
    pub no_supervisor: bool,

    /// Address of the Lambda Invoke API (`POST
    /// /2015-03-31/functions/{name}/invocations`, as `aws lambda invoke
    /// --endpoint-url` and `cargo lambda invoke` call it), e.g.
    /// `127.0.0.1:9001`. Off by default: it reaches every function whatever
    /// its route, so it is never served on the public port.
    #[arg(long, env = "INVOKE_API_ADDRESS")]
    pub invoke_api_address: Option<std::net::SocketAddr>,

    /// Format of the access log on stdout: `original` (the original
    /// FlexiLib's line) or `json` (one object per line).
    #[arg(long, env = "ACCESS_LOG_FORMAT", value_enum, default_value_t = crate::access_log::LogFormat::Original)]
    pub access_log_format: crate::access_log::LogFormat,

    /// Compress responses of text-like types over 1 KiB with zstd, brotli
    /// or gzip, as the client's Accept-Encoding asks (`on`, `off`; a
    /// route's `compress=off` turns it off for that route).
    #[arg(long, env = "COMPRESSION", value_enum, default_value_t = Switch::On)]
    pub compression: Switch,

    /// Address of the admin listener (`/metrics` for Prometheus,
    /// `/healthz`, `/readyz`, `/status`), e.g. `127.0.0.1:9901`. Off by
    /// default; never the public port (the server refuses to start).
    #[arg(long, env = "ADMIN_ADDRESS")]
    pub admin_address: Option<std::net::SocketAddr>,

    /// Port of the TLS listener (on LISTEN_ADDRESS; off by default). Needs
    /// TLS_CERT and TLS_KEY, or ACME_DOMAINS.
    #[arg(long, env = "TLS_PORT")]
    pub tls_port: Option<u16>,

    /// The certificate chain (PEM) for TLS_PORT, relative to the working
    /// directory; reloaded when it changes.
    #[arg(long, env = "TLS_CERT", requires_all = ["tls_port", "tls_key"])]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) for TLS_CERT; reloaded when it changes.
    #[arg(long, env = "TLS_KEY", requires_all = ["tls_port", "tls_cert"])]
    pub tls_key: Option<PathBuf>,

    /// More certificates, chosen by the name a client asks for (SNI):
    /// NAME.pem + NAME.key pairs, or certbot's DIR/fullchain.pem +
    /// DIR/privkey.pem; reloaded when they change. TLS_CERT serves the rest.
    #[arg(long, env = "TLS_CERT_DIR", requires = "tls_port")]
    pub tls_cert_dir: Option<PathBuf>,

    /// Names to get a certificate for from an ACME CA (comma-separated;
    /// off when empty): one certificate for all of them, validated by
    /// HTTP-01 on PORT (which must be reachable as port 80), renewed in the
    /// background. Needs TLS_PORT.
    #[cfg(feature = "acme")]
    #[arg(
        long,
        env = "ACME_DOMAINS",
        value_delimiter = ',',
        requires = "tls_port"
    )]
    pub acme_domains: Vec<String>,

    /// The ACME CA's directory URL.
    #[cfg(feature = "acme")]
    #[arg(long, env = "ACME_DIRECTORY", default_value = LETS_ENCRYPT)]
    pub acme_directory: String,

    /// Contact address for the ACME account (optional).
    #[cfg(feature = "acme")]
    #[arg(long, env = "ACME_EMAIL")]
    pub acme_email: Option<String>,

    /// A PEM file of root certificates to trust for ACME_DIRECTORY besides
    /// the system's (a test CA's, say).
    #[cfg(feature = "acme")]
    #[arg(long, env = "ACME_CA")]
    pub acme_ca: Option<PathBuf>,

    /// Where the ACME account key and the issued certificate and key are
    /// kept (mode 0700; files 0600). Default: `$XDG_STATE_HOME/flexilib/acme`,
    /// else `$HOME/.local/state/flexilib/acme`.
    #[cfg(feature = "acme")]
    #[arg(long, env = "ACME_STATE_DIR")]
    pub acme_state_dir: Option<PathBuf>,

    /// `on`: plain-port requests are answered 308 to the same URL on
    /// https (TLS_PORT). Needs TLS_PORT.
    #[arg(long, env = "HTTPS_REDIRECT", value_enum, default_value_t = Switch::Off)]
    pub https_redirect: Switch,

    /// HTTP/2: `on` serves it by ALPN (`h2`) on TLS_PORT and with prior
    /// knowledge (h2c) on the plain port; `off` speaks HTTP/1.1 only.
    #[arg(long, env = "HTTP2", value_enum, default_value_t = Switch::On)]
    pub http2: Switch,

    /// Most asynchronous (`Event`) invocations waiting or running at once,
    /// across functions; past it the Invoke API answers 429.
    #[arg(long, env = "EVENT_QUEUE_MAX", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub event_queue_max: u64,

    /// Where the dependencies of Lambda functions run by FlexiLib's runtime
    /// clients are installed (`requirements.txt`, `package.json`), one
    /// directory per set. Default: `$XDG_CACHE_HOME/flexilib`, else
    /// `$HOME/.cache/flexilib`.
    #[arg(long, env = "LAMBDA_CACHE_DIR")]
    pub lambda_cache_dir: Option<std::path::PathBuf>,

    /// Most bytes of asynchronous (`Event`) invocation payloads held at
    /// once, across functions; past it the Invoke API answers 429.
    #[arg(long, env = "EVENT_QUEUE_MAX_BYTES", default_value_t = 64 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1024..=(1u64 << 34)))]
    pub event_queue_max_bytes: u64,

    /// Check the config (rules, the files they name, library options) and
    /// exit: 0 if it would serve, 2 (with FILE:LINE) if not.
    #[arg(long)]
    pub check: bool,

    /// Seconds in-flight requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", value_name = "SHUTDOWN_GRACE_SECONDS",
          default_value = "30", value_parser = parse_seconds)]
    pub shutdown_grace: Duration,
}

/// The highest `MAX_HEADER_COUNT`. The head parser's field table has a
/// slot per allowed field: on the stack up to 256 (`http1::head`), on the
/// heap beyond; 2048 keeps that allocation well under glibc's 128 KiB
/// `mmap` threshold, so it never returns memory to the kernel per request.
/// The default, 256, serves what nginx serves (150 small headers, say).
pub const MAX_HEADER_COUNT: usize = 2048;

impl Settings {
    /// Checks what clap cannot: the admin listener and the Invoke API must
    /// not take a public port (the public listener's sockets may share a
    /// port with another bound to it, so binding would not always fail).
    pub fn check_addresses(&self) -> Result<(), String> {
        self.check_tls()?;
        let public = [Some(self.port), self.tls_port]
            .into_iter()
            .flatten()
            .filter(|&port| port != 0)
            .map(|port| std::net::SocketAddr::new(self.listen_address, port));
        let private = [
            ("ADMIN_ADDRESS", self.admin_address),
            ("INVOKE_API_ADDRESS", self.invoke_api_address),
        ];
        for public in public {
            for (name, address) in private {
                if address.is_some_and(|address| overlaps(address, public)) {
                    return Err(format!(
                        "{name} must not be a public listener's address ({public})"
                    ));
                }
            }
        }
        match private {
            [(_, Some(admin)), (_, Some(invoke))]
                if admin.port() != 0 && overlaps(admin, invoke) =>
            {
                Err(format!(
                    "ADMIN_ADDRESS and INVOKE_API_ADDRESS are both {admin}"
                ))
            }
            _ => Ok(()),
        }
    }

    /// `TLS_PORT` needs a certificate: `TLS_CERT` and `TLS_KEY`, or ACME.
    fn check_tls(&self) -> Result<(), String> {
        #[cfg(feature = "acme")]
        for name in self.acme_domains.iter().map(|name| name.trim()) {
            let is_dns_name = rustls::pki_types::DnsName::try_from(name).is_ok();
            if !name.is_empty() && (!is_dns_name || name.starts_with("*.")) {
                return Err(format!(
                    "ACME_DOMAINS: `{name}` is not a DNS name that HTTP-01 can validate \
                     (no wildcards, no IP addresses)"
                ));
            }
        }
        if self.tls_port.is_none() || self.tls_cert.is_some() || self.acme_enabled() {
            return Ok(());
        }
        Err("TLS_PORT needs TLS_CERT and TLS_KEY, or ACME_DOMAINS".into())
    }

    /// Whether certificates come from ACME (`ACME_DOMAINS` names one).
    pub fn acme_enabled(&self) -> bool {
        #[cfg(feature = "acme")]
        {
            self.acme_domains.iter().any(|name| !name.trim().is_empty())
        }
        #[cfg(not(feature = "acme"))]
        {
            false
        }
    }

    /// Handler thread count after defaults.
    pub fn handler_threads(&self) -> usize {
        self.server_thread_count
            .unwrap_or_else(default_thread_count)
    }

    /// The connection cap: `MAX_CONNECTIONS`, or the default for an open
    /// file limit of `open_files` (if known).
    pub fn max_connections(&self, open_files: Option<u64>) -> usize {
        self.max_connections.unwrap_or_else(|| {
            let half = open_files.map_or(usize::MAX, |files| {
                usize::try_from(files / 2).unwrap_or(usize::MAX)
            });
            DEFAULT_MAX_CONNECTIONS.min(half).max(1)
        })
    }

    /// Reserve I/O threads.
    pub fn reserved_io_threads(&self) -> usize {
        self.reserved_io_threads
    }

    /// Most header fields in a request head: `MAX_HEADER_COUNT`, but never
    /// more than `MAX_HEADER_BYTES` can hold (the shortest field line, `a:`
    /// and CRLF, is 4 bytes).
    pub fn max_header_count(&self) -> usize {
        ((self.max_header_bytes / 4) as usize).min(usize::from(self.max_header_fields))
    }

    /// Bytes pre-allocated per arena.
    pub fn arena_prealloc_bytes(&self) -> usize {
        self.response_preallocation_kb.saturating_mul(1024)
    }

    /// Bytes an arena may retain between requests (never below the pre-allocation).
    pub fn arena_retain_bytes(&self) -> usize {
        self.arena_retain_kb
            .saturating_mul(1024)
            .max(self.arena_prealloc_bytes())
    }
}

/// Two listening addresses would take the same port: equal ports, and
/// equal addresses or one of them the wildcard (`0.0.0.0`, `::`).
fn overlaps(a: std::net::SocketAddr, b: std::net::SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// CPU count, capped at 4 in debug builds as in the original.
fn default_thread_count() -> usize {
    let cpus = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS as usize);
    if cfg!(debug_assertions) {
        cpus.min(4)
    } else {
        cpus
    }
}

/// Parses a positive number of seconds, fractions allowed ("0.5").
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0 * 365.0) {
        return Err(format!("`{text}` must be more than 0 and at most one year"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_and_reject() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-3").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn admin_address_never_takes_a_public_port() {
        let check = |args: &[&str]| {
            let mut argv = vec!["flexilib"];
            argv.extend_from_slice(args);
            Settings::try_parse_from(argv)
                .map_err(|e| e.to_string())
                .and_then(|settings| settings.check_addresses())
        };
        assert!(check(&["--admin-address", "127.0.0.1:9901"]).is_ok());
        assert!(check(&["--port", "9901", "--admin-address", "127.0.0.1:9901"]).is_err());
        assert!(check(&[
            "--listen-address",
            "127.0.0.1",
            "--port",
            "9901",
            "--admin-address",
            "127.0.0.2:9901"
        ])
        .is_ok());
        assert!(check(&[
            "--tls-port",
            "9443",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--admin-address",
            "127.0.0.1:9443"
        ])
        .is_err());
        assert!(check(&[
            "--admin-address",
            "127.0.0.1:9901",
            "--invoke-api-address",
            "0.0.0.0:9901"
        ])
        .is_err());
        assert!(check(&["--port", "0", "--admin-address", "127.0.0.1:0"]).is_ok());
    }

    #[test]
    fn a_tls_port_needs_a_certificate() {
        let check = |args: &[&str]| {
            let mut argv = vec!["flexilib"];
            argv.extend_from_slice(args);
            Settings::try_parse_from(argv)
                .map_err(|e| e.to_string())
                .and_then(|settings| settings.check_addresses())
        };
        assert!(check(&["--tls-port", "8443"]).is_err());
        assert!(check(&["--tls-port", "8443", "--tls-cert", "c.pem"]).is_err());
        assert!(check(&[
            "--tls-port",
            "8443",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem"
        ])
        .is_ok());
        assert!(check(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).is_err());
        #[cfg(feature = "acme")]
        {
            assert!(check(&["--tls-port", "8443", "--acme-domains", "example.com"]).is_ok());
            assert!(check(&["--tls-port", "8443", "--acme-domains", " , "]).is_err());
            assert!(check(&["--acme-domains", "example.com"]).is_err());
            let acme = |names| check(&["--tls-port", "8443", "--acme-domains", names]);
            assert!(acme("a.example.com,www.example.com").is_ok());
            assert!(acme("*.example.com").is_err());
            assert!(acme("127.0.0.1").is_err());
            assert!(acme("not a name").is_err());
        }
    }

    #[test]
    fn header_count_follows_the_byte_limit() {
        let count = |args: &[&str]| {
            let mut argv = vec!["flexilib"];
            argv.extend_from_slice(args);
            Settings::try_parse_from(argv)
                .map(|settings| settings.max_header_count())
                .map_err(|e| e.to_string())
        };
        assert_eq!(count(&[]), Ok(256));
        assert_eq!(count(&["--max-header-bytes", "1024"]), Ok(256));
        assert_eq!(
            count(&["--max-header-bytes", "1024", "--max-header-count", "2048"]),
            Ok(256),
            "no more fields than the bytes can hold"
        );
        assert_eq!(count(&["--max-header-count", "2048"]), Ok(2048));
        assert!(count(&["--max-header-count", "2049"]).is_err());
        assert!(count(&["--max-header-count", "0"]).is_err());
    }
}
