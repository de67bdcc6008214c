//! Server hints: `Retry-After` (RFC 9110 §10.2.3: delay-seconds or an
//! HTTP-date), the IETF httpapi `RateLimit` fields and the older quota
//! headers, and a rate named outright (Spring Cloud Gateway's bucket).
//! The quota headers are read in `quota_headers.rs` and public here.

use std::time::{Duration, SystemTime};

use http::header::{HeaderMap, RETRY_AFTER};
use http::StatusCode;

use super::precise_wait::precise_wait;
pub(crate) use super::quota_headers::Announced;
pub use super::quota_headers::{quota, rate_limit, replenish_rate, Quota, QuotaWindow};

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
/// An exact wait wins when the answer names one: `retry-after-ms`
/// (OpenAI's and Azure OpenAI's) or `x-ms-retry-after-ms` (Azure's), a
/// number of milliseconds, or `x-retry-in` (Traefik's), a Go duration
/// such as `12.5ms`. They say what `Retry-After` rounds to whole seconds:
/// `Retry-After: 1` beside `retry-after-ms: 150` asks for 150 ms. A
/// malformed or zero one leaves `Retry-After` to answer, and so does one
/// more than a second shorter than it: that is no rounding but a
/// disagreement, and the longer wait is the polite one.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::HeaderMap;
/// use tower_snapshotter::retry_after::retry_after;
///
/// let mut h = HeaderMap::new();
/// h.insert("retry-after", "3".parse().unwrap());
/// assert_eq!(retry_after(&h, SystemTime::now()), Some(Duration::from_secs(3)));
/// h.insert("retry-after", "1".parse().unwrap());
/// h.insert("retry-after-ms", "150".parse().unwrap());
/// assert_eq!(retry_after(&h, SystemTime::now()), Some(Duration::from_millis(150)));
/// // Not the same wait: the longer.
/// h.insert("retry-after", "3".parse().unwrap());
/// assert_eq!(retry_after(&h, SystemTime::now()), Some(Duration::from_secs(3)));
///
/// let mut traefik = HeaderMap::new();
/// traefik.insert("retry-after", "1".parse().unwrap());
/// traefik.insert("x-retry-in", "12.5ms".parse().unwrap());
/// assert_eq!(retry_after(&traefik, SystemTime::now()), Some(Duration::from_micros(12_500)));
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let whole = whole_seconds(headers, now);
    match (precise_wait(headers), whole) {
        // Not the same wait rounded: the two disagree, and the longer is
        // kept (`Retry-After: 60` beside `x-retry-in: 5ms` waits 60 s).
        (Some(exact), Some(whole)) if exact + Duration::from_secs(1) < whole => Some(whole),
        (Some(exact), _) => Some(exact),
        (None, whole) => whole,
    }
}

/// The wait of the `Retry-After` fields alone (see [`retry_after`]).
fn whole_seconds(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let mut values = headers.get_all(RETRY_AFTER).iter();
    let first = values.next()?;
    if values.any(|v| v != first) {
        return None;
    }
    parse_retry_after(first.as_bytes(), now)
}

/// Whether an answer refuses a request for its rate: `429 Too Many
/// Requests`, `503 Service Unavailable`, and a `403 Forbidden` that says so
/// with a `Retry-After` or a spent quota (GitHub answers its secondary
/// limits and, often, a spent primary quota with 403 rather than 429).
/// Any other 403 is a refusal of the request itself, not of its rate.
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use tower_snapshotter::retry_after::is_throttled;
///
/// let mut spent = HeaderMap::new();
/// spent.insert("x-ratelimit-remaining", "0".parse().unwrap());
/// spent.insert("x-ratelimit-reset", "1700000060".parse().unwrap());
/// assert!(is_throttled(StatusCode::FORBIDDEN, &spent));
/// assert!(!is_throttled(StatusCode::FORBIDDEN, &HeaderMap::new()));
/// assert!(is_throttled(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new()));
/// ```
pub fn is_throttled(status: StatusCode, headers: &HeaderMap) -> bool {
    match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => true,
        StatusCode::FORBIDDEN => {
            headers.contains_key(RETRY_AFTER)
                || quota(headers, SystemTime::now()).is_some_and(|q| q.remaining == 0)
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "retry_after_tests.rs"]
mod tests;
