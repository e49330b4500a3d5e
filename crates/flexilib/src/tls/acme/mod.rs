//! Certificates from an ACME CA (Let's Encrypt, RFC 8555) for
//! `ACME_DOMAINS`: one certificate for all of them, proved by HTTP-01 on
//! the plain port ([`challenge`]), kept in `ACME_STATE_DIR` ([`store`]) and
//! reused at restart, renewed once two thirds of its lifetime have passed
//! ([`validity`]). It all runs on one task of the control runtime, never
//! on a request's path: until a certificate exists, handshakes for the
//! names get `TLS_CERT` if there is one, else fail (and are logged at
//! debug level). Each new certificate joins the set the SNI resolver
//! serves from, swapped in whole, so no handshake fails over it. A
//! failure is logged with the names and the CA's words and tried again
//! later, backing off from 30 s to 6 h; the server keeps serving.

pub mod challenge;
mod client;
mod order;
mod store;
mod validity;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use instant_acme::{Account, NewAccount};

use self::store::{Issued, Store, StoreError};
use super::Current;

/// First wait after a failure; doubled after each one up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// Longest sleep before the renewal time is looked at again (the clock
/// may jump).
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// What ACME is asked for (`ACME_*`).
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// `ACME_DOMAINS`, trimmed, lower-case, none empty.
    pub domains: Vec<String>,
    /// `ACME_DIRECTORY`.
    pub directory: String,
    /// `ACME_EMAIL`.
    pub email: Option<String>,
    /// `ACME_CA`.
    pub ca: Option<PathBuf>,
    /// `ACME_STATE_DIR`, or its default.
    pub state_dir: PathBuf,
}

impl AcmeConfig {
    /// The configuration `settings` give, None when `ACME_DOMAINS` is empty.
    pub fn from_settings(settings: &crate::settings::Settings) -> Option<Self> {
        let domains: Vec<String> = settings
            .acme_domains
            .iter()
            .map(|domain| domain.trim().to_ascii_lowercase())
            .filter(|domain| !domain.is_empty())
            .collect();
        if domains.is_empty() {
            return None;
        }
        Some(Self {
            domains,
            directory: settings.acme_directory.clone(),
            email: settings.acme_email.clone(),
            ca: settings.acme_ca.clone(),
            state_dir: settings
                .acme_state_dir
                .clone()
                .unwrap_or_else(default_state_dir),
        })
    }
}

/// `$XDG_STATE_HOME/flexilib/acme`, else `$HOME/.local/state/flexilib/acme`,
/// else `./flexilib-acme`.
fn default_state_dir() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|dir| !dir.is_empty())
                .map(|home| PathBuf::from(home).join(".local/state"))
        });
    match base {
        Some(base) => base.join("flexilib").join("acme"),
        None => PathBuf::from("flexilib-acme"),
    }
}

