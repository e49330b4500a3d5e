//! Upstream targets in `proxy.ini`: `http://` and `https://` server URLs,
//! then the route's options (`strip_prefix=`, `host=`, `ca=`,
//! `insecure_skip_verify=`, `sni=`, `h2=`, `health=`, `interval=`,
//! `balance=`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

/// `http[s]://host:port[/base], … [options]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamSpec {
    /// The servers, in the order the balancing policy walks them.
    pub servers: Vec<UpstreamUrl>,
    /// Replace the matched path prefix by the base path. Default: yes when
    /// the URL has a base path (as nginx does), no otherwise.
    pub strip_prefix: bool,
    /// Send the upstream's own authority as `Host` instead of the client's.
    pub host_upstream: bool,
    /// How https servers are verified (unused when every server is http).
    pub tls: UpstreamTlsSpec,
    /// Speak HTTP/2 to the servers (`h2=true`): prior knowledge on http,
    /// ALPN `h2` on https.
    pub h2: bool,
    /// Active health checks (`health=/path`, `interval=SECONDS`).
    pub health: Option<HealthSpec>,
    /// How the next server is chosen.
    pub balance: Balance,
}

/// One upstream server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamUrl {
    /// `host:port`.
    pub authority: String,
    /// Path prefix on the upstream, without a trailing slash ("" for none).
    pub base_path: String,
    /// `https://`.
    pub https: bool,
}

/// TLS options of an upstream route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UpstreamTlsSpec {
    /// `ca=FILE`: trust these certificates (DER, read from the PEM file at
    /// load) instead of the system's roots.
    pub ca: Option<CaFile>,
    /// `insecure_skip_verify=true`: accept any certificate.
    pub insecure_skip_verify: bool,
    /// `sni=NAME`: the name sent and verified instead of the URL's host.
    pub sni: Option<String>,
}

/// A CA file named by `ca=` and the certificates it held at load.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaFile {
    /// Absolute (resolved against the config file's directory).
    pub path: PathBuf,
    /// The certificates, DER.
    pub certificates: Vec<Vec<u8>>,
}

/// `health=/path interval=SECONDS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthSpec {
    /// Path (and query) probed with `GET`.
    pub path: String,
    /// Time between probes; also a probe's time limit.
    pub interval: Duration,
}

/// `balance=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Balance {
    /// Each request goes to the next server in turn (the default).
    #[default]
    RoundRobin,
    /// The server with the fewest requests in flight; ties go to the
    /// first in the URL list.
    LeastConn,
}

/// Default `interval=` when `health=` is given.
const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);

fn flag(key: &str, setting: &str) -> Result<bool, String> {
    match setting {
        "yes" | "true" | "on" => Ok(true),
        "no" | "false" | "off" => Ok(false),
        _ => Err(format!("`{key}` is `true` or `false`, not `{setting}`")),
    }
}

