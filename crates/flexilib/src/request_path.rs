//! Request paths: the checks that keep a path inside the prefix it matched,
//! and the normalised form that routes are matched against.
//!
//! A path is refused (400) when, after percent-decoding,
//!
//! * a segment is `.` or `..`, with `/`, `%2F`, `\` and `%5C` all counting
//!   as separators, and `;` ending the segment name (`..;x`), since Java
//!   servers drop such path parameters before resolving dots;
//! * it has a NUL or another control character (C0, DEL, C1);
//! * it is not UTF-8 (this includes overlong forms such as `%C0%AE`);
//! * a `%` is not followed by two hex digits.
//!
//! Otherwise its normalised form, which routes match, has every
//! percent-encoded octet decoded (`/%61dmin` is `/admin`, `/a%2Fb` is
//! `/a/b`) and runs of `/` merged (`//admin` is `/admin`), as nginx matches
//! locations. Upstreams and libraries are given the target as the client
//! sent it; [`strip_normalized_prefix`] finds where the matched prefix ends
//! in it.

use std::borrow::Cow;

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// A `.` or `..` segment, plain or encoded.
    #[error("a `.` or `..` segment")]
    DotSegment,
    /// A NUL or other control character once decoded.
    #[error("a control character")]
    ControlCharacter,
    /// Decoded bytes that are not UTF-8.
    #[error("not UTF-8 once decoded")]
    InvalidUtf8,
    /// A `%` without two hex digits after it.
    #[error("a `%` not followed by two hex digits")]
    BadPercentEncoding,
}

impl PathError {
    /// The body of the 400 response.
    pub fn response_text(self) -> &'static str {
        match self {
            PathError::DotSegment => "400 Bad Request: dot segments in the path\n",
            PathError::ControlCharacter => "400 Bad Request: control character in the path\n",
            PathError::InvalidUtf8 => "400 Bad Request: the path is not UTF-8\n",
            PathError::BadPercentEncoding => {
                "400 Bad Request: invalid percent-encoding in the path\n"
            }
        }
    }
}

/// Checks `path` (a request target's path, or a configured prefix) and
/// returns the form routes are matched against: percent-encoded octets
/// decoded, runs of `/` merged.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    // Most paths: nothing encoded, no backslash, no `//`, no control.
    let plain = !bytes
        .iter()
        .any(|&b| b == b'%' || b == b'\\' || b < 0x20 || b == 0x7f)
        && !bytes.windows(2).any(|pair| pair == b"//");
    if plain {
        // C1 controls are the only ones left, and they are not ASCII.
        if !path.is_ascii() && path.chars().any(char::is_control) {
            return Err(PathError::ControlCharacter);
        }
        if has_dot_segment(bytes) {
            return Err(PathError::DotSegment);
        }
        return Ok(Cow::Borrowed(path));
    }
    let mut normalized = Vec::with_capacity(bytes.len());
    for unit in Units::new(bytes) {
        let (byte, _) = unit?;
        if byte == b'/' && normalized.last() == Some(&b'/') {
            continue;
        }
        normalized.push(byte);
    }
    let normalized = String::from_utf8(normalized).map_err(|_| PathError::InvalidUtf8)?;
    if normalized.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    if has_dot_segment(normalized.as_bytes()) {
        return Err(PathError::DotSegment);
    }
    Ok(Cow::Owned(normalized))
}

/// The rest of `raw`, as sent, after the part whose normalised form is
/// `prefix` (a normalised prefix of `raw`'s normalised form); `None` if
/// `raw` does not start that way.
pub fn strip_normalized_prefix<'a>(raw: &'a str, prefix: &str) -> Option<&'a str> {
    let prefix = prefix.as_bytes();
    if prefix.is_empty() {
        return Some(raw);
    }
    let mut matched = 0;
    let mut last = None;
    for unit in Units::new(raw.as_bytes()) {
        let (byte, end) = unit.ok()?;
        if byte == b'/' && last == Some(b'/') {
            continue;
        }
        if prefix.get(matched) != Some(&byte) {
            return None;
        }
        matched += 1;
        last = Some(byte);
        if matched == prefix.len() {
            return raw.get(end..);
        }
    }
    None
}

/// True if `path` (decoded) has a `.` or `..` segment. `\` separates
/// segments too (Windows servers treat it as `/`), and a segment's name
/// ends at `;` (`..;x` is `..` to a Java server).
fn has_dot_segment(path: &[u8]) -> bool {
    // Most paths have no dot at all.
    if !path.contains(&b'.') {
        return false;
    }
    path.split(|&b| b == b'/' || b == b'\\').any(|segment| {
        let name = segment.split(|&b| b == b';').next().unwrap_or_default();
        name == b"." || name == b".."
    })
}

/// The decoded bytes of a path with the offset just past each in the raw
/// path: `%XX` is one byte.
struct Units<'a> {
    raw: &'a [u8],
    at: usize,
}

