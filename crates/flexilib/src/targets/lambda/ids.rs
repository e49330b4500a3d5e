//! Request ids, trace ids and the date formats Lambda uses.

use std::io::Read as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fresh random-looking 128-bit value (unique in the process: a counter
/// mixed with a per-process seed from the kernel).
fn random128() -> u128 {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let mut bytes = [0u8; 8];
        let from_kernel = std::fs::File::open("/dev/urandom")
            .and_then(|mut file| file.read_exact(&mut bytes))
            .is_ok();
        if from_kernel {
            u64::from_ne_bytes(bytes)
        } else {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            (now.as_nanos() as u64) ^ u64::from(std::process::id()).rotate_left(32)
        }
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let high = splitmix(seed ^ n.wrapping_mul(2));
    let low = splitmix(seed.rotate_left(17) ^ n.wrapping_mul(2).wrapping_add(1));
    (u128::from(high) << 64) | u128::from(low)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the low `digits` (at most 32) hex digits of `value`.
fn push_hex(out: &mut String, value: u128, digits: usize) {
    let mut digits_buf = [0u8; 32];
    let digits = digits.min(32);
    for (i, digit) in digits_buf[..digits].iter_mut().enumerate() {
        let shift = (digits - 1 - i) * 4;
        *digit = HEX[((value >> shift) & 0xf) as usize];
    }
    // Hex digits are ASCII.
    out.push_str(std::str::from_utf8(&digits_buf[..digits]).unwrap_or_default());
}

/// A request id shaped like AWS's: a version-4 UUID.
pub fn request_id() -> String {
    let value = (random128() & !(0xF000u128 << 64) & !(0xC000u128 << 48))
        | (0x4000u128 << 64)
        | (0x8000u128 << 48);
    let mut id = String::with_capacity(36);
    push_hex(&mut id, value >> 96, 8);
    id.push('-');
    push_hex(&mut id, value >> 80, 4);
    id.push('-');
    push_hex(&mut id, value >> 64, 4);
    id.push('-');
    push_hex(&mut id, value >> 48, 4);
    id.push('-');
    push_hex(&mut id, value, 12);
    id
}

/// An X-Ray trace header: `Root=1-{epoch hex}-{24 hex};Parent={16 hex};Sampled=0`.
pub fn trace_id(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let random = random128();
    let mut id = String::with_capacity(64);
    id.push_str("Root=1-");
    push_hex(&mut id, u128::from(secs), 8);
    id.push('-');
    push_hex(&mut id, random >> 32, 24);
    id.push_str(";Parent=");
    push_hex(&mut id, random, 16);
    id.push_str(";Sampled=0");
    id
}

/// Milliseconds since the epoch.
pub fn epoch_millis(time: SystemTime) -> u64 {
    u64::try_from(
        time.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// Civil date and time (UTC) of `time`.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    millis: u32,
}

fn civil(time: SystemTime) -> Civil {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    // Days to civil date (proleptic Gregorian), after Howard Hinnant.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: rest / 3600,
        minute: rest % 3600 / 60,
        second: rest % 60,
        millis: since.subsec_millis(),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `21/Apr/2020:15:08:21 +0000` (an HTTP API event's `requestContext.time`).
pub fn request_time(time: SystemTime) -> String {
    let c = civil(time);
    let month = MONTHS[(c.month as usize).saturating_sub(1).min(11)];
    let mut text = String::with_capacity(26);
    push_two(&mut text, u64::from(c.day));
    text.push('/');
    text.push_str(month);
    text.push('/');
    text.push_str(itoa::Buffer::new().format(c.year));
    text.push(':');
    push_two(&mut text, c.hour);
    text.push(':');
    push_two(&mut text, c.minute);
    text.push(':');
    push_two(&mut text, c.second);
    text.push_str(" +0000");
    text
}

/// Two decimal digits (`value` below 100).
fn push_two(out: &mut String, value: u64) {
    out.push(char::from(b'0' + (value / 10 % 10) as u8));
    out.push(char::from(b'0' + (value % 10) as u8));
}

/// `2020-04-21T15:08:21.123Z`.
pub fn iso_time(time: SystemTime) -> String {
    let c = civil(time);
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

/// `2020/04/21` (the date part of a log stream name).
pub fn log_stream_date(time: SystemTime) -> String {
    let c = civil(time);
    format!("{}/{:02}/{:02}", c.year, c.month, c.day)
}

/// 32 hex digits (a log stream's instance part).
pub fn hex_id() -> String {
    format!("{:032x}", random128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let time = UNIX_EPOCH + Duration::from_millis(1_587_481_701_123);
        assert_eq!(request_time(time), "21/Apr/2020:15:08:21 +0000");
        assert_eq!(iso_time(time), "2020-04-21T15:08:21.123Z");
        assert_eq!(log_stream_date(time), "2020/04/21");
        assert_eq!(epoch_millis(time), 1_587_481_701_123);
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(log_stream_date(leap), "2000/02/29");
    }

    #[test]
    fn ids_are_uuid_v4_and_distinct() {
        let a = request_id();
        let b = request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{a}");
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        let trace = trace_id(UNIX_EPOCH + Duration::from_secs(0x5e9f_0a25));
        assert!(trace.starts_with("Root=1-5e9f0a25-"), "{trace}");
        assert!(trace.ends_with(";Sampled=0"));
        assert_eq!(
            trace.len(),
            "Root=1-".len() + 8 + 1 + 24 + ";Parent=".len() + 16 + ";Sampled=0".len()
        );
    }
}
