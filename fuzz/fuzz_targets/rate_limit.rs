//! The IETF `RateLimit` fields: never panic on any header values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_snapshotter::retry_after::rate_limit;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let mut headers = http::HeaderMap::new();
    for name in ["ratelimit", "ratelimit-remaining", "ratelimit-reset"] {
        if let Some(Ok(v)) = parts.next().map(http::HeaderValue::from_bytes) {
            headers.insert(name, v);
        }
    }
    let _ = rate_limit(&headers);
});
