//! The tests of the token buckets: `TokenBucket`, and Traefik's with the Go
//! durations it prints.

use std::time::Duration;

use http::StatusCode;
use testkit::model::{go_duration, TokenBucket, Traefik};
use testkit::RetryAfter;
use tokio::time::{advance, Instant};

use super::{arrive, burst, steady};

// ---------------------------------------------------------------- TokenBucket

#[tokio::test(start_paused = true)]
async fn bucket_full_burst_then_the_rate() {
    let mut b = TokenBucket::new(100.0, 100.0, RetryAfter::Static(1), Instant::now());
    assert_eq!(burst(&mut b, 100), 100, "a full bucket at the start");
    let d = arrive(&mut b);
    assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(d.get("retry-after"), Some("1"));
    // One token every 10 ms.
    advance(Duration::from_millis(5)).await;
    assert_eq!(burst(&mut b, 10), 0);
    advance(Duration::from_millis(5)).await;
    assert_eq!(burst(&mut b, 10), 1);
    // A pause refills at most one bucket.
    advance(Duration::from_secs(10)).await;
    assert_eq!(burst(&mut b, 1000), 100);
    // Offered 400/s for 10 s after that: 100 a second.
    let (served, sent) = steady(&mut b, Duration::from_micros(2500), Duration::from_secs(10)).await;
    assert_eq!(sent, 4000);
    assert!((999..=1000).contains(&served), "{served}");
}

#[tokio::test(start_paused = true)]
async fn bucket_spaced_at_the_rate_is_all_served() {
    for (rate, every) in [
        (100.0, Duration::from_millis(10)),
        (500.0, Duration::from_millis(2)),
    ] {
        let mut b = TokenBucket::new(rate, 1.0, RetryAfter::Absent, Instant::now());
        let (served, sent) = steady(&mut b, every, Duration::from_secs(20)).await;
        assert_eq!(served, sent, "{rate}/s");
    }
}

#[tokio::test(start_paused = true)]
async fn bucket_retry_after_exact() {
    let mut b = TokenBucket::new(1.0, 1.0, RetryAfter::Exact, Instant::now());
    assert!(arrive(&mut b).served());
    assert_eq!(arrive(&mut b).get("retry-after"), Some("1"));
    advance(Duration::from_millis(600)).await;
    assert_eq!(arrive(&mut b).get("retry-after"), Some("0"), "400 ms left");
    let mut b = TokenBucket::new(100.0, 100.0, RetryAfter::Absent, Instant::now());
    assert_eq!(burst(&mut b, 100), 100);
    assert!(arrive(&mut b).headers.is_empty());
}

// ---------------------------------------------------------------- Traefik

#[tokio::test(start_paused = true)]
async fn traefik_serves_late_within_half_an_interval_and_refuses_past_it() {
    // 100/s with a burst of 2: half an interval is 5 ms.
    let mut t = Traefik::new(100.0, 2);
    let (a, b, c) = (arrive(&mut t), arrive(&mut t), arrive(&mut t));
    assert!(a.served() && b.served());
    assert_eq!((a.delay, b.delay), (Duration::ZERO, Duration::ZERO));
    // The third waits 10 ms for a token: refused, with the wait rounded
    // up to a second and exact.
    assert_eq!(c.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(c.get("retry-after"), Some("1"));
    assert_eq!(c.get("x-retry-in"), Some("10ms"));
    // A refusal was cancelled: 6 ms later a token is 4 ms off, within
    // half an interval, so the request is served 4 ms late.
    advance(Duration::from_millis(6)).await;
    let d = arrive(&mut t);
    assert!(d.served(), "{d:?}");
    assert_eq!(d.delay.as_micros(), 4_000);
    // That reservation took the token ahead: the next waits 14 ms.
    assert_eq!(arrive(&mut t).get("x-retry-in"), Some("14ms"));
    // Offered 400/s: served at the rate, each late by at most 5 ms.
    advance(Duration::from_secs(1)).await;
    let (served, sent) = steady(&mut t, Duration::from_micros(2500), Duration::from_secs(10)).await;
    assert_eq!(sent, 4000);
    assert!((1000..=1003).contains(&served), "{served}");
}

#[tokio::test(start_paused = true)]
async fn traefik_under_one_a_second_waits_half_a_second_at_most() {
    let mut t = Traefik::new(0.5, 1);
    assert!(arrive(&mut t).served());
    let d = arrive(&mut t);
    assert_eq!(
        (d.get("retry-after"), d.get("x-retry-in")),
        (Some("2"), Some("2s"))
    );
    advance(Duration::from_millis(1600)).await;
    let d = arrive(&mut t);
    assert!(d.served() && d.delay == Duration::from_millis(400), "{d:?}");
}

#[test]
fn go_durations_print_as_go_prints_them() {
    let cases = [
        (Duration::ZERO, "0s"),
        (Duration::from_nanos(999), "999ns"),
        (Duration::from_nanos(850_000), "850µs"),
        (Duration::from_nanos(1_500), "1.5µs"),
        (Duration::from_nanos(12_345_678), "12.345678ms"),
        (Duration::from_millis(10), "10ms"),
        (Duration::from_millis(1_500), "1.5s"),
        (Duration::from_millis(123_250), "2m3.25s"),
        (Duration::from_secs(3_600), "1h0m0s"),
    ];
    for (d, go) in cases {
        assert_eq!(go_duration(d), go, "{d:?}");
    }
}
