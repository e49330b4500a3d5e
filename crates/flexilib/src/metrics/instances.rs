//! Instance counts for `/metrics`, read when scraped: Lambda functions'
//! instances by state (from their pools, see
//! [`crate::targets::lambda::pool::Census`]), and the gauges libraries
//! report for their route's instance through the optional
//! `flexilib_instance_gauges` export (the Workers and WebAssembly runtimes
//! do; the server knows nothing of what they mean).
//!
//! A library's gauge `NAME` is exported as `flexilib_library_NAME` with the
//! route as a label; [`library_gauges`] keeps only what can be exported
//! that way.

use crate::targets::lambda::pool::Census;

/// One Lambda function of one route, and its instances.
#[derive(Debug, Clone)]
pub struct LambdaRow {
    /// The route's key.
    pub route: String,
    /// The function's name.
    pub function: String,
    /// Its instances by state, its queue and limit.
    pub census: Census,
}

/// One gauge of a library route's instance, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryGauge {
    /// The route's key.
    pub route: String,
    /// The family, `flexilib_library_NAME`.
    pub family: String,
    /// Its help text, one line.
    pub help: String,
    /// The value.
    pub value: f64,
}

/// The prefix of the families library gauges are exported as.
pub const LIBRARY_PREFIX: &str = "flexilib_library_";

/// Longest help text kept, in bytes.
const MAX_HELP: usize = 300;

/// Suffixes a gauge's name may not end with: Prometheus and OpenMetrics
/// parsers read them as parts of counters, histograms and info metrics.
const RESERVED_SUFFIXES: [&str; 6] = ["_total", "_count", "_sum", "_bucket", "_created", "_info"];

/// True for a name a library gauge may have: ASCII `[a-z][a-z0-9_]*`, at
/// most [`flexilib_abi::GAUGE_NAME_MAX`] bytes, no reserved suffix.
pub fn valid_name(name: &[u8]) -> bool {
    let Some((first, rest)) = name.split_first() else {
        return false;
    };
    name.len() <= flexilib_abi::GAUGE_NAME_MAX
        && first.is_ascii_lowercase()
        && rest
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !RESERVED_SUFFIXES
            .iter()
            .any(|suffix| name.ends_with(suffix.as_bytes()))
}

/// A help text as the exposition writes it: UTF-8, one line (control
/// characters become spaces, `\` is escaped as the text format wants), at
/// most [`MAX_HELP`] bytes.
fn help_line(help: &[u8]) -> String {
    let text = String::from_utf8_lossy(help);
    let mut line = String::with_capacity(text.len().min(MAX_HELP));
    for c in text.chars() {
        let mut buffer = [0; 4];
        let piece: &str = match c {
            '\\' => "\\\\",
            c if c.is_control() => " ",
            c => c.encode_utf8(&mut buffer),
        };
        if line.len() + piece.len() > MAX_HELP {
            break;
        }
        line.push_str(piece);
    }
    line.trim().to_string()
}

/// The gauges `raw` (`(name, help, value)` as route `route`'s instance
/// gave them) that can be exported: names checked (see [`valid_name`]), a
/// name given twice kept once (the first).
pub fn library_gauges(route: &str, raw: Vec<(Vec<u8>, Vec<u8>, f64)>) -> Vec<LibraryGauge> {
    let mut kept: Vec<LibraryGauge> = Vec::with_capacity(raw.len());
    for (name, help, value) in raw {
        if !valid_name(&name) {
            tracing::debug!(route, name = %String::from_utf8_lossy(&name), "instance gauge skipped: not a valid name");
            continue;
        }
        // Checked above: ASCII.
        let family = format!("{LIBRARY_PREFIX}{}", String::from_utf8_lossy(&name));
        if kept.iter().any(|gauge| gauge.family == family) {
            continue;
        }
        kept.push(LibraryGauge {
            route: route.to_string(),
            family,
            help: Some(help_line(&help))
                .filter(|help| !help.is_empty())
                .unwrap_or_else(|| "Reported by the route's library instance".into()),
            value,
        });
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["wasm_instances_running", "a", "x9_", "worker_isolates"] {
            assert!(valid_name(good.as_bytes()), "{good}");
        }
        let long = "a".repeat(flexilib_abi::GAUGE_NAME_MAX + 1);
        for bad in [
            "",
            "9a",
            "_a",
            "Wasm",
            "a-b",
            "a b",
            "a:b",
            "é",
            "requests_total",
            "x_count",
            "x_bucket",
            "x_info",
            long.as_str(),
        ] {
            assert!(!valid_name(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn gauges_are_checked_deduplicated_and_help_is_one_line() {
        let raw = vec![
            (b"wasm_a".to_vec(), b"first\nline \\ two".to_vec(), 1.0),
            (b"Bad".to_vec(), b"x".to_vec(), 2.0),
            (b"wasm_a".to_vec(), b"again".to_vec(), 3.0),
            (b"wasm_b".to_vec(), vec![0xff, b'!'], 4.0),
            (b"wasm_c".to_vec(), "é".repeat(400).into_bytes(), 5.0),
        ];
        let kept = library_gauges("/w", raw);
        let names: Vec<&str> = kept.iter().map(|g| g.family.as_str()).collect();
        assert_eq!(
            names,
            [
                "flexilib_library_wasm_a",
                "flexilib_library_wasm_b",
                "flexilib_library_wasm_c"
            ]
        );
        assert_eq!(kept[0].help, "first line \\\\ two");
        assert_eq!(kept[0].value, 1.0);
        assert_eq!(kept[0].route, "/w");
        assert_eq!(kept[1].help, "\u{fffd}!");
        assert!(kept[2].help.len() <= MAX_HELP);
        assert!(kept[2].help.chars().all(|c| c == 'é'));
    }
}
