//! The tests of `FixedWindow` and the quota headers it sends.

use std::time::{Duration, SystemTime};

use http::StatusCode;
use testkit::model::FixedWindow;
use testkit::{Decision, QuotaHeaders};
use tokio::time::{advance, Instant};

use super::{arrive, burst, header_secs};

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
