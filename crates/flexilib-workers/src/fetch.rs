//! Outbound `fetch()`: a hyper client on the instance's tokio runtime.
//! Redirects are followed here; the response body comes back through a
//! small bounded channel that JavaScript pulls from, so a slow reader
//! slows the download instead of buffering it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The HTTP(S) client shared by a route's JS threads.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Chunks of a response body as they arrive; `Err` if the body broke off.
pub type BodyRx = tokio::sync::mpsc::Receiver<Result<Bytes, String>>;

/// A new client (pooled, keep-alive; https verified against the system's
/// certificate store, which honours `SSL_CERT_FILE`/`SSL_CERT_DIR`, or the
/// Mozilla roots built in when the system has none).
pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let builder = HttpsConnectorBuilder::new();
    let tls = match builder.with_native_roots() {
        Ok(native) => native,
        Err(_) => HttpsConnectorBuilder::new().with_webpki_roots(),
    };
    let https = tls.https_or_http().enable_http1().wrap_connector(connector);
    Client::builder(TokioExecutor::new()).build(https)
}

/// A response head, and its body if it has one.
pub struct FetchHead {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub status_text: String,
    /// name, value, name, value, …
    pub headers: Vec<String>,
    /// The body, pulled chunk by chunk.
    pub body: Option<BodyRx>,
    /// The URL answered (after redirects).
    pub url: String,
    /// Whether a redirect was followed.
    pub redirected: bool,
}

/// Why a fetch failed. A request that cannot be made rejects with a
/// `TypeError`; a network failure with an `Error` whose message is
/// workerd's ([`FetchError::workerd_message`]), the details going to the log.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request cannot be made.
    #[error("{0}")]
    Invalid(String),
    /// The network failed (the whole chain of causes).
    #[error("Network connection lost: {0}")]
    Network(String),
}

impl FetchError {
    /// The class and message of the JavaScript error, as workerd rejects:
    /// `Error: Network connection failed: <lookup error>` when the name
    /// does not resolve, `Error: Network connection lost.` for any other
    /// network failure (checked against workerd 2026-11).
    pub fn workerd_error(&self) -> (&'static str, String) {
        match self {
            Self::Invalid(message) => ("TypeError", message.clone()),
            Self::Network(chain) => {
                let lookup = chain
                    .find("dns error: ")
                    .map(|at| &chain[at + "dns error: ".len()..]);
                match lookup {
                    Some(reason) => ("Error", format!("Network connection failed: {reason}")),
                    None => ("Error", "Network connection lost.".into()),
                }
            }
        }
    }
}

/// What to do with a redirect (`Request.redirect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirect {
    /// Follow up to 20.
    Follow,
    /// Hand the 3xx to the script.
    Manual,
    /// Fail.
    Error,
}

/// Headers the client sets itself.
fn skipped(name: &str) -> bool {
    matches!(
        name,
        "host" | "content-length" | "connection" | "transfer-encoding" | "keep-alive" | "upgrade"
    )
}

/// Performs a request, following redirects as asked.
pub async fn fetch(
    client: HttpClient,
    mut method: String,
    mut url: url::Url,
    headers: Vec<String>,
    mut body: Option<Vec<u8>>,
    redirect: Redirect,
) -> Result<FetchHead, FetchError> {
    let mut redirected = false;
    for _ in 0..=20 {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Invalid(format!("Fetch API cannot load: {url}")));
        }
        let mut request = hyper::Request::builder()
            .method(method.as_str())
            .uri(url.as_str());
        for pair in headers.chunks_exact(2) {
            if skipped(&pair[0]) {
                continue;
            }
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(pair[0].as_bytes()),
                HeaderValue::from_str(&pair[1]),
            ) else {
                return Err(FetchError::Invalid(format!("Invalid header {}", pair[0])));
            };
            request = request.header(name, value);
        }
        let payload = Full::new(Bytes::from(body.clone().unwrap_or_default()));
        let request = request
            .body(payload)
            .map_err(|e| FetchError::Invalid(e.to_string()))?;
        let response = client
            .request(request)
            .await
            .map_err(|e| FetchError::Network(error_chain(&e)))?;
        let status = response.status();
        if status.is_redirection() && status.as_u16() != 304 {
            if let Some(location) = response.headers().get(hyper::header::LOCATION) {
                match redirect {
                    Redirect::Manual => {}
                    Redirect::Error => {
                        return Err(FetchError::Invalid(
                            "Redirect encountered and the redirect mode is \"error\"".into(),
                        ))
                    }
                    Redirect::Follow => {
                        let next = location
                            .to_str()
                            .ok()
                            .and_then(|l| url.join(l).ok())
                            .ok_or_else(|| {
                                FetchError::Invalid("Invalid redirect location".into())
                            })?;
                        let code = status.as_u16();
                        if code == 303 || ((code == 301 || code == 302) && method == "POST") {
                            if method != "HEAD" {
                                method = "GET".into();
                            }
                            body = None;
                        }
                        url = next;
                        redirected = true;
                        continue;
                    }
                }
            }
        }
        let mut flat = Vec::with_capacity(response.headers().len() * 2);
        for (name, value) in response.headers() {
            flat.push(name.as_str().to_string());
            flat.push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        let no_body = method == "HEAD" || matches!(status.as_u16(), 101 | 204 | 205 | 304);
        let body = if no_body {
            None
        } else {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let mut incoming = response.into_body();
            tokio::spawn(async move {
                loop {
                    match incoming.frame().await {
                        None => break,
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data() {
                                if !data.is_empty() && tx.send(Ok(data)).await.is_err() {
                                    break; // the script cancelled the body
                                }
                            }
                        }
                        Some(Err(e)) => {
                            let _ = tx.send(Err(format!("Network connection lost: {e}"))).await;
                            break;
                        }
                    }
                }
            });
            Some(rx)
        };
        return Ok(FetchHead {
            status: status.as_u16(),
            status_text: status.canonical_reason().unwrap_or("").to_string(),
            headers: flat,
            body,
            url: url.to_string(),
            redirected,
        });
    }
    Err(FetchError::Invalid("Too many redirects".into()))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
