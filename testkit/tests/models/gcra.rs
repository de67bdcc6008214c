//! The tests of nginx's `limit_req` model, `Gcra`, with and without `nodelay`.

use std::time::Duration;

use http::StatusCode;
use testkit::model::Gcra;
use testkit::RetryAfter;
use tokio::time::{advance, Instant};

use super::{arrive, burst, steady};

// ---------------------------------------------------------------- Gcra

#[tokio::test(start_paused = true)]
async fn gcra_serves_burst_plus_one_at_one_instant_then_refuses() {
    let mut g = Gcra::new(500.0, 50, RetryAfter::Static(1), Instant::now());
    // nginx: the first request leaves excess 0, each next one +1000, and one
    // is refused once its excess would pass 50 000: requests 1 ..= 51 pass.
    for i in 1..=51 {
        let d = arrive(&mut g);
        assert_eq!(d.status, StatusCode::OK, "request {i}");
        assert!(d.headers.is_empty(), "a served answer has no headers: {d:?}");
    }
    let d = arrive(&mut g);
    assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS, "request 52");
    assert_eq!(burst(&mut g, 100), 0, "every later one at the same instant");
}

#[tokio::test(start_paused = true)]
async fn gcra_refusal_leaves_the_books_as_they_were() {
    let mut g = Gcra::new(500.0, 50, RetryAfter::Static(1), Instant::now());
    assert_eq!(burst(&mut g, 51), 51);
    // A storm of refusals, and some more 1 ms later (half a request drained:
    // still refused), must not push the next slot back.
    assert_eq!(burst(&mut g, 1000), 0);
    advance(Duration::from_millis(1)).await;
    assert_eq!(burst(&mut g, 1000), 0, "1 ms drains half a request");
    // 2 ms after the last *served* request one request has drained.
    advance(Duration::from_millis(1)).await;
    assert_eq!(burst(&mut g, 10), 1, "2 ms after the last served: exactly one");
    advance(Duration::from_millis(2)).await;
    assert_eq!(burst(&mut g, 10), 1, "and one more every 2 ms");
    // A quiet 100 ms drains 50 requests: the whole burst again.
    advance(Duration::from_millis(100)).await;
    assert_eq!(burst(&mut g, 100), 50);
}