impl<'a> Units<'a> {
    fn new(raw: &'a [u8]) -> Self {
        Self { raw, at: 0 }
    }
}

impl Iterator for Units<'_> {
    type Item = Result<(u8, usize), PathError>;

    fn next(&mut self) -> Option<Self::Item> {
        let byte = *self.raw.get(self.at)?;
        if byte != b'%' {
            self.at += 1;
            return Some(Ok((byte, self.at)));
        }
        let decoded = self
            .raw
            .get(self.at + 1..self.at + 3)
            .and_then(|hex| Some(hex_value(hex[0])? << 4 | hex_value(hex[1])?));
        match decoded {
            Some(decoded) => {
                self.at += 3;
                Some(Ok((decoded, self.at)))
            }
            None => {
                // Stop after the error.
                self.at = self.raw.len();
                Some(Err(PathError::BadPercentEncoding))
            }
        }
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_in_any_spelling_are_refused() {
        for bad in [
            "/api/../admin",
            "/api/./x",
            "/..",
            "/.",
            "/a/%2e%2e/b",
            "/a/.%2E/b",
            "/a/%2e",
            "/pub/..%2fadmin/",
            "/pub/%2e%2e%2fadmin/",
            "/pub%2f..%2fadmin/",
            "/pub/..%5cadmin/",
            "/pub/..\\admin/",
            "/pub\\..",
            "/pub/..;/admin",
            "/pub/.;x",
            "/pub/..%3bx/",
            "//..//x",
        ] {
            assert_eq!(normalize(bad), Err(PathError::DotSegment), "{bad}");
        }
        for good in [
            "/",
            "/api/x",
            "/a/..b",
            "/a/b..",
            "/a/.hidden",
            "/a/b.c",
            "/a/%2e%2ex",
            "/a/x;..",
            "/a/;/b",
            "/a/...",
        ] {
            assert!(normalize(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn controls_bad_utf8_and_bad_escapes_are_refused() {
        for (bad, error) in [
            ("/a%00b", PathError::ControlCharacter),
            ("/a%0a", PathError::ControlCharacter),
            ("/a%7F", PathError::ControlCharacter),
            ("/a%C2%85", PathError::ControlCharacter),
            ("/a\u{85}", PathError::ControlCharacter),
            ("/a\u{1}", PathError::ControlCharacter),
            ("/%c0%ae%c0%ae/x", PathError::InvalidUtf8),
            ("/%e9", PathError::InvalidUtf8),
            ("/%ed%a0%80", PathError::InvalidUtf8),
            ("/%f4%90%80%80", PathError::InvalidUtf8),
            ("/%zz", PathError::BadPercentEncoding),
            ("/100%", PathError::BadPercentEncoding),
            ("/%4", PathError::BadPercentEncoding),
            ("/%%41", PathError::BadPercentEncoding),
        ] {
            assert_eq!(normalize(bad), Err(error), "{bad}");
        }
    }

    #[test]
    fn normalised_paths_are_decoded_with_slashes_merged() {
        for (raw, normalized) in [
            ("/", "/"),
            ("/admin/x", "/admin/x"),
            ("/%61dmin/", "/admin/"),
            ("/%61%64%6D%69%6E", "/admin"),
            ("//admin/", "/admin/"),
            ("/a///b//", "/a/b/"),
            ("/a%2fb", "/a/b"),
            ("/a/%2F/b", "/a/b"),
            ("/a%5cb", "/a\\b"),
            ("/caf%C3%A9", "/café"),
            ("/café", "/café"),
            ("/a%20b", "/a b"),
            ("/a%25b", "/a%b"),
            ("/a%252e%252e", "/a%2e%2e"),
            ("/x;y=1", "/x;y=1"),
            ("*", "*"),
            ("", ""),
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok(normalized), "{raw}");
        }
        assert!(matches!(normalize("/plain/path.txt"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn the_prefix_is_found_in_the_raw_path() {
        for (raw, prefix, rest) in [
            ("/api/users", "/api", Some("/users")),
            ("/%61pi/users", "/api", Some("/users")),
            ("//api//users", "/api", Some("//users")),
            ("//api//users", "/api/", Some("/users")),
            ("/api%2Fusers", "/api/", Some("users")),
            ("/api/a%2Fb", "/api", Some("/a%2Fb")),
            ("/api", "/api", Some("")),
            ("/apix", "/api", Some("x")),
            ("/caf%C3%A9/x", "/café", Some("/x")),
            ("/x", "", Some("/x")),
            ("/ap", "/api", None),
            ("/apx", "/api", None),
            ("/a%zz", "/api", None),
        ] {
            assert_eq!(
                strip_normalized_prefix(raw, prefix),
                rest,
                "{raw} - {prefix}"
            );
        }
    }
}
