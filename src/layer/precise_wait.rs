//! Waits a refusal names finer than `Retry-After`'s whole seconds.
//!
//! `Retry-After` has no fractions, so a limiter that knows it will serve
//! again in 12 ms says `1`, and a client that obeys it idles a second per
//! refusal: a hundred requests at 100/s. Some send the exact wait beside
//! it, and that one is followed:
//! - `retry-after-ms` (OpenAI, Azure OpenAI) and `x-ms-retry-after-ms`
//!   (Azure): a number of milliseconds;
//! - `x-retry-in` (Traefik's `rateLimit` middleware, whose
//!   `Retry-After` is the wait rounded up): a Go duration as Go prints
//!   one, `12.345678ms`, `850µs`, `1.5s`, `2m3s`.

use std::time::Duration;

use http::HeaderMap;

use super::quota_headers::non_negative;

/// Waits shorter than this are exact ones: `Retry-After` names whole
/// seconds. The adaptive limiter takes such a wait as the host's next
/// send slot rather than a pause (see `Controller::on_answer`).
pub(crate) const EXACT_BELOW: Duration = Duration::from_secs(1);

/// The longest wait read here: a year (larger saturates there; the layer
/// caps it at `max_retry_after` anyway).
const MAX_WAIT_S: f64 = 365.0 * 86_400.0;

/// The exact wait an answer names beside `Retry-After`, if one header
/// holds a positive one. A malformed or zero one leaves `Retry-After` to
/// answer.
pub(crate) fn precise_wait(headers: &HeaderMap) -> Option<Duration> {
    let millis = ["retry-after-ms", "x-ms-retry-after-ms"].iter().find_map(|name| {
        let text = headers.get(*name)?.to_str().ok()?.trim();
        let ms = non_negative(text).filter(|ms| *ms > 0.0)?;
        Some(ms / 1000.0)
    });
    let secs = millis.or_else(|| headers.get("x-retry-in").and_then(|v| go_duration(v.as_bytes())))?;
    (secs > 0.0).then(|| Duration::from_secs_f64(secs.min(MAX_WAIT_S)))
}

/// The units of a Go duration, a longer name before its prefix (`ms`
/// before `m`), in seconds. Go writes micro as `µ` (U+00B5) and reads
/// `μ` (U+03BC) and `u` too.
const UNITS: [(&str, f64); 8] = [
    ("ns", 1e-9),
    ("us", 1e-6),
    ("µs", 1e-6),
    ("μs", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
];

/// Seconds in a Go duration (`time.ParseDuration`'s grammar: decimal
/// numbers each with a unit, `1h2m3.5s`, or a bare `0`); `None` for a
/// negative one and for any other text. Bytes, not `str`: `µ` is not
/// visible ASCII, which `HeaderValue::to_str` refuses.
fn go_duration(text: &[u8]) -> Option<f64> {
    let text = text.trim_ascii();
    let mut rest = text.strip_prefix(b"+").unwrap_or(text);
    if rest == b"0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut secs = 0.0;
    while !rest.is_empty() {
        let len = rest
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let number: f64 = std::str::from_utf8(&rest[..len]).ok()?.parse().ok()?;
        rest = &rest[len..];
        let (unit, scale) = UNITS.iter().find(|(u, _)| rest.starts_with(u.as_bytes()))?;
        secs += number * scale;
        rest = &rest[unit.len()..];
    }
    secs.is_finite().then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_as_go_prints_them() {
        let cases: [(&[u8], f64); 9] = [
            (b"12.345678ms", 0.012_345_678),
            ("850µs".as_bytes(), 850e-6),
            ("3μs".as_bytes(), 3e-6),
            (b"999ns", 999e-9),
            (b"1.5s", 1.5),
            (b"2m3.25s", 123.25),
            (b"1h0m0s", 3600.0),
            (b" +4s ", 4.0),
            (b"0", 0.0),
        ];
        for (text, secs) in cases {
            let read = go_duration(text).unwrap_or(f64::NAN);
            assert!(
                (read - secs).abs() < 1e-12,
                "{:?}: {read}",
                String::from_utf8_lossy(text)
            );
        }
        for junk in [
            &b""[..],
            b"-5ms",
            b"5",
            b"ms",
            b"1e3s",
            b"5 s",
            b"1.2.3s",
            b"soon",
            b"\xff",
        ] {
            assert_eq!(go_duration(junk), None, "{:?}", String::from_utf8_lossy(junk));
        }
    }

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn traefiks_exact_wait_is_read_and_junk_is_not() {
        let wait = |v: &[u8]| precise_wait(&headers(&[("x-retry-in", v)]));
        assert_eq!(wait(b"12.5ms"), Some(Duration::from_micros(12_500)));
        assert_eq!(wait("850µs".as_bytes()), Some(Duration::from_micros(850)));
        for junk in [&b"0s"[..], b"0", b"-3ms", b"later", b""] {
            assert_eq!(wait(junk), None, "{:?}", String::from_utf8_lossy(junk));
        }
        // Absurd: a year at most.
        assert_eq!(wait(b"99999999999h"), Some(Duration::from_secs_f64(MAX_WAIT_S)));
        // Milliseconds headers are read first.
        let both = headers(&[("retry-after-ms", b"40"), ("x-retry-in", b"7ms")]);
        assert_eq!(precise_wait(&both), Some(Duration::from_millis(40)));
        let junk_ms = headers(&[("retry-after-ms", b"soon"), ("x-retry-in", b"7ms")]);
        assert_eq!(precise_wait(&junk_ms), Some(Duration::from_millis(7)));
    }
}