#[tokio::test(start_paused = true)]
async fn gcra_serves_requests_spaced_at_the_rate_forever() {
    for (rate, every_ms) in [(500.0, 2), (1000.0, 1), (250.0, 4), (8.0, 125), (1.0, 1000)] {
        for burst_size in [0, 1, 50] {
            let mut g = Gcra::new(rate, burst_size, RetryAfter::Absent, Instant::now());
            for i in 0..20_000 {
                assert!(
                    arrive(&mut g).served(),
                    "{rate}/s burst {burst_size}: request {i} spaced {every_ms} ms refused"
                );
                advance(Duration::from_millis(every_ms)).await;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn gcra_burst_zero_refuses_anything_faster_than_the_rate() {
    let mut g = Gcra::new(500.0, 0, RetryAfter::Absent, Instant::now());
    assert!(arrive(&mut g).served());
    advance(Duration::from_millis(1)).await;
    assert!(!arrive(&mut g).served(), "1 ms after, at 2 ms a request");
    advance(Duration::from_millis(1)).await;
    assert!(arrive(&mut g).served());
    // Steady at 1000/s against 500/s from 2 ms (just served) to 1001 ms:
    // every other one, at 4, 6 .. 1000 ms.
    let (served, sent) = steady(&mut g, Duration::from_millis(1), Duration::from_secs(1)).await;
    assert_eq!((served, sent), (499, 1000));
}

#[tokio::test(start_paused = true)]
async fn gcra_burst_one_at_2000_per_s_serves_two_per_ms() {
    let mut g = Gcra::new(2000.0, 1, RetryAfter::Absent, Instant::now());
    assert!(arrive(&mut g).served(), "first");
    assert!(arrive(&mut g).served(), "second in the same ms");
    assert!(!arrive(&mut g).served(), "third in the same ms");
    // 1 ms drains two requests at 2000/s.
    advance(Duration::from_millis(1)).await;
    assert_eq!(burst(&mut g, 5), 2);
    // Less than a ms is no time at all on nginx's millisecond clock.
    advance(Duration::from_micros(900)).await;
    assert_eq!(burst(&mut g, 5), 0);
    advance(Duration::from_micros(100)).await;
    assert_eq!(burst(&mut g, 5), 2);
}

#[tokio::test(start_paused = true)]
async fn gcra_sustained_overload_is_served_at_the_rate() {
    // 2000/s offered to 500/s with a burst of 50: 51 at once, then 500 a second.
    let mut g = Gcra::new(500.0, 50, RetryAfter::Absent, Instant::now());
    let (served, sent) = steady(&mut g, Duration::from_micros(500), Duration::from_secs(10)).await;
    assert_eq!(sent, 20_000);
    assert_eq!(served, 51 + 10 * 500 - 1, "the burst, then one per 2 ms");
}

#[tokio::test(start_paused = true)]
async fn gcra_retry_after_static_absent_exact() {
    let refused = |ra: RetryAfter, rate: f64, burst_size: u32| {
        let mut g = Gcra::new(rate, burst_size, ra, Instant::now());
        for _ in 0..=burst_size {
            assert!(arrive(&mut g).served());
        }
        let d = arrive(&mut g);
        assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS);
        d
    };
    for (ra, rate, burst_size, want, why) in [
        (RetryAfter::Static(1), 500.0, 50, Some("1"), "static"),
        (RetryAfter::Static(7), 500.0, 50, Some("7"), "static"),
        (RetryAfter::Absent, 500.0, 50, None, "absent"),
        // Exact: the wait until the next one is served, rounded to whole seconds.
        (RetryAfter::Exact, 500.0, 50, Some("0"), "2 ms"),
        (RetryAfter::Exact, 3.0, 0, Some("0"), "333 ms"),
        (RetryAfter::Exact, 2.0, 0, Some("1"), "500 ms"),
        (RetryAfter::Exact, 1.0, 0, Some("1"), "1 s"),
        (RetryAfter::Exact, 1.0, 3, Some("1"), "1 s"),
        (RetryAfter::Exact, 0.25, 0, Some("4"), "4 s"),
        (RetryAfter::Exact, 0.4, 0, Some("3"), "2.5 s"),
    ] {
        let d = refused(ra, rate, burst_size);
        assert_eq!(
            d.get("retry-after"),
            want,
            "{ra:?} at {rate}/s burst {burst_size}: {why}"
        );
        if want.is_none() {
            assert!(d.headers.is_empty(), "{d:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn gcra_exact_retry_after_is_when_it_serves_again() {
    let mut g = Gcra::new(0.25, 0, RetryAfter::Exact, Instant::now());
    assert!(arrive(&mut g).served());
    advance(Duration::from_secs(1)).await;
    let d = arrive(&mut g);
    assert_eq!(d.get("retry-after"), Some("3"), "4 s after the last served");
    advance(Duration::from_millis(2999)).await;
    assert!(!arrive(&mut g).served());
    advance(Duration::from_millis(1)).await;
    assert!(arrive(&mut g).served());
}

#[tokio::test(start_paused = true)]
async fn gcra_with_status_503() {
    let mut g = Gcra::new(500.0, 0, RetryAfter::Static(1), Instant::now())
        .with_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(arrive(&mut g).status, StatusCode::OK);
    let d = arrive(&mut g);
    assert_eq!(d.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!d.served());
    assert_eq!(d.get("retry-after"), Some("1"));
}

#[tokio::test(start_paused = true)]
async fn gcra_without_nodelay_queues_the_burst_to_the_rate() {
    // nginx without `nodelay`: 10/s with a burst of 3 takes four requests
    // at one instant and holds each `excess / rate`, so they leave 100 ms
    // apart; the fifth would wait past the burst and is refused.
    let mut g = Gcra::new(10.0, 3, RetryAfter::Absent, Instant::now()).delaying();
    let delays: Vec<u64> = (0..4)
        .map(|_| {
            let d = arrive(&mut g);
            assert!(d.served(), "{d:?}");
            d.delay.as_millis() as u64
        })
        .collect();
    assert_eq!(delays, [0, 100, 200, 300]);
    let d = arrive(&mut g);
    assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(d.delay, Duration::ZERO, "a refusal is answered at once");
    // 150 ms later one and a half requests have drained: the next waits
    // for the queue ahead of it.
    advance(Duration::from_millis(150)).await;
    assert_eq!(arrive(&mut g).delay, Duration::from_millis(250));
    // `nodelay` (the default model) serves the same burst at once.
    let mut g = Gcra::new(10.0, 3, RetryAfter::Absent, Instant::now());
    assert!((0..4).all(|_| arrive(&mut g).delay.is_zero()));
}
