//! Validators and conditions of a static file: its `ETag` and
//! `Last-Modified`, `If-None-Match` / `If-Modified-Since` (304) and a single
//! `Range` (206, 416), as RFC 9110 defines them.

use std::time::{Duration, SystemTime};

/// What a file is, for its validators.
#[derive(Debug, Clone, Copy)]
pub struct FileVersion {
    /// Size in bytes.
    pub size: u64,
    /// Modification time.
    pub modified: SystemTime,
}

impl FileVersion {
    /// A strong `ETag` from size and modification time (as nginx makes
    /// them), with the coding of a precompressed variant so that each
    /// representation has its own.
    pub fn etag(&self, coding: Option<&str>) -> String {
        let nanos = self
            .modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        match coding {
            Some(coding) => format!("\"{:x}-{nanos:x}-{coding}\"", self.size),
            None => format!("\"{:x}-{nanos:x}\"", self.size),
        }
    }

    /// `Last-Modified`.
    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }
}

/// `If-None-Match` (a list of entity tags, or `*`) matches `etag`, by weak
/// comparison as RFC 9110 wants for it.
pub fn none_match_hits(header: &str, etag: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    header.trim() == "*" || header.split(',').any(|tag| bare(tag) == bare(etag))
}

/// `If-Modified-Since` is not older than the file (whole seconds: an HTTP
/// date has no finer ones). An unreadable date is ignored.
pub fn not_modified_since(header: &str, modified: SystemTime) -> bool {
    let Ok(since) = httpdate::parse_http_date(header.trim()) else {
        return false;
    };
    let seconds = |time: SystemTime| {
        time.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    seconds(modified) <= seconds(since)
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range (absent, not `bytes=`, several ranges, malformed):
    /// send the whole file, as RFC 9110 allows.
    Whole,
    /// Bytes `start..end` (end exclusive).
    Part {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// No byte of the file is in the range: 416.
    Unsatisfiable,
}

/// Parses a single `bytes=` range against a file of `size` bytes.
pub fn parse_range(header: &str, size: u64) -> RangeRequest {
    single_range(header, size).unwrap_or(RangeRequest::Whole)
}

/// `None` for anything but one well-formed `bytes=` range.
fn single_range(header: &str, size: u64) -> Option<RangeRequest> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let number = |text: &str| -> Option<u64> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    if first.is_empty() {
        // `-N`: the last N bytes.
        let suffix = number(last)?;
        if suffix == 0 || size == 0 {
            return Some(RangeRequest::Unsatisfiable);
        }
        return Some(RangeRequest::Part {
            start: size.saturating_sub(suffix),
            end: size,
        });
    }
    let start = number(first)?;
    let end = if last.is_empty() {
        size
    } else {
        let last = number(last)?;
        if last < start {
            return None;
        }
        last.saturating_add(1).min(size)
    };
    if start >= size {
        return Some(RangeRequest::Unsatisfiable);
    }
    Some(RangeRequest::Part { start, end })
}

/// `If-Range` lets the range through: it names the current `etag` (strong
/// comparison) or the exact `Last-Modified`.
pub fn if_range_holds(header: &str, etag: &str, last_modified: &str) -> bool {
    let header = header.trim();
    if header.starts_with('"') {
        header == etag
    } else {
        header == last_modified
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        use RangeRequest::*;
        let cases: &[(&str, RangeRequest)] = &[
            ("bytes=0-3", Part { start: 0, end: 4 }),
            ("bytes=5-", Part { start: 5, end: 10 }),
            ("bytes=-3", Part { start: 7, end: 10 }),
            ("bytes=-30", Part { start: 0, end: 10 }),
            ("bytes=8-100", Part { start: 8, end: 10 }),
            ("bytes=10-", Unsatisfiable),
            ("bytes=12-20", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=4-2", Whole),
            ("bytes=0-1,4-5", Whole),
            ("items=0-1", Whole),
            ("bytes=x-1", Whole),
            ("bytes=-", Whole),
            ("bytes=+1-2", Whole),
        ];
        for (header, expected) in cases {
            assert_eq!(&parse_range(header, 10), expected, "{header}");
        }
    }

    #[test]
    fn conditions() {
        let version = FileVersion {
            size: 5,
            modified: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_500),
        };
        let etag = version.etag(None);
        assert!(none_match_hits(&etag, &etag));
        assert!(none_match_hits(&format!("\"x\", W/{etag}"), &etag));
        assert!(none_match_hits("*", &etag));
        assert!(!none_match_hits("\"other\"", &etag));
        assert_ne!(version.etag(Some("br")), etag);
        let date = version.last_modified();
        assert!(
            not_modified_since(&date, version.modified),
            "sub-second part ignored"
        );
        assert!(!not_modified_since(
            "Tue, 14 Nov 2023 22:13:19 GMT",
            version.modified
        ));
        assert!(!not_modified_since("yesterday", version.modified));
        assert!(if_range_holds(&etag, &etag, &date));
        assert!(if_range_holds(&date, &etag, &date));
        assert!(!if_range_holds("\"old\"", &etag, &date));
    }
}
