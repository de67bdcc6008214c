//! The tests of the models counting over a sliding window: `SlidingWindow`,
//! `MovingWindow` and HAProxy's `FreqCounter`.

use std::time::Duration;

use http::StatusCode;
use testkit::model::{FreqCounter, MovingWindow, SlidingWindow};
use testkit::RetryAfter;
use tokio::time::{advance, Instant};

use super::{arrive, burst, steady};

// ---------------------------------------------------------------- SlidingWindow

#[tokio::test(start_paused = true)]
async fn sliding_serves_rate_in_one_second_then_refuses() {
    let mut s = SlidingWindow::new(100, Duration::from_secs(1));
    assert_eq!(burst(&mut s, 100), 100);
    let d = arrive(&mut s);
    assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS, "the 101st");
    assert!(d.headers.is_empty(), "no Retry-After: {d:?}");
}

#[tokio::test(start_paused = true)]
async fn sliding_window_is_one_second_long() {
    let mut s = SlidingWindow::new(100, Duration::from_secs(1));
    assert_eq!(burst(&mut s, 100), 100);
    advance(Duration::from_millis(999)).await;
    assert_eq!(burst(&mut s, 1), 0, "at 999 ms the first hundred are still in it");
    advance(Duration::from_millis(1)).await;
    // At 1 s the first hundred have left, the refusal at 999 ms is still in.
    assert_eq!(burst(&mut s, 100), 99);
}

#[tokio::test(start_paused = true)]
async fn sliding_counts_refusals_so_overload_stays_refused() {
    let mut s = SlidingWindow::new(100, Duration::from_secs(1));
    // 150/s (one every 6.67 ms) for 5 s: the first 100 pass, then the
    // refused ones keep the window above 100 and nothing else does.
    let (served, sent) = steady(&mut s, Duration::from_nanos(6_666_667), Duration::from_secs(5)).await;
    assert_eq!(sent, 750);
    assert_eq!(served, 100, "only the first second's first 100");

    // A quiet second empties the log; 90/s then is all served.
    advance(Duration::from_secs(1)).await;
    let (served, sent) = steady(&mut s, Duration::from_nanos(11_111_112), Duration::from_secs(5)).await;
    assert_eq!(sent, 450);
    assert_eq!(served, sent, "90/s under 100/s is all served");
}

#[tokio::test(start_paused = true)]
async fn sliding_just_under_the_rate_is_served_just_over_is_not() {
    // 100/s exactly (10 ms apart): at most 100 arrivals in any second.
    let mut s = SlidingWindow::new(100, Duration::from_secs(1));
    let (served, sent) = steady(&mut s, Duration::from_millis(10), Duration::from_secs(5)).await;
    assert_eq!(served, sent);
    // 101/s (9.9 ms apart) after a quiet second: refused once the log holds
    // 101 and it never recovers.
    advance(Duration::from_secs(1)).await;
    let (served, sent) = steady(&mut s, Duration::from_micros(9_900), Duration::from_secs(5)).await;
    assert!(sent >= 500);
    assert_eq!(served, 100);
}

// ---------------------------------------------------------------- MovingWindow

#[tokio::test(start_paused = true)]
async fn moving_window_refuses_until_its_oldest_served_request_leaves() {
    let mut m = MovingWindow::new(100, Duration::from_secs(10), RetryAfter::Exact);
    assert_eq!(burst(&mut m, 60), 60);
    advance(Duration::from_millis(2500)).await;
    assert_eq!(burst(&mut m, 60), 40, "100 in any ten seconds");
    let d = arrive(&mut m);
    assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS);
    // The first 60 leave at 10 s, 7.5 s from now: rounded up to 8.
    assert_eq!(d.get("retry-after"), Some("8"));
    advance(Duration::from_millis(7499)).await;
    let d = arrive(&mut m);
    assert_eq!(d.get("retry-after"), Some("1"), "never 0 while full");
    advance(Duration::from_millis(1)).await;
    // Refusals were not counted: the 60 that left make room for 60.
    assert_eq!(burst(&mut m, 100), 60);
}

