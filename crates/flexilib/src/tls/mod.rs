//! TLS on `TLS_PORT` (rustls, TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`):
//! the certificate chain and key from `TLS_CERT` / `TLS_KEY` (PEM), and
//! more chosen by SNI from `TLS_CERT_DIR` ([`sni`]), reloaded when a file
//! changes, as certbot and Kubernetes secrets rotate them: a thread looks
//! at the files every second and swaps the certificates in whole, so a
//! handshake gets the old certificate or the new one, never a failure; a
//! file that does not load leaves the current certificates serving and is
//! logged.

mod sni;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::file_version::FileVersion;

/// How often the certificate files are looked at.
const RELOAD_CHECK: Duration = Duration::from_secs(1);
/// How long both files must stay unchanged before they are loaded.
const SETTLE: Duration = Duration::from_millis(200);

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read or holds no PEM item of the kind.
    #[error("{path}: {message}", path = .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key does not suit the certificate, or rustls refused it.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
}

/// Reads the chain and the key and pairs them.
pub(crate) fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let file_error = |path: &Path, message: String| TlsError::File {
        path: path.to_path_buf(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(file_error(cert, "no PEM certificate in it".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e.to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, private, &provider)?;
    Ok(Arc::new(certified))
}

/// The certificates handshakes get, each swapped whole on reload.
#[derive(Debug)]
struct Current {
    /// `TLS_CERT`: for a handshake that names no server, or one no
    /// certificate of the directory covers.
    default: ArcSwap<CertifiedKey>,
    /// `TLS_CERT_DIR`'s, in file-name order.
    named: ArcSwap<Vec<sni::Named>>,
}

impl ResolvesServerCert for Current {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello
            .server_name()
            .and_then(|name| ServerName::try_from(name).ok())
        {
            if let Some(named) = self.named.load().iter().find(|named| named.covers(&name)) {
                return Some(Arc::clone(&named.key));
            }
        }
        Some(self.default.load_full())
    }
}

/// The certificate files a TLS listener serves.
#[derive(Debug, Clone)]
pub struct Certificates {
    /// `TLS_CERT`.
    pub cert: PathBuf,
    /// `TLS_KEY`.
    pub key: PathBuf,
    /// `TLS_CERT_DIR`.
    pub dir: Option<PathBuf>,
}

/// Loads the certificates and makes the acceptor (offering `h2` by ALPN
/// when `http2`, and `http/1.1`); starts the thread that reloads them when
/// they change.
pub fn acceptor(files: &Certificates, http2: bool) -> Result<TlsAcceptor, TlsError> {
    let named = match &files.dir {
        Some(dir) => sni::load_dir(dir)?,
        None => Vec::new(),
    };
    let current = Arc::new(Current {
        default: ArcSwap::new(load(&files.cert, &files.key)?),
        named: ArcSwap::from_pointee(named),
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    watch(current, files.clone());
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reloads the certificates whenever a file changes.
fn watch(current: Arc<Current>, files: Certificates) {
    let Certificates { cert, key, dir } = files.clone();
    let versions = move || {
        (
            FileVersion::of(&cert).ok(),
            FileVersion::of(&key).ok(),
            dir.as_deref().map(sni::versions),
        )
    };
    let started = std::thread::Builder::new()
        .name("flexilib-tls-reload".into())
        .spawn(move || {
            let mut seen = versions();
            loop {
                std::thread::sleep(RELOAD_CHECK);
                let now = versions();
                if now == seen {
                    continue;
                }
                // The chain and the key are replaced one after the other:
                // wait until neither moves, so a new key never meets the
                // old chain.
                std::thread::sleep(SETTLE);
                if versions() != now {
                    continue;
                }
                seen = now;
                match load(&files.cert, &files.key) {
                    Ok(certified) => {
                        current.default.store(certified);
                        tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "TLS certificate not reloaded; the current one keeps serving");
                    }
                }
                if let Some(dir) = &files.dir {
                    match sni::load_dir(dir) {
                        Ok(named) => {
                            let count = named.len();
                            current.named.store(Arc::new(named));
                            tracing::info!(dir = %dir.display(), certificates = count, "TLS certificates by name reloaded");
                        }
                        Err(error) => {
                            tracing::warn!(%error, "TLS certificates by name not reloaded; the current ones keep serving");
                        }
                    }
                }
            }
        });
    if let Err(error) = started {
        tracing::warn!(%error, "cannot start the TLS reload thread: certificates stay as loaded");
    }
}
