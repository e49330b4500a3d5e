//! Which coding a response gets: the client's `Accept-Encoding` (with its
//! qualities) and what compresses well (the content type, the size).

/// A coding the server compresses with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `zstd`: the fastest of the three at a ratio near brotli's.
    Zstd,
    /// `br`.
    Brotli,
    /// `gzip`: what every client takes.
    Gzip,
}

impl Coding {
    /// Its `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Brotli => "br",
            Self::Gzip => "gzip",
        }
    }
}

/// Server preference when the client likes several equally.
const PREFERENCE: [Coding; 3] = [Coding::Zstd, Coding::Brotli, Coding::Gzip];

/// Responses smaller than this are sent as they are: the coding's framing
/// would eat what it saves.
pub const MIN_BYTES: u64 = 1024;

/// The coding for a client sending `accept_encoding`: the one with the
/// highest quality above 0 (`*` stands for codings not listed), the
/// server's preference among equals; `None` for identity.
pub fn choose(accept_encoding: &str) -> Option<Coding> {
    let mut best: Option<(f32, Coding)> = None;
    for coding in PREFERENCE {
        let quality = quality(accept_encoding, coding.token());
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, coding));
        }
    }
    best.map(|(_, coding)| coding)
}

/// The quality the header gives `token` (0 when not accepted).
fn quality(header: &str, token: &str) -> f32 {
    let mut wildcard = 0.0;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(token) {
            return q;
        }
        if name == "*" {
            wildcard = q;
        }
    }
    wildcard
}

/// Text-like types worth compressing: `text/*`, JSON, JavaScript, XML,
/// SVG, and their `+json` / `+xml` kin; not images, video, archives, which
/// are compressed already.
pub fn compressible(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let starts = |prefix: &[u8]| {
        essence.len() >= prefix.len() && essence[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    let ends = |suffix: &[u8]| {
        essence.len() >= suffix.len()
            && essence[essence.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    starts(b"text/")
        || ends(b"+json")
        || ends(b"+xml")
        || [
            &b"application/json"[..],
            b"application/javascript",
            b"application/ecmascript",
            b"application/x-javascript",
            b"application/xml",
            b"application/wasm",
        ]
        .iter()
        .any(|known| essence.eq_ignore_ascii_case(known))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_picks_and_the_server_breaks_ties() {
        assert_eq!(choose("gzip, deflate, br, zstd"), Some(Coding::Zstd));
        assert_eq!(choose("gzip, deflate, br"), Some(Coding::Brotli));
        assert_eq!(choose("gzip"), Some(Coding::Gzip));
        assert_eq!(choose("gzip;q=1, br;q=0.5"), Some(Coding::Gzip));
        assert_eq!(choose("br;q=0, gzip;q=0.1"), Some(Coding::Gzip));
        assert_eq!(choose("*"), Some(Coding::Zstd));
        assert_eq!(choose("*, zstd;q=0"), Some(Coding::Brotli));
        assert_eq!(choose("identity"), None);
        assert_eq!(choose(""), None);
        assert_eq!(choose("gzip;q=0"), None);
    }

    #[test]
    fn text_compresses_images_do_not() {
        assert!(compressible(b"text/html; charset=utf-8"));
        assert!(compressible(b"Application/JSON"));
        assert!(compressible(b"application/problem+json"));
        assert!(compressible(b"image/svg+xml"));
        assert!(!compressible(b"image/png"));
        assert!(!compressible(b"application/octet-stream"));
        assert!(!compressible(b"application/zip"));
    }
}