/// Why a certificate was not issued.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA answered with an error, or could not be reached.
    #[error("{0}")]
    Protocol(#[from] instant_acme::Error),
    /// The HTTPS client could not be made (`ACME_CA`).
    #[error(transparent)]
    Client(#[from] client::ClientError),
    /// The state directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The CA offers no HTTP-01 challenge for a name (a wildcard needs DNS-01).
    #[error("{domain}: the CA offers no HTTP-01 challenge (wildcard names need DNS-01, which is not supported)")]
    NoHttp01 {
        /// The name.
        domain: String,
    },
    /// An authorization is neither pending nor valid.
    #[error("{domain}: authorization {message}")]
    Authorization {
        /// The name.
        domain: String,
        /// Its status.
        message: String,
    },
    /// The CA did not validate the names.
    #[error("order {status}: {problems}")]
    Order {
        /// The order's status.
        status: String,
        /// The CA's reasons.
        problems: String,
    },
    /// The key or CSR could not be made.
    #[error("key or CSR: {0}")]
    Csr(#[from] rcgen::Error),
}

/// Starts getting and renewing the certificate, serving it through `current`.
pub(crate) fn start(config: AcmeConfig, current: Arc<Current>) {
    crate::control::spawn_soon(run(config, current));
}

/// Serves `issued` for the names it covers.
fn install(current: &Current, store: &Store, issued: &Issued) -> Result<(), crate::tls::TlsError> {
    current.set_acme(Arc::clone(&issued.key), &store.certificate_path())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

async fn run(config: AcmeConfig, current: Arc<Current>) {
    let domains = config.domains.join(",");
    let store = match Store::open(&config.state_dir) {
        Ok(store) => store,
        Err(error) => {
            tracing::error!(%domains, %error, "ACME off: its state directory cannot be used");
            return;
        }
    };
    let mut valid = None;
    match store.certificate(&config.domains) {
        Ok(Some(issued)) if issued.validity.not_after <= now() => {
            tracing::warn!(%domains, path = %store.certificate_path().display(), "stored ACME certificate expired: ordering a new one");
        }
        Ok(Some(issued)) => match install(&current, &store, &issued) {
            Ok(()) => {
                tracing::info!(
                    %domains,
                    path = %store.certificate_path().display(),
                    renew_in_s = issued.validity.renew_at() - now(),
                    "ACME certificate loaded"
                );
                valid = Some(issued.validity);
            }
            Err(error) => tracing::warn!(%domains, %error, "stored ACME certificate not usable"),
        },
        Ok(None) => {
            tracing::info!(%domains, "no stored ACME certificate for these names: ordering one")
        }
        Err(error) => {
            tracing::warn!(%domains, %error, "stored ACME certificate not usable: ordering a new one")
        }
    }
    let mut account = None;
    let mut backoff = FIRST_BACKOFF;
    loop {
        if let Some(validity) = valid {
            let wait = validity.renew_at() - now();
            if wait > 0 {
                let wait = Duration::from_secs(u64::try_from(wait).unwrap_or(0)).min(MAX_SLEEP);
                tokio::time::sleep(wait).await;
                continue;
            }
            tracing::info!(%domains, "ACME certificate due for renewal");
        }
        let issued = match get_certificate(&config, &store, &mut account).await {
            Ok(issued) => install(&current, &store, &issued)
                .map(|()| issued)
                .map_err(|error| AcmeError::Store(StoreError::Certificate(error))),
            Err(error) => Err(error),
        };
        match issued {
            Ok(issued) => {
                tracing::info!(
                    %domains,
                    path = %store.certificate_path().display(),
                    renew_in_s = issued.validity.renew_at() - now(),
                    "ACME certificate issued"
                );
                valid = Some(issued.validity);
                backoff = FIRST_BACKOFF;
                // Not needed again for weeks: the account and its HTTPS
                // client (the system's roots) are made again at renewal,
                // and the code an order ran leaves RSS until then.
                account = None;
                let advised = crate::os::drop_unused_code_pages();
                crate::os::release_free_memory();
                tracing::debug!(advised, "code pages dropped after the ACME order");
            }
            Err(error) => {
                if let AcmeError::Protocol(instant_acme::Error::Api(problem)) = &error {
                    if problem.r#type.as_deref()
                        == Some("urn:ietf:params:acme:error:accountDoesNotExist")
                    {
                        store.forget_account(&config.directory);
                        account = None;
                    }
                }
                tracing::error!(
                    %domains,
                    directory = %config.directory,
                    %error,
                    retry_in_s = backoff.as_secs(),
                    "ACME certificate not issued"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The account (made or loaded once), an order, and the result stored.
async fn get_certificate(
    config: &AcmeConfig,
    store: &Store,
    account: &mut Option<Account>,
) -> Result<Issued, AcmeError> {
    let ready = match account {
        Some(account) => account.clone(),
        None => {
            let made = open_account(config, store).await?;
            *account = Some(made.clone());
            made
        }
    };
    let certificate = order::issue(&ready, &config.domains).await?;
    Ok(store.save_certificate(&certificate.chain_pem, &certificate.key_pem)?)
}

/// The stored account for the directory, or a new one (stored).
async fn open_account(config: &AcmeConfig, store: &Store) -> Result<Account, AcmeError> {
    let http = Box::new(client::Client::new(config.ca.as_deref())?);
    if let Some(credentials) = store.account(&config.directory)? {
        return Ok(Account::builder_with_http(http)
            .from_credentials(credentials)
            .await?);
    }
    let contact = config.email.as_ref().map(|email| format!("mailto:{email}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = Account::builder_with_http(http)
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            config.directory.clone(),
            None,
        )
        .await?;
    store.save_account(&config.directory, &credentials)?;
    tracing::info!(directory = %config.directory, account = account.id(), "ACME account created");
    Ok(account)
}
