//! More certificates, chosen by the name the client asks for (SNI):
//! `TLS_CERT_DIR` holds pairs `NAME.pem` + `NAME.key` (or `NAME.crt` +
//! `NAME.key`) and certbot's layout, `DIR/fullchain.pem` +
//! `DIR/privkey.pem` in a subdirectory. A handshake that names a server
//! gets the first certificate (in file-name order) valid for that name, as
//! a client would check it (its subject alternative names, wildcards
//! included, by `rustls-webpki`); one that names none, or a name no
//! certificate covers, gets `TLS_CERT`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::CertifiedKey;

use super::{load, TlsError};
use crate::file_version::FileVersion;

/// One certificate of the directory.
#[derive(Debug)]
pub struct Named {
    /// Its leaf certificate, checked against the name asked for.
    leaf: CertificateDer<'static>,
    /// The chain and key handshakes get.
    pub key: Arc<CertifiedKey>,
}

impl Named {
    /// The certificate `certified` (its first is the leaf); `path` names
    /// it in the error.
    pub fn new(certified: Arc<CertifiedKey>, path: &Path) -> Result<Self, TlsError> {
        let leaf = certified
            .cert
            .first()
            .cloned()
            .ok_or_else(|| TlsError::File {
                path: path.to_path_buf(),
                message: "no certificate in it".into(),
            })?;
        Ok(Self {
            leaf,
            key: certified,
        })
    }

    /// Whether the certificate is valid for `name`.
    pub fn covers(&self, name: &ServerName<'_>) -> bool {
        webpki::EndEntityCert::try_from(&self.leaf)
            .and_then(|cert| cert.verify_is_valid_for_subject_name(name))
            .is_ok()
    }
}

/// The certificate and key files of `dir`, in file-name order.
fn pairs(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, TlsError> {
    let error = |message: String| TlsError::File {
        path: dir.to_path_buf(),
        message,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| error(e.to_string()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    let mut pairs = Vec::new();
    for path in entries {
        if path.is_dir() {
            let (chain, key) = (path.join("fullchain.pem"), path.join("privkey.pem"));
            if chain.is_file() && key.is_file() {
                pairs.push((chain, key));
            }
            continue;
        }
        let is_cert = path
            .extension()
            .is_some_and(|ext| ext == "pem" || ext == "crt");
        let key = path.with_extension("key");
        if is_cert && key.is_file() {
            pairs.push((path, key));
        }
    }
    Ok(pairs)
}

/// Loads every pair of `dir`; a pair that does not load, or whose files
/// belong to another user, is an error naming it.
pub fn load_dir(dir: &Path) -> Result<Vec<Named>, TlsError> {
    pairs(dir)?
        .into_iter()
        .map(|(cert, key)| {
            owned_by_us_or_root(&cert)?;
            owned_by_us_or_root(&key)?;
            Named::new(load(&cert, &key)?, &cert)
        })
        .collect()
}

/// Refuses a file another local user owns: whoever can put a pair in the
/// directory would serve a certificate for any name (the file's owner is
/// checked, not the directory's mode: a Kubernetes secret volume is a
/// sticky, world-writable tmpfs whose files root owns).
fn owned_by_us_or_root(path: &Path) -> Result<(), TlsError> {
    use std::os::unix::fs::MetadataExt as _;
    let owner = std::fs::metadata(path)
        .map_err(|e| TlsError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .uid();
    if owner == 0 || owner == crate::os::effective_uid() {
        return Ok(());
    }
    Err(TlsError::File {
        path: path.to_path_buf(),
        message: format!(
            "owned by uid {owner}, neither this server's user nor root: refused \
             (whoever can put a file here could serve a certificate for any name)"
        ),
    })
}

/// What the directory holds now, to see when it changes.
pub fn versions(dir: &Path) -> Vec<(PathBuf, Option<FileVersion>)> {
    pairs(dir)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(cert, key)| [cert, key])
        .map(|path| {
            let version = FileVersion::of(&path).ok();
            (path, version)
        })
        .collect()
}
