//! Each limiter model pinned on tokio's paused clock: when it serves, when it
//! refuses, and which headers it sends. A model that refuses at the wrong
//! time is a wrong model, so the figures here are exact.

use std::time::{Duration, SystemTime};

use http::StatusCode;
use testkit::model::{
    go_duration, Concurrency, FixedWindow, FreqCounter, Gcra, MovingWindow, Phases, SlidingWindow,
    TokenBucket, Traefik, Unlimited,
};
use testkit::{Decision, Limiter, QuotaHeaders, RetryAfter, Spec};
use tokio::time::{advance, Instant};

/// `n` arrivals at the current instant; how many were served.
fn burst(limiter: &mut dyn Limiter, n: usize) -> usize {
    let now = Instant::now();
    (0..n).filter(|_| limiter.arrive(now).served()).count()
}

/// One arrival now.
fn arrive(limiter: &mut dyn Limiter) -> Decision {
    limiter.arrive(Instant::now())
}

/// Sends one request every `every` for `total` (the first at once, none at
/// `total` itself); how many were served and how many sent.
async fn steady(limiter: &mut dyn Limiter, every: Duration, total: Duration) -> (usize, usize) {
    let end = Instant::now() + total;
    let (mut served, mut sent) = (0, 0);
    while Instant::now() < end {
        sent += 1;
        if arrive(limiter).served() {
            served += 1;
        }
        advance(every).await;
    }
    (served, sent)
}

fn header_secs(d: &Decision, name: &str) -> u64 {
    d.get(name)
        .unwrap_or_else(|| panic!("no {name} in {d:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} not whole seconds in {d:?}"))
}

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

// ---------------------------------------------------------------- FixedWindow

#[tokio::test(start_paused = true)]
async fn fixed_window_ietf_headers_count_down_to_the_reset() {
    let mut w = FixedWindow::new(10, Duration::from_secs(5), QuotaHeaders::Ietf, Instant::now());
    // One request every 400 ms: at 0 .. 3.6 s, t = ceil(5 - 0.4 i).
    let expected_t = [5, 5, 5, 4, 4, 3, 3, 3, 2, 2];
    for (i, t) in expected_t.into_iter().enumerate() {
        let d = arrive(&mut w);
        assert_eq!(d.status, StatusCode::OK, "request {i}");
        assert_eq!(d.get("ratelimit-policy"), Some("\"default\";q=10;w=5"));
        let want = format!("\"default\";r={};t={t}", 9 - i);
        assert_eq!(d.get("ratelimit"), Some(want.as_str()), "request {i}");
        assert_eq!(d.get("retry-after"), None);
        advance(Duration::from_millis(400)).await;
    }
    // The 11th, at 4 s: refused until the reset at 5 s.
    let d = arrive(&mut w);
    assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(d.get("retry-after"), Some("1"));
    assert_eq!(d.get("ratelimit"), Some("\"default\";r=0;t=1"));
    assert_eq!(d.get("ratelimit-policy"), Some("\"default\";q=10;w=5"));
    // Refusals do not count, and the window does not move with them.
    advance(Duration::from_millis(999)).await;
    let d = arrive(&mut w);
    assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(d.get("retry-after"), Some("1"), "1 ms to the reset is still 1 s");
    assert_eq!(d.get("ratelimit"), Some("\"default\";r=0;t=1"));
    // The next window at 5 s serves the whole quota again.
    advance(Duration::from_millis(1)).await;
    let d = arrive(&mut w);
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.get("ratelimit"), Some("\"default\";r=9;t=5"));
    assert_eq!(burst(&mut w, 20), 9);
}

#[tokio::test(start_paused = true)]
async fn fixed_window_retry_after_points_at_the_reset() {
    let mut w = FixedWindow::new(10, Duration::from_secs(5), QuotaHeaders::Ietf, Instant::now());
    advance(Duration::from_millis(1500)).await;
    assert_eq!(burst(&mut w, 10), 10);
    let d = arrive(&mut w);
    assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(d.get("retry-after"), Some("4"), "3.5 s to the reset, rounded up");
    advance(Duration::from_millis(3499)).await;
    assert_eq!(burst(&mut w, 1), 0);
    advance(Duration::from_millis(1)).await;
    assert_eq!(burst(&mut w, 1), 1);
    // A window that saw nothing is skipped whole: at 17 s the 4th window
    // (15 .. 20 s) is fresh.
    advance(Duration::from_secs(12)).await;
    let d = arrive(&mut w);
    assert_eq!(d.get("ratelimit"), Some("\"default\";r=9;t=3"));
}

