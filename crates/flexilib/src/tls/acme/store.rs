//! What ACME keeps on disk, in `ACME_STATE_DIR` (mode 0700): the account
//! (`account-HASH.json`, its key included, one per directory URL) and the
//! issued certificate (`certificate.pem`, the chain, and `certificate.key`),
//! every file mode 0600, written whole (a temporary file renamed) so a
//! restart never finds half of one.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use instant_acme::AccountCredentials;
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;

use super::validity::Validity;

/// Why a file of the state directory cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing failed.
    #[error("{path}: {error}", path = .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The stored account is not one instant-acme can read.
    #[error("{path}: {error}", path = .path.display())]
    Account {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: serde_json::Error,
    },
    /// The stored certificate does not load.
    #[error(transparent)]
    Certificate(#[from] crate::tls::TlsError),
    /// Its validity cannot be read.
    #[error("{path}: {error}", path = .path.display())]
    Validity {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: super::validity::ValidityError,
    },
}

/// A certificate ready to serve.
pub struct Issued {
    /// The chain and key.
    pub key: Arc<CertifiedKey>,
    /// The leaf's validity.
    pub validity: Validity,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens `dir`, creating it (mode 0700) if needed.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let io = |error| StoreError::Io {
            path: dir.to_path_buf(),
            error,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The path of the issued certificate chain.
    pub fn certificate_path(&self) -> PathBuf {
        self.dir.join("certificate.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.join("certificate.key")
    }

    fn account_path(&self, directory: &str) -> PathBuf {
        // FNV-1a: a stable name per directory URL, not a secret.
        let hash = directory
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        self.dir.join(format!("account-{hash:016x}.json"))
    }

    /// The account stored for `directory`, if any.
    pub fn account(&self, directory: &str) -> Result<Option<AccountCredentials>, StoreError> {
        let path = self.account_path(directory);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StoreError::Io { path, error }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| StoreError::Account { path, error })
    }

    /// Stores the account for `directory`.
    pub fn save_account(
        &self,
        directory: &str,
        credentials: &AccountCredentials,
    ) -> Result<(), StoreError> {
        let path = self.account_path(directory);
        let json = serde_json::to_vec(credentials).map_err(|error| StoreError::Account {
            path: path.clone(),
            error,
        })?;
        write_private(&path, &json)
    }

    /// Forgets the account for `directory` (the CA no longer knows it).
    pub fn forget_account(&self, directory: &str) {
        let _ = std::fs::remove_file(self.account_path(directory));
    }

    /// The stored certificate, if there is one valid for every name of
    /// `domains`.
    pub fn certificate(&self, domains: &[String]) -> Result<Option<Issued>, StoreError> {
        let (cert, key) = (self.certificate_path(), self.key_path());
        if !cert.exists() || !key.exists() {
            return Ok(None);
        }
        let issued = self.load()?;
        let leaf = issued
            .key
            .end_entity_cert()
            .map_err(crate::tls::TlsError::from)?;
        let covers_all = domains.iter().all(|domain| {
            ServerName::try_from(domain.as_str()).is_ok_and(|name| {
                webpki::EndEntityCert::try_from(leaf)
                    .and_then(|cert| cert.verify_is_valid_for_subject_name(&name))
                    .is_ok()
            })
        });
        Ok(covers_all.then_some(issued))
    }

    /// Stores a newly issued chain and its key, and loads them.
    pub fn save_certificate(&self, chain_pem: &str, key_pem: &str) -> Result<Issued, StoreError> {
        write_private(&self.key_path(), key_pem.as_bytes())?;
        write_private(&self.certificate_path(), chain_pem.as_bytes())?;
        self.load()
    }

    fn load(&self) -> Result<Issued, StoreError> {
        let path = self.certificate_path();
        let key = crate::tls::load(&path, &self.key_path())?;
        let leaf = key.end_entity_cert().map_err(crate::tls::TlsError::from)?;
        let validity = Validity::of(leaf).map_err(|error| StoreError::Validity { path, error })?;
        Ok(Issued { key, validity })
    }
}

/// Writes `path` whole with mode 0600: a temporary file beside it, renamed.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let io = |error| StoreError::Io {
        path: path.to_path_buf(),
        error,
    };
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(io)
}
