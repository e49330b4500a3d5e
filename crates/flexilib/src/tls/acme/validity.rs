//! When a certificate starts and stops being valid: its `notBefore` and
//! `notAfter` (RFC 5280, section 4.1.2.5), read from the DER, to know when
//! to renew it.

/// A certificate's validity period, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// `notBefore`.
    pub not_before: i64,
    /// `notAfter`.
    pub not_after: i64,
}

/// Why the validity could not be read.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("certificate: {0}")]
pub struct ValidityError(&'static str);

impl Validity {
    /// Reads the validity of the DER certificate `der`.
    pub fn of(der: &[u8]) -> Result<Self, ValidityError> {
        // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
        // OPTIONAL, serialNumber, signature, issuer, validity, ... } ... }
        let (certificate, _) = element(der, SEQUENCE)?;
        let (mut tbs, _) = element(certificate, SEQUENCE)?;
        if tbs.first() == Some(&0xa0) {
            tbs = skip(tbs)?;
        }
        for _ in 0..3 {
            tbs = skip(tbs)?;
        }
        let (validity, _) = element(tbs, SEQUENCE)?;
        let (not_before, rest) = time(validity)?;
        let (not_after, _) = time(rest)?;
        Ok(Self {
            not_before,
            not_after,
        })
    }

    /// When to renew: once two thirds of the period have passed (30 days
    /// before the end of a 90-day certificate).
    pub fn renew_at(&self) -> i64 {
        let lifetime = (self.not_after - self.not_before).max(0);
        self.not_after - lifetime / 3
    }
}

const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The contents of the element of tag `tag` at the start of `input`, and
/// what follows it.
fn element(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), ValidityError> {
    let (found, contents, rest) = any(input)?;
    if found != tag {
        return Err(ValidityError("unexpected DER element"));
    }
    Ok((contents, rest))
}

/// What follows the element at the start of `input`.
fn skip(input: &[u8]) -> Result<&[u8], ValidityError> {
    any(input).map(|(_, _, rest)| rest)
}

/// The tag, contents and rest of the element at the start of `input`.
fn any(input: &[u8]) -> Result<(u8, &[u8], &[u8]), ValidityError> {
    let truncated = ValidityError("truncated DER");
    let (&tag, rest) = input.split_first().ok_or(truncated.clone())?;
    let (&first, mut rest) = rest.split_first().ok_or(truncated.clone())?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(ValidityError("bad DER length"));
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte))
    };
    if rest.len() < length {
        return Err(truncated);
    }
    let (contents, rest) = rest.split_at(length);
    Ok((tag, contents, rest))
}

/// A `Time` (UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`) in seconds since the epoch, and what follows it.
fn time(input: &[u8]) -> Result<(i64, &[u8]), ValidityError> {
    let (tag, contents, rest) = any(input)?;
    let bad = ValidityError("bad time in validity");
    let text = std::str::from_utf8(contents).map_err(|_| bad.clone())?;
    let digits = text.strip_suffix('Z').ok_or(bad.clone())?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, ValidityError> {
        digits
            .get(range)
            .and_then(|text| text.parse().ok())
            .ok_or(ValidityError("bad time in validity"))
    };
    let (year, at) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let year = number(0..2)?;
            (if year >= 50 { 1900 + year } else { 2000 + year }, 2)
        }
        (GENERALIZED_TIME, 14) => (number(0..4)?, 4),
        _ => return Err(ValidityError("bad time in validity")),
    };
    let month = number(at..at + 2)?;
    let day = number(at + 2..at + 4)?;
    let hour = number(at + 4..at + 6)?;
    let minute = number(at + 6..at + 8)?;
    let second = number(at + 8..at + 10)?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(ValidityError("bad time in validity"));
    }
    let days = days_from_civil(year, month, day);
    Ok((days * 86_400 + hour * 3_600 + minute * 60 + second, rest))
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar
/// (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2049, 12, 31), 29_219);
    }

    #[test]
    fn validity_of_a_generated_certificate() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["example.test".into()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        // After 2049: a GeneralizedTime.
        params.not_after = rcgen::date_time_ymd(2051, 6, 30);
        let cert = params.self_signed(&key).expect("certificate");
        let validity = Validity::of(cert.der()).expect("validity");
        assert_eq!(validity.not_before, 1_704_067_200);
        assert_eq!(validity.not_after, days_from_civil(2051, 6, 30) * 86_400);
        let lifetime = validity.not_after - validity.not_before;
        assert_eq!(validity.renew_at(), validity.not_after - lifetime / 3);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Validity::of(b"").is_err());
        assert!(Validity::of(&[0x30, 0x82, 0xff]).is_err());
        assert!(Validity::of(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
    }
}
