//! TLS to https upstreams: a rustls client (the `ring` provider), trusting
//! the system's roots, the route's `ca=` file, or (with
//! `insecure_skip_verify=true`) anything.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::config::UpstreamTlsSpec;

/// Why a route's TLS client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamTlsError {
    /// rustls refused the configuration (no usable root, no protocol).
    #[error("TLS client: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The TLS clients of one route: one offering ALPN `http/1.1`, one `h2`
/// (for `h2=true`; upgrade requests still go over HTTP/1.1).
#[derive(Clone)]
pub struct UpstreamTls {
    /// ALPN `http/1.1`.
    pub http1: TlsConnector,
    /// ALPN `h2`.
    pub http2: TlsConnector,
    /// `sni=`, when given.
    pub sni: Option<ServerName<'static>>,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("sni", &self.sni)
            .finish_non_exhaustive()
    }
}

impl UpstreamTls {
    /// The clients for `spec`.
    pub fn new(spec: &UpstreamTlsSpec) -> Result<Self, UpstreamTlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let config = if spec.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
                .with_no_client_auth()
        } else {
            let roots = match &spec.ca {
                Some(ca) => {
                    let mut roots = RootCertStore::empty();
                    for certificate in &ca.certificates {
                        roots.add(CertificateDer::from(certificate.clone()))?;
                    }
                    roots
                }
                None => system_roots().clone(),
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        let with_alpn = |protocol: &[u8]| {
            let mut config = config.clone();
            config.alpn_protocols = vec![protocol.to_vec()];
            TlsConnector::from(Arc::new(config))
        };
        let sni = spec
            .sni
            .as_ref()
            .and_then(|name| ServerName::try_from(name.clone()).ok());
        Ok(Self {
            http1: with_alpn(b"http/1.1"),
            http2: with_alpn(b"h2"),
            sni,
        })
    }

    /// The name to send (SNI) and verify for a server whose URL host is
    /// `host`: `sni=` if given, else the host (an IP address is verified
    /// against the certificate's IP addresses and sends no SNI).
    pub fn server_name(&self, host: &str) -> Option<ServerName<'static>> {
        if let Some(sni) = &self.sni {
            return Some(sni.clone());
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string()).ok()
    }
}

/// The system's trusted roots, loaded once (those that fail to load are
/// logged and left out).
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "a system root certificate could not be loaded");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, ignored, "system roots loaded for https upstreams");
        roots
    })
}

/// `insecure_skip_verify=true`: any certificate is accepted (the
/// handshake's signatures are still checked, so the peer holds the key of
/// the certificate it sent).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