#[tokio::test(start_paused = true)]
async fn moving_window_at_its_rate_is_served_whole() {
    // 10 per second over ten seconds, one every 100 ms: never more than
    // 100 in any ten seconds, so nothing is refused.
    let mut m = MovingWindow::new(100, Duration::from_secs(10), RetryAfter::Absent);
    let (served, sent) = steady(&mut m, Duration::from_millis(100), Duration::from_secs(30)).await;
    assert_eq!((served, sent), (300, 300));
    // Faster, and the refusals carry no header.
    let d = (0..10).map(|_| arrive(&mut m)).last().expect("ten arrivals");
    assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(d.headers.is_empty(), "{d:?}");
}

#[tokio::test(start_paused = true)]
async fn moving_window_sends_flask_limiters_headers_on_every_answer() {
    testkit::model::set_wall_phase_ms(Some(400));
    let mut m = MovingWindow::new(5, Duration::from_secs(2), RetryAfter::Absent).with_headers(Instant::now());
    testkit::model::set_wall_phase_ms(None);
    let d = arrive(&mut m);
    assert!(d.served());
    assert_eq!(d.get("x-ratelimit-limit"), Some("5"));
    assert_eq!(d.get("x-ratelimit-remaining"), Some("4"));
    // The oldest leaves at x.4 + 2 s: the reset is the second after, and
    // `Retry-After` its whole seconds from now, on a served answer too.
    let reset: u64 = d
        .get("x-ratelimit-reset")
        .and_then(|r| r.parse().ok())
        .expect("a reset");
    assert_eq!(reset, 1_700_000_003);
    assert_eq!(d.get("retry-after"), Some("2"));
    assert!(d.get("date").is_some());
    advance(Duration::from_millis(1700)).await;
    assert_eq!(burst(&mut m, 10), 4);
    let d = arrive(&mut m);
    assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(d.get("x-ratelimit-remaining"), Some("0"));
    assert_eq!(d.get("retry-after"), Some("0"), "within the reset's last second");
}

// ---------------------------------------------------------------- FreqCounter

#[tokio::test(start_paused = true)]
async fn freq_counter_serves_its_limit_in_a_period_then_refuses() {
    let mut c = FreqCounter::new(100, Duration::from_secs(1));
    assert_eq!(burst(&mut c, 100), 100);
    assert_eq!(arrive(&mut c).status, StatusCode::TOO_MANY_REQUESTS, "the 101st");
}

#[tokio::test(start_paused = true)]
async fn freq_counter_weighs_the_previous_period_by_the_time_left() {
    let mut c = FreqCounter::new(100, Duration::from_secs(1));
    // 100 served and 20 refused in the first period: 120 counted.
    assert_eq!(burst(&mut c, 120), 100);
    // A quarter into the next, three quarters of 120 (90) still weigh:
    // ten more fit, where an exact sliding log would still refuse all.
    advance(Duration::from_millis(1250)).await;
    assert_eq!(burst(&mut c, 30), 10);
    // Half-way, 60 of the previous period's 120 weigh, and this one's
    // 30 (refusals too): ten more fit.
    advance(Duration::from_millis(250)).await;
    assert_eq!(burst(&mut c, 30), 10);
    // Two periods on, with a period without a request between, nothing
    // weighs any more.
    advance(Duration::from_secs(2)).await;
    assert_eq!(burst(&mut c, 100), 100);
}

#[tokio::test(start_paused = true)]
async fn freq_counter_holds_a_client_over_its_rate_below_it() {
    let mut c = FreqCounter::new(100, Duration::from_secs(1));
    // 150/s for 5 s: refusals count, so the steady state serves less
    // than the limit (the counter holds each period's 150 arrivals).
    let (served, sent) = steady(&mut c, Duration::from_nanos(6_666_667), Duration::from_secs(5)).await;
    assert_eq!(sent, 750);
    assert!(served < 300, "{served} served of 500 allowed");
    // 95/s afterwards, once a quiet period has passed, is all served.
    advance(Duration::from_secs(2)).await;
    let (served, sent) = steady(&mut c, Duration::from_nanos(10_526_316), Duration::from_secs(5)).await;
    assert_eq!(served, sent);
}