/// Parses an upstream rule's value; `base` is the config file's directory
/// (for `ca=`).
pub fn parse(value: &str, base: &Path) -> Result<UpstreamSpec, String> {
    let mut servers = Vec::new();
    let mut strip_prefix = None;
    let mut host_upstream = false;
    let mut tls = UpstreamTlsSpec::default();
    let mut h2 = false;
    let mut health_path = None;
    let mut interval = None;
    let mut balance = Balance::default();
    // Any path after the authority, even `/`: the matched prefix is then
    // replaced by it, as nginx's `proxy_pass` with a URI does.
    let mut has_path = false;
    for token in value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
    {
        if let Some((key, setting)) = token.split_once('=') {
            match (key, setting) {
                ("strip_prefix", _) => {
                    strip_prefix = Some(flag(key, setting).map_err(|_| {
                        format!("`strip_prefix` is `yes` or `no`, not `{setting}`")
                    })?)
                }
                ("host", "upstream") => host_upstream = true,
                ("host", "pass") => host_upstream = false,
                ("host", _) => {
                    return Err(format!("`host` is `pass` or `upstream`, not `{setting}`"))
                }
                ("ca", "") => return Err("`ca=` needs a PEM file".into()),
                ("ca", file) => tls.ca = Some(read_ca(&base.join(file))?),
                ("insecure_skip_verify", _) => tls.insecure_skip_verify = flag(key, setting)?,
                ("sni", name) => {
                    if rustls::pki_types::DnsName::try_from(name).is_err() {
                        return Err(format!("`sni={name}`: not a DNS name"));
                    }
                    tls.sni = Some(name.to_string());
                }
                ("h2", _) => h2 = flag(key, setting)?,
                ("health", path) => {
                    let valid = path
                        .parse::<hyper::http::uri::PathAndQuery>()
                        .is_ok_and(|parsed| parsed.as_str() == path);
                    if !path.starts_with('/') || path.contains('#') || !valid {
                        return Err(format!(
                            "`health={path}`: a path starting with `/` (a query may follow)"
                        ));
                    }
                    health_path = Some(path.to_string());
                }
                ("interval", seconds) => {
                    let seconds = seconds
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s >= 0.1 && *s <= 3600.0)
                        .ok_or_else(|| {
                            format!("`interval={seconds}`: seconds between 0.1 and 3600")
                        })?;
                    interval = Some(Duration::from_secs_f64(seconds));
                }
                ("balance", "round_robin") => balance = Balance::RoundRobin,
                ("balance", "least_conn") => balance = Balance::LeastConn,
                ("balance", _) => {
                    return Err(format!(
                        "`balance` is `round_robin` or `least_conn`, not `{setting}`"
                    ))
                }
                _ => {
                    return Err(format!(
                        "unknown upstream option `{key}` (strip_prefix, host, ca, insecure_skip_verify, sni, h2, health, interval, balance)"
                    ))
                }
            }
            continue;
        }
        let (https, rest) = if let Some(rest) = token.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = token.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!(
                "expected an upstream URL `http[s]://host:port[/path]`, found `{token}`"
            ));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let valid_authority = authority
            .parse::<hyper::http::uri::Authority>()
            .is_ok_and(|a| {
                a.port_u16().is_some() && !a.host().is_empty() && !authority.contains('@')
            });
        if !valid_authority {
            return Err(format!("`{token}`: the upstream needs `host:port`"));
        }
        if path.contains(['?', '#']) {
            return Err(format!(
                "`{token}`: an upstream URL takes no query or fragment"
            ));
        }
        if let Err(error) = crate::request_path::normalize(path) {
            return Err(format!("`{token}`: the base path has {error}"));
        }
        has_path |= !path.is_empty();
        servers.push(UpstreamUrl {
            authority: authority.to_string(),
            base_path: path.trim_end_matches('/').to_string(),
            https,
        });
    }
    if servers.is_empty() {
        return Err("no upstream URL".into());
    }
    let any_https = servers.iter().any(|server| server.https);
    let tls_options = tls.ca.is_some() || tls.insecure_skip_verify || tls.sni.is_some();
    if tls_options && !any_https {
        return Err("`ca=`, `insecure_skip_verify=` and `sni=` need an `https://` upstream".into());
    }
    if tls.insecure_skip_verify && tls.ca.is_some() {
        return Err("`insecure_skip_verify=true` verifies nothing: drop `ca=`".into());
    }
    if interval.is_some() && health_path.is_none() {
        return Err("`interval=` needs `health=/path`".into());
    }
    let health = health_path.map(|path| HealthSpec {
        path,
        interval: interval.unwrap_or(DEFAULT_HEALTH_INTERVAL),
    });
    Ok(UpstreamSpec {
        strip_prefix: strip_prefix.unwrap_or(has_path),
        servers,
        host_upstream,
        tls,
        h2,
        health,
        balance,
    })
}

/// The certificates of the PEM file at `path`; an error if it holds none.
fn read_ca(path: &Path) -> Result<CaFile, String> {
    let shown = path.display();
    let certificates: Vec<Vec<u8>> = CertificateDer::pem_file_iter(path)
        .map_err(|error| format!("`ca={shown}`: {error}"))?
        .map(|certificate| certificate.map(|der| der.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|error| format!("`ca={shown}`: {error}"))?;
    if certificates.is_empty() {
        return Err(format!("`ca={shown}`: no PEM certificate in it"));
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in &certificates {
        roots
            .add(CertificateDer::from(certificate.as_slice()))
            .map_err(|error| format!("`ca={shown}`: {error}"))?;
    }
    Ok(CaFile {
        path: path.to_path_buf(),
        certificates,
    })
}
