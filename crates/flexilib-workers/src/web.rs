//! Web API work done in Rust by well-kept crates: URL parsing (`url`),
//! form encoding, base64, digests and HMAC (RustCrypto), randomness
//! (`getrandom`), multipart bodies (`multer`), the WHATWG encodings
//! other than UTF-8 (`encoding_rs`). Plain functions of bytes and
//! strings; `natives.rs` binds them to JavaScript.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Digest as _;
use url::Url;

/// The components of a URL in the order the JS `URL` class reads them:
/// href, origin, protocol, username, password, host, hostname, port,
/// pathname, search, hash.
/// The WHATWG name of the encoding labelled `label` (`latin1` →
/// `windows-1252`), as `TextDecoder.encoding` gives it; `None` for an
/// unknown label and for `replacement`, which `TextDecoder` refuses.
pub fn encoding_name(label: &str) -> Option<String> {
    let encoding = encoding_rs::Encoding::for_label(label.trim().as_bytes())?;
    (encoding != encoding_rs::REPLACEMENT).then(|| encoding.name().to_ascii_lowercase())
}

/// Decodes `bytes` in the encoding named `name` (from [`encoding_name`]):
/// the text and how many bytes it used. With `stream`, a character cut
/// at the end (at most 3 bytes) is left unused, for the next call; with
/// `fatal`, malformed input is `None`. `strip_bom`: a leading byte order
/// mark is dropped.
pub fn decode_legacy(
    name: &str,
    bytes: &[u8],
    fatal: bool,
    stream: bool,
    strip_bom: bool,
) -> Option<(String, usize)> {
    let encoding = encoding_rs::Encoding::for_label(name.as_bytes())?;
    let clean = |input: &[u8]| {
        let mut decoder = encoding.new_decoder_without_bom_handling();
        let mut out = String::with_capacity(input.len() * 3 + 16);
        let (result, _) = decoder.decode_to_string_without_replacement(input, &mut out, true);
        result == encoding_rs::DecoderResult::InputEmpty
    };
    // The longest prefix that ends on a character boundary.
    let used = if stream {
        (bytes.len().saturating_sub(3)..=bytes.len())
            .rev()
            .find(|&end| clean(&bytes[..end]))
            .unwrap_or(bytes.len())
    } else {
        bytes.len()
    };
    let input = &bytes[..used];
    let mut decoder = if strip_bom {
        encoding.new_decoder_with_bom_removal()
    } else {
        encoding.new_decoder_without_bom_handling()
    };
    let capacity = decoder
        .max_utf8_buffer_length(input.len())
        .unwrap_or(input.len() * 3 + 16);
    let mut text = String::with_capacity(capacity);
    if fatal {
        let (result, _) = decoder.decode_to_string_without_replacement(input, &mut text, true);
        if result != encoding_rs::DecoderResult::InputEmpty {
            return None;
        }
    } else {
        let _ = decoder.decode_to_string(input, &mut text, true);
    }
    Some((text, used))
}

pub fn url_parts(url: &Url) -> Vec<String> {
    use url::quirks;
    vec![
        quirks::href(url).to_string(),
        quirks::origin(url),
        quirks::protocol(url).to_string(),
        quirks::username(url).to_string(),
        quirks::password(url).to_string(),
        quirks::host(url).to_string(),
        quirks::hostname(url).to_string(),
        quirks::port(url).to_string(),
        quirks::pathname(url).to_string(),
        quirks::search(url).to_string(),
        quirks::hash(url).to_string(),
    ]
}

/// WHATWG URL parsing of `input` against an optional `base`.
pub fn url_parse(input: &str, base: Option<&str>) -> Option<Url> {
    match base {
        Some(base) => Url::parse(base).ok()?.join(input).ok(),
        None => Url::parse(input).ok(),
    }
}

/// Sets one component of `href` as the URL setters do (invalid values are
/// ignored, as the standard says).
pub fn url_set(href: &str, field: &str, value: &str) -> Option<Url> {
    use url::quirks;
    let mut url = Url::parse(href).ok()?;
    let _ = match field {
        "href" => quirks::set_href(&mut url, value).map_err(|_| ()),
        "protocol" => quirks::set_protocol(&mut url, value),
        "username" => quirks::set_username(&mut url, value),
        "password" => quirks::set_password(&mut url, value),
        "host" => quirks::set_host(&mut url, value),
        "hostname" => quirks::set_hostname(&mut url, value),
        "port" => quirks::set_port(&mut url, value),
        "pathname" => {
            quirks::set_pathname(&mut url, value);
            Ok(())
        }
        "search" => {
            quirks::set_search(&mut url, value);
            Ok(())
        }
        "hash" => {
            quirks::set_hash(&mut url, value);
            Ok(())
        }
        _ => Err(()),
    };
    Some(url)
}

/// `application/x-www-form-urlencoded` parsing into name, value, name, …
pub fn form_decode(text: &str) -> Vec<String> {
    url::form_urlencoded::parse(text.as_bytes())
        .flat_map(|(k, v)| [k.into_owned(), v.into_owned()])
        .collect()
}

/// `application/x-www-form-urlencoded` serializing of name, value, name, …
pub fn form_encode(flat: &[String]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for pair in flat.chunks_exact(2) {
        out.append_pair(&pair[0], &pair[1]);
    }
    out.finish()
}