#[tokio::test(start_paused = true)]
async fn fixed_window_github_headers() {
    let mut w = FixedWindow::new(10, Duration::from_secs(5), QuotaHeaders::GitHub, Instant::now());
    let wall_start = SystemTime::now();
    advance(Duration::from_millis(700)).await;
    let mut reset_first = None;
    for i in 0..11u64 {
        let d = arrive(&mut w);
        let served = i < 10;
        assert_eq!(d.served(), served, "request {i}");
        assert_eq!(header_secs(&d, "x-ratelimit-limit"), 10);
        assert_eq!(header_secs(&d, "x-ratelimit-remaining"), 9 - i.min(9));
        assert_eq!(header_secs(&d, "x-ratelimit-used"), (i + 1).min(10));
        assert!(d.get("ratelimit").is_none() && d.get("ratelimit-policy").is_none());
        let reset = header_secs(&d, "x-ratelimit-reset");
        assert!(reset > 1_000_000_000, "UTC epoch seconds: {reset}");
        assert_eq!(*reset_first.get_or_insert(reset), reset, "one reset per window");
        // The Date header (whole seconds, rounded down) plus the seconds to
        // the reset (rounded up) is the reset, within a second.
        let date = httpdate::parse_http_date(d.get("date").expect("a Date header")).unwrap();
        let date = date.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        let since = Duration::from_millis(700 + 300 * i);
        let to_reset = (Duration::from_secs(5) - since).as_secs_f64().ceil() as u64;
        assert!(
            (reset as i64 - (date + to_reset) as i64).abs() <= 1,
            "reset {reset} vs date {date} + {to_reset}"
        );
        // And the reset is never before the true one (a client that waits
        // for it is not refused for being early).
        let true_reset = wall_start + Duration::from_secs(5);
        let true_reset = true_reset
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(reset as f64 >= true_reset - 0.5, "reset {reset} vs {true_reset}");
        if !served {
            assert_eq!(d.status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(header_secs(&d, "retry-after"), to_reset);
        }
        advance(Duration::from_millis(300)).await;
    }
    // Next window: the reset moves on by the window, the quota is back.
    advance(Duration::from_secs(2)).await;
    let d = arrive(&mut w);
    assert!(d.served());
    assert_eq!(header_secs(&d, "x-ratelimit-remaining"), 9);
    assert_eq!(header_secs(&d, "x-ratelimit-used"), 1);
    assert_eq!(header_secs(&d, "x-ratelimit-reset"), reset_first.unwrap() + 5);
}

#[tokio::test(start_paused = true)]
async fn fixed_window_github_date_runs_with_the_server_clock() {
    let mut w = FixedWindow::new(
        1000,
        Duration::from_secs(60),
        QuotaHeaders::GitHub,
        Instant::now(),
    );
    let date = |d: &Decision| {
        httpdate::parse_http_date(d.get("date").unwrap())
            .unwrap()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let first = date(&arrive(&mut w));
    advance(Duration::from_secs(30)).await;
    let later = date(&arrive(&mut w));
    assert!((29..=31).contains(&(later - first)), "{first} -> {later}");
}

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

// ---------------------------------------------------------------- Concurrency

#[tokio::test(start_paused = true)]
async fn concurrency_refuses_past_the_limit_until_one_departs() {
    let mut c = Concurrency::new(2);
    assert!(arrive(&mut c).served());
    assert!(arrive(&mut c).served());
    let d = arrive(&mut c);
    assert_eq!(d.status, StatusCode::SERVICE_UNAVAILABLE, "third in flight");
    assert!(d.headers.is_empty(), "no Retry-After: {d:?}");
    // Refusals never held a slot; time alone frees nothing.
    advance(Duration::from_secs(60)).await;
    assert_eq!(burst(&mut c, 10), 0);
    c.depart(Instant::now());
    assert!(arrive(&mut c).served());
    assert!(!arrive(&mut c).served());
    c.depart(Instant::now());
    c.depart(Instant::now());
    assert_eq!(burst(&mut c, 10), 2);
}

#[tokio::test(start_paused = true)]
async fn unlimited_serves_everything() {
    assert_eq!(burst(&mut Unlimited, 100_000), 100_000);
}

// ---------------------------------------------------------------- Phases

#[tokio::test(start_paused = true)]
async fn phases_serve_each_limiter_from_its_start_on() {
    let now = Instant::now();
    let bucket =
        |rate: f64| -> Box<dyn Limiter> { Box::new(TokenBucket::new(rate, 1.0, RetryAfter::Absent, now)) };
    let secs = Duration::from_secs;
    let mut p = Phases::new(
        now,
        vec![
            (secs(0), bucket(100.0)),
            (secs(10), bucket(20.0)),
            (secs(20), bucket(100.0)),
        ],
    );
    // Every 5 ms is 200/s: each phase serves its own rate (a little less
    // at 20/s, where the refill per arrival is not exact in binary).
    let (fast, _) = steady(&mut p, Duration::from_millis(5), secs(10)).await;
    let (slow, _) = steady(&mut p, Duration::from_millis(5), secs(10)).await;
    let (back, _) = steady(&mut p, Duration::from_millis(5), secs(10)).await;
    assert!((995..=1001).contains(&fast), "{fast}");
    assert!((180..=201).contains(&slow), "{slow}");
    assert!((995..=1001).contains(&back), "{back}");
}

// ---------------------------------------------------------------- Spec

#[test]
fn spec_parse_every_kind() {
    let p = |kind, ra| Spec::parse(kind, 500.0, 50, ra).unwrap();
    assert_eq!(
        p("gcra", "1"),
        Spec::Gcra {
            rate: 500.0,
            burst: 50,
            retry_after: RetryAfter::Static(1)
        }
    );
    assert_eq!(
        p("gcra", "exact"),
        Spec::Gcra {
            rate: 500.0,
            burst: 50,
            retry_after: RetryAfter::Exact
        }
    );
    assert_eq!(
        p("gcra", "none"),
        Spec::Gcra {
            rate: 500.0,
            burst: 50,
            retry_after: RetryAfter::Absent
        }
    );
    assert_eq!(
        p("sliding", "1"),
        Spec::Sliding {
            rate: 500.0,
            window: Duration::from_secs(1)
        }
    );
    assert_eq!(
        p("sliding", "1").with_window(Duration::from_secs(10)).to_string(),
        "sliding 500/s w10s"
    );
    assert_eq!(
        p("moving", "exact").with_window(Duration::from_secs(60)),
        Spec::Moving {
            rate: 500.0,
            window: Duration::from_secs(60),
            retry_after: RetryAfter::Exact,
            headers: false
        }
    );
    assert_eq!(p("moving", "none").to_string(), "moving 500/s w1s no RA");
    assert_eq!(p("moving-flask", "none").to_string(), "moving 500/s w1s Flask");
    assert_eq!(
        p("window", "1"),
        Spec::Window {
            rate: 500.0,
            window: Duration::from_secs(5),
            headers: QuotaHeaders::Ietf
        }
    );
    assert_eq!(
        p("window-github", "1"),
        Spec::Window {
            rate: 500.0,
            window: Duration::from_secs(5),
            headers: QuotaHeaders::GitHub
        }
    );
    assert_eq!(
        p("bucket", "30"),
        Spec::Bucket {
            rate: 500.0,
            retry_after: RetryAfter::Static(30)
        }
    );
    assert_eq!(p("concurrency", "1"), Spec::Concurrency { limit: 50 });
    assert_eq!(
        Spec::parse("concurrency", 500.0, 0, "1").unwrap(),
        Spec::Concurrency { limit: 1 },
        "at least one in flight"
    );
    assert_eq!(p("gcra", "1").rate(), Some(500.0));
    assert_eq!(p("concurrency", "1").rate(), None);
}

#[test]
fn spec_parse_errors_name_the_flag() {
    let err = |kind, rate, ra| Spec::parse(kind, rate, 50, ra).unwrap_err().to_string();
    let e = err("leaky", 500.0, "1");
    assert!(e.starts_with("--limiter:") && e.contains("\"leaky\""), "{e}");
    for bad in ["soon", "-1", "1.5", ""] {
        let e = err("gcra", 500.0, bad);
        assert!(e.starts_with("--retry-after:"), "{bad:?}: {e}");
    }
    for bad in [0.0, 0.005, -3.0, 2e6, f64::NAN, f64::INFINITY] {
        let e = err("gcra", bad, "1");
        assert!(e.starts_with("--rate:"), "{bad}: {e}");
    }
    assert!(Spec::parse("gcra", 0.01, 0, "0").is_ok(), "a rate per minute");
    assert!(Spec::parse("gcra", 1.0, 0, "0").is_ok());
    assert!(Spec::parse("gcra", 1e6, 0, "0").is_ok());
}

#[tokio::test(start_paused = true)]
async fn spec_builds_the_model_it_names() {
    let build = |kind, rate, burst_size, ra| {
        Spec::parse(kind, rate, burst_size, ra)
            .unwrap()
            .build(Instant::now())
    };

    let mut g = build("gcra", 500.0, 50, "1");
    assert_eq!(burst(g.as_mut(), 100), 51);
    assert_eq!(arrive(g.as_mut()).get("retry-after"), Some("1"));

    let mut s = build("sliding", 100.0, 50, "1");
    assert_eq!(burst(s.as_mut(), 200), 100);

    // A window of 5 s at 2/s: a quota of 10.
    let mut w = build("window", 2.0, 50, "1");
    let d = arrive(w.as_mut());
    assert_eq!(d.get("ratelimit-policy"), Some("\"default\";q=10;w=5"));
    assert_eq!(burst(w.as_mut(), 100), 9);
    let mut w = build("window-github", 2.0, 50, "1");
    assert_eq!(arrive(w.as_mut()).get("x-ratelimit-limit"), Some("10"));

    // The bucket's burst is one second of the rate.
    let mut b = build("bucket", 100.0, 7, "exact");
    assert_eq!(burst(b.as_mut(), 200), 100);
    assert_eq!(arrive(b.as_mut()).get("retry-after"), Some("0"));

    let mut c = build("concurrency", 500.0, 3, "1");
    assert_eq!(burst(c.as_mut(), 10), 3);
    c.depart(Instant::now());
    assert_eq!(burst(c.as_mut(), 10), 1);
}

#[test]
fn spec_display() {
    assert_eq!(
        Spec::parse("gcra", 500.0, 50, "1").unwrap().to_string(),
        "gcra 500/s b50 RA 1"
    );
    assert_eq!(
        Spec::parse("concurrency", 500.0, 8, "1").unwrap().to_string(),
        "concurrency 8"
    );
}
