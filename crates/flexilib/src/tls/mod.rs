//! TLS on `TLS_PORT` (rustls, TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`):
//! the certificate chain and key from `TLS_CERT` / `TLS_KEY` (PEM), and
//! more chosen by SNI from `TLS_CERT_DIR` ([`sni`]), reloaded when a file
//! changes, as certbot and Kubernetes secrets rotate them: a thread looks
//! at the files every second and swaps the certificates in whole, so a
//! handshake gets the old certificate or the new one, never a failure; a
//! file that does not load leaves the current certificates serving and is
//! logged. With the `acme` feature, certificates for `ACME_DOMAINS` are
//! issued and renewed by an ACME CA in the background ([`acme`]) and join
//! the same set, ahead of the others.

#[cfg(feature = "acme")]
pub mod acme;
mod sni;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
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
pub(crate) struct Current {
    /// `TLS_CERT`: for a handshake that names no server, or one no
    /// certificate of the directory covers. None without `TLS_CERT`
    /// (ACME only): such a handshake fails.
    default: ArcSwapOption<CertifiedKey>,
    /// `TLS_CERT_DIR`'s, in file-name order.
    named: ArcSwap<Vec<sni::Named>>,
    /// The ACME CA's (none until one is issued or loaded).
    acme: ArcSwap<Vec<sni::Named>>,
}

impl Current {
    /// Serves `certified` (issued by ACME) to the names it covers, in
    /// place of the one before it.
    #[cfg(feature = "acme")]
    pub(crate) fn set_acme(
        &self,
        certified: Arc<CertifiedKey>,
        path: &Path,
    ) -> Result<(), TlsError> {
        let named = sni::Named::new(certified, path)?;
        self.acme.store(Arc::new(vec![named]));
        Ok(())
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello
            .server_name()
            .and_then(|name| ServerName::try_from(name).ok())
        {
            for set in [&self.acme, &self.named] {
                if let Some(named) = set.load().iter().find(|named| named.covers(&name)) {
                    return Some(Arc::clone(&named.key));
                }
            }
        }
        let default = self.default.load_full();
        if default.is_none() {
            tracing::debug!(
                server_name = hello.server_name().unwrap_or(""),
                "TLS handshake refused: no certificate for this name (yet)"
            );
        }
        default
    }
}

/// The certificate files a TLS listener serves.
#[derive(Debug, Clone)]
pub struct Certificates {
    /// `TLS_CERT` and `TLS_KEY`.
    pub default: Option<(PathBuf, PathBuf)>,
    /// `TLS_CERT_DIR`.
    pub dir: Option<PathBuf>,
    /// `ACME_*`.
    #[cfg(feature = "acme")]
    pub acme: Option<acme::AcmeConfig>,
}

/// Loads the certificates and makes the acceptor (offering `h2` by ALPN
/// when `http2`, and `http/1.1`); starts the thread that reloads them when
/// they change.
pub fn acceptor(files: &Certificates, http2: bool) -> Result<TlsAcceptor, TlsError> {
    let named = match &files.dir {
        Some(dir) => sni::load_dir(dir)?,
        None => Vec::new(),
    };
    let default = match &files.default {
        Some((cert, key)) => Some(load(cert, key)?),
        None => None,
    };
    let current = Arc::new(Current {
        default: ArcSwapOption::new(default),
        named: ArcSwap::from_pointee(named),
        acme: ArcSwap::from_pointee(Vec::new()),
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
    #[cfg(feature = "acme")]
    if let Some(config) = &files.acme {
        acme::start(config.clone(), Arc::clone(&current));
    }
    watch(current, files.clone());
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Reloads the certificates whenever a file changes.
fn watch(current: Arc<Current>, files: Certificates) {
    if files.default.is_none() && files.dir.is_none() {
        return;
    }
    let (default, dir) = (files.default.clone(), files.dir.clone());
    let versions = move || {
        (
            default
                .as_ref()
                .map(|(cert, key)| (FileVersion::of(cert).ok(), FileVersion::of(key).ok())),
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
                if let Some((cert, key)) = &files.default {
                    match load(cert, key) {
                        Ok(certified) => {
                            current.default.store(Some(certified));
                            tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
                        }
                        Err(error) => {
                            tracing::warn!(%error, "TLS certificate not reloaded; the current one keeps serving");
                        }
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
