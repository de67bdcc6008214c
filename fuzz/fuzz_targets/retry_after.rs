//! `Retry-After` parsing: never panics, never asks for a zero wait.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tower_snapshotter::retry_after::{parse_retry_after, retry_after};

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    if let Some(d) = parse_retry_after(data, now) {
        assert!(!d.is_zero());
    }
    // Split the input into several header values.
    let mut headers = http::HeaderMap::new();
    for part in data.split(|b| *b == b'\n') {
        if let Ok(v) = http::HeaderValue::from_bytes(part) {
            headers.append("retry-after", v);
        }
    }
    if let Some(d) = retry_after(&headers, now) {
        assert!(!d.is_zero());
    }
});
