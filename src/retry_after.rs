//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, RETRY_AFTER};

/// How long a `Retry-After` value asks the client to wait, measured from
/// `now`.
///
/// Accepts both forms: a non-negative whole number of seconds (`"120"`) and
/// an HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, and the two obsolete
/// date forms). Zero, a date in the past and anything unparsable give
/// `None`: no wait. Surrounding whitespace is allowed; signs, fractions and
/// other junk are not. Absurdly large values saturate instead of
/// overflowing; cap the result with your own maximum.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_snapshotter::retry_after::parse_retry_after;
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);
/// assert_eq!(parse_retry_after(b"120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after(b"Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::from_secs(10)));
/// assert_eq!(parse_retry_after(b"0", now), None);
/// assert_eq!(parse_retry_after(b"-5", now), None);
/// assert_eq!(parse_retry_after(b"soon", now), None);
/// ```
pub fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value)
        .ok()?
        .trim_matches(|c| c == ' ' || c == '\t');
    if text.is_empty() {
        return None;
    }
    let wait = if text.bytes().all(|b| b.is_ascii_digit()) {
        // Leading zeros and any length: parse saturating, never overflow.
        let secs = text
            .bytes()
            .try_fold(0u64, |acc, b| {
                acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
            })
            .unwrap_or(u64::MAX);
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(text).ok()?;
        at.duration_since(now).ok()?
    };
    (!wait.is_zero()).then_some(wait)
}

/// The wait asked by the `Retry-After` header of `headers`, if exactly one
/// valid value is present. Several `Retry-After` fields that disagree are
/// ambiguous and ignored, as a malformed field must be.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tower_snapshotter::retry_after::retry_after;
///
/// let mut h = HeaderMap::new();
/// h.insert("retry-after", "3".parse().unwrap());
/// assert_eq!(retry_after(&h, SystemTime::now()), Some(Duration::from_secs(3)));
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let mut values = headers.get_all(RETRY_AFTER).iter();
    let first = values.next()?;
    if values.any(|v| v != first) {
        return None;
    }
    parse_retry_after(first.as_bytes(), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480) // Wed, 21 Oct 2015 07:28:00 GMT
    }

    #[test]
    fn seconds_form() {
        assert_eq!(parse_retry_after(b"1", at()), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(b" 007 ", at()), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(b"99999999999", at()),
            Some(Duration::from_secs(99_999_999_999))
        );
        assert_eq!(
            parse_retry_after(b"999999999999999999999999999", at()),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn no_wait_forms() {
        for v in [
            &b"0"[..],
            b"000",
            b"",
            b"  ",
            b"-1",
            b"+1",
            b"1.5",
            b"1e3",
            b"0x10",
            b"soon",
            b"\xff\xfe",
            b"1 2",
        ] {
            assert_eq!(
                parse_retry_after(v, at()),
                None,
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn date_forms() {
        let now = at();
        assert_eq!(
            parse_retry_after(b"Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // RFC 850 and asctime forms.
        assert_eq!(
            parse_retry_after(b"Wednesday, 21-Oct-15 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after(b"Wed Oct 21 07:28:02 2015", now),
            Some(Duration::from_secs(2))
        );
        // Past and present: no wait.
        assert_eq!(parse_retry_after(b"Wed, 21 Oct 2015 07:28:00 GMT", now), None);
        assert_eq!(parse_retry_after(b"Thu, 01 Jan 1970 00:00:00 GMT", now), None);
        // Far future is a long wait, not an error; the caller caps it.
        assert!(parse_retry_after(b"Fri, 31 Dec 9999 23:59:59 GMT", now).is_some());
        // Garbled dates.
        assert_eq!(parse_retry_after(b"Wed, 32 Oct 2015 07:28:00 GMT", now), None);
    }

    #[test]
    fn several_headers() {
        let mut h = HeaderMap::new();
        h.append(RETRY_AFTER, "5".parse().unwrap());
        assert_eq!(retry_after(&h, at()), Some(Duration::from_secs(5)));
        h.append(RETRY_AFTER, "5".parse().unwrap());
        assert_eq!(
            retry_after(&h, at()),
            Some(Duration::from_secs(5)),
            "duplicates agree"
        );
        h.append(RETRY_AFTER, "9".parse().unwrap());
        assert_eq!(retry_after(&h, at()), None, "disagreeing values are ambiguous");
        assert_eq!(retry_after(&HeaderMap::new(), at()), None);
    }
}
