//! The HTTPS client the ACME protocol runs over: one connection per
//! request (an order makes a dozen), rustls on `ring` trusting the
//! system's roots and `ACME_CA`, HTTP/1.1 by hyper. instant-acme's own
//! client would bring a second set of TLS dependencies.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{HeaderValue, HOST};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

/// Longest one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request to the ACME server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `ACME_CA` cannot be used.
    #[error("ACME_CA {path}: {message}", path = .path.display())]
    Ca {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the client configuration.
    #[error("TLS client: {0}")]
    Rustls(#[from] rustls::Error),
    /// The URL is not an https URL with a host.
    #[error("{0}: not an https URL")]
    Url(String),
    /// Connecting, the handshake, or the exchange failed.
    #[error("{url}: {message}")]
    Exchange {
        /// What was asked for.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// The client; cheap to clone.
#[derive(Clone)]
pub struct Client {
    tls: TlsConnector,
}

impl Client {
    /// A client trusting the system's roots and those of `ca`.
    pub fn new(ca: Option<&Path>) -> Result<Self, ClientError> {
        // Loaded here rather than shared with https upstreams' (kept for
        // the process's life): the client lives only while an order does.
        let mut roots = rustls::RootCertStore::empty();
        let system = rustls_native_certs::load_native_certs();
        for error in &system.errors {
            tracing::warn!(%error, "a system root certificate could not be loaded");
        }
        roots.add_parsable_certificates(system.certs);
        if let Some(path) = ca {
            let ca_error = |message: String| ClientError::Ca {
                path: path.to_path_buf(),
                message,
            };
            let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_error(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| ca_error(e.to_string()))?;
            if certificates.is_empty() {
                return Err(ca_error("no PEM certificate in it".into()));
            }
            for certificate in certificates {
                roots
                    .add(certificate)
                    .map_err(|e| ca_error(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Sends `request` on a connection of its own and reads the whole response.
    async fn send(
        tls: TlsConnector,
        request: Request<BodyWrapper<Bytes>>,
    ) -> Result<Response<Full<Bytes>>, ClientError> {
        let url = request.uri().to_string();
        let exchange = |message: String| ClientError::Exchange {
            url: url.clone(),
            message,
        };
        let uri = request.uri();
        if uri.scheme_str() != Some("https") {
            return Err(ClientError::Url(url.clone()));
        }
        let host = uri.host().ok_or_else(|| ClientError::Url(url.clone()))?;
        let port = uri.port_u16().unwrap_or(443);
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let name =
            ServerName::try_from(bare_host.clone()).map_err(|_| ClientError::Url(url.clone()))?;
        let authority = uri
            .authority()
            .map(|authority| authority.as_str().to_owned())
            .unwrap_or_default();
        let target = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |path| path.as_str().to_owned());

        let tcp = tokio::net::TcpStream::connect((bare_host.as_str(), port))
            .await
            .map_err(|e| exchange(format!("cannot connect: {e}")))?;
        let stream = tls
            .connect(name, tcp)
            .await
            .map_err(|e| exchange(format!("TLS handshake failed: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| exchange(e.to_string()))?;
        let driver = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "ACME connection ended");
            }
        });

        let (mut parts, body) = request.into_parts();
        parts.uri = target.parse().map_err(|_| ClientError::Url(url.clone()))?;
        if let Ok(value) = HeaderValue::from_str(&authority) {
            parts.headers.insert(HOST, value);
        }
        let response = sender
            .send_request(Request::from_parts(parts, body))
            .await
            .map_err(|e| exchange(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| exchange(e.to_string()))?
            .to_bytes();
        driver.abort();
        Ok(Response::from_parts(parts, Full::new(body)))
    }
}

impl HttpClient for Client {
    fn request(
        &self,
        request: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let tls = self.tls.clone();
        Box::pin(async move {
            let url = request.uri().to_string();
            match tokio::time::timeout(REQUEST_TIMEOUT, Self::send(tls, request)).await {
                Ok(Ok(response)) => Ok(BytesResponse::from(response)),
                Ok(Err(error)) => Err(instant_acme::Error::Other(Box::new(error))),
                Err(_) => Err(instant_acme::Error::Other(Box::new(
                    ClientError::Exchange {
                        url,
                        message: "no answer in time".into(),
                    },
                ))),
            }
        })
    }
}