/// `btoa`: `None` when a character is outside Latin-1.
pub fn btoa(text: &str) -> Option<String> {
    let bytes = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(STANDARD.encode(bytes))
}

/// `atob` (forgiving base64): a Latin-1 string, `None` when not base64.
pub fn atob(text: &str) -> Option<String> {
    let mut data: String = text
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' '))
        .collect();
    if data.len().is_multiple_of(4) {
        for _ in 0..2 {
            if data.ends_with('=') {
                data.pop();
            }
        }
    }
    if data.len() % 4 == 1 || data.contains('=') {
        return None;
    }
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let bytes = engine.decode(data).ok()?;
    Some(bytes.into_iter().map(char::from).collect())
}

/// base64url without padding (JWK `k`).
pub fn base64url_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url, padded or not.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine.decode(text).ok()
}

/// Why a digest or HMAC cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Not SHA-1/256/384/512 (or MD5 for digests).
    #[error("unrecognized hash algorithm: {0}")]
    Algorithm(String),
}

/// `crypto.subtle.digest`.
pub fn digest(algorithm: &str, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Ok(match algorithm {
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        "MD5" => md5::Md5::digest(data).to_vec(),
        other => return Err(CryptoError::Algorithm(other.to_string())),
    })
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC of `data` with `key`.
pub fn hmac(algorithm: &str, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    Ok(match algorithm {
        "SHA-1" => mac::<Hmac<sha1::Sha1>>(key, data),
        "SHA-256" => mac::<Hmac<sha2::Sha256>>(key, data),
        "SHA-384" => mac::<Hmac<sha2::Sha384>>(key, data),
        "SHA-512" => mac::<Hmac<sha2::Sha512>>(key, data),
        other => return Err(CryptoError::Algorithm(other.to_string())),
    })
}

/// Compares without an early exit.
pub fn timing_safe_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `n` random bytes from the operating system.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS generator does not fail on Linux once booted; never hand
        // out predictable bytes silently.
        panic!("the operating system's random generator failed");
    }
    bytes
}

/// A version-4 UUID.
pub fn uuid_v4() -> String {
    let mut b = random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    /// The field name.
    pub name: String,
    /// The file name, for a file.
    pub filename: Option<String>,
    /// The part's content type.
    pub content_type: Option<String>,
    /// The content.
    pub data: Vec<u8>,
}

/// Parses a whole `multipart/form-data` body.
pub fn multipart(body: Vec<u8>, boundary: &str) -> Result<Vec<Part>, String> {
    let stream = futures_util::stream::once(async move {
        Ok::<bytes::Bytes, std::convert::Infallible>(bytes::Bytes::from(body))
    });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    futures_executor::block_on(async {
        while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
            let name = field.name().unwrap_or("").to_string();
            let filename = field.file_name().map(str::to_string);
            let content_type = field.content_type().map(ToString::to_string);
            let data = field.bytes().await.map_err(|e| e.to_string())?.to_vec();
            parts.push(Part {
                name,
                filename,
                content_type,
                data,
            });
        }
        Ok::<(), String>(())
    })?;
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_forgiving() {
        assert_eq!(btoa("hello").as_deref(), Some("aGVsbG8="));
        assert_eq!(btoa("\u{100}"), None);
        assert_eq!(atob("aGVsbG8=").as_deref(), Some("hello"));
        assert_eq!(atob(" aGVs bG8 ").as_deref(), Some("hello"));
        assert_eq!(atob("aGVsbG8").as_deref(), Some("hello"));
        assert_eq!(atob("a"), None);
        assert_eq!(atob("a=b="), None);
        assert_eq!(atob("/w==").as_deref(), Some("\u{ff}"));
    }

    #[test]
    fn known_vectors() {
        let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(digest("SHA-256", b"abc").expect("sha-256")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(digest("SHA-1", b"abc").expect("sha-1")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex(hmac("SHA-256", b"Jefe", b"what do ya want for nothing?").expect("hmac")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(digest("SHA-3", b"").is_err());
    }

    #[test]
    fn multipart_fields_and_files() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\none\r\n--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--XX--\r\n";
        let parts = multipart(body.to_vec(), "XX").expect("parses");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "a");
        assert_eq!(parts[0].data, b"one");
        assert_eq!(parts[1].filename.as_deref(), Some("x.bin"));
        assert_eq!(parts[1].data, b"\x00\x01");
        assert!(multipart(b"garbage".to_vec(), "XX").is_err());
    }

    #[test]
    fn urls() {
        let url = url_parse("/a?b=1#c", Some("http://example.com:8080/x")).expect("parses");
        let parts = url_parts(&url);
        assert_eq!(parts[0], "http://example.com:8080/a?b=1#c");
        assert_eq!(parts[1], "http://example.com:8080");
        assert_eq!(parts[7], "8080");
        assert_eq!(parts[9], "?b=1");
        assert!(url_parse("/relative", None).is_none());
        let set = url_set("http://h/p", "pathname", "/q r").expect("valid");
        assert_eq!(set.as_str(), "http://h/q%20r");
        assert_eq!(form_decode("a=1&b=x+y%21"), ["a", "1", "b", "x y!"]);
        assert_eq!(form_encode(&["a b".into(), "&".into()]), "a+b=%26");
        let uuid = uuid_v4();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }
}
