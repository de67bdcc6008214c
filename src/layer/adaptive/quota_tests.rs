//! The tests of `quota.rs`.

use super::*;

const S: Duration = Duration::from_secs(1);

/// What an answer's headers say: `remaining` until a reset in `(lo, hi]`.
fn said(remaining: u64, lo: Duration, hi: Duration, epoch: bool) -> QuotaWindow {
    QuotaWindow {
        remaining,
        reset_lo: lo,
        reset_hi: hi,
        epoch,
    }
}

#[tokio::test(start_paused = true)]
async fn the_pace_spends_what_is_left_and_waits_for_the_narrowed_reset() {
    let t0 = Instant::now();
    let mut q = QuotaWindows::default();
    // "t=5" (whole seconds): the reset is in (4 s, 5 s].
    q.on_headers(t0, t0, &said(100, 4 * S, 5 * S, false), 0);
    // 300 ms later the header still says 5: the reset is narrowed to
    // (t0 + 4.3 s, t0 + 5 s]; the pace spends what is left until then.
    let t1 = t0 + Duration::from_millis(300);
    q.on_headers(t1, t1, &said(90, 4 * S, 5 * S, false), 0);
    let rate = q.rate(t1, 1.0).expect("a quota");
    assert!((rate - 90.0 / 4.7).abs() < 0.5, "{rate}");
    // Spent: nothing before the reset.
    q.on_headers(t1, t1, &said(0, 4 * S, 5 * S, false), 0);
    assert_eq!(q.not_before(t1), Some(t0 + 5 * S));
    assert!(!q.active(t0 + 6 * S));
    // After it, until the next window shows, the pace this one allowed
    // (101 requests over 5 s); none once that long has passed too.
    let between = q.rate(t0 + 6 * S, 1.0).expect("paced between windows");
    assert!((between - 101.0 / 5.0).abs() < 0.1, "{between}");
    assert_eq!(q.rate(t0 + 10 * S, 1.0), None);
}

#[tokio::test(start_paused = true)]
async fn one_second_windows_are_told_apart_by_the_quota_coming_back() {
    // 20 a second, "t=1" on every answer: each answer's interval is a
    // second wide and overlaps the next window's.
    let t0 = Instant::now();
    let mut q = QuotaWindows::default();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    q.on_headers(at(10), at(10), &said(19, Duration::ZERO, S, false), 0);
    q.on_headers(at(990), at(990), &said(0, Duration::ZERO, S, false), 0);
    assert_eq!(q.not_before(at(990)), Some(at(1010)));
    // The next window: 19 left again, not the last one's 0.
    q.on_headers(at(1015), at(1015), &said(19, Duration::ZERO, S, false), 1);
    assert_eq!(q.not_before(at(1015)), None);
    let rate = q.rate(at(1015), 1.0).expect("a quota");
    assert!((rate - 19.0).abs() < 0.1, "{rate}");
    // An answer overtaken by one sent later is the same window.
    q.on_headers(at(1020), at(1020), &said(17, Duration::ZERO, S, false), 2);
    q.on_headers(at(1021), at(1021), &said(18, Duration::ZERO, S, false), 2);
    let rate = q.rate(at(1021), 1.0).expect("a quota");
    assert!((rate - 17.0 / 0.994).abs() < 0.01, "{rate}");
}

#[tokio::test(start_paused = true)]
async fn a_quota_that_is_not_spent_as_requests_go_is_read_answer_by_answer() {
    // "r=2;t=1" on every answer: a limiter that refills, not a window
    // being spent. Each answer allows 2 a second; spending 2 by the
    // first answer's second would speed up toward it.
    let t0 = Instant::now();
    let mut q = QuotaWindows::default();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    q.on_headers(t0, t0, &said(2, Duration::ZERO, S, false), 0);
    q.on_headers(at(500), at(499), &said(2, Duration::ZERO, S, false), 0);
    let rate = q.rate(at(900), 1.0).expect("a quota");
    assert!((rate - 2.0).abs() < 0.01, "{rate}");
}

#[tokio::test(start_paused = true)]
async fn a_window_of_a_second_named_in_epoch_seconds_is_not_followed() {
    // Flask-Limiter's "3 per second": spent, its reset named as the
    // next epoch second or the one after.
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut q = QuotaWindows::default();
    q.on_headers(t0, t0, &said(0, Duration::ZERO, 2 * S, true), 0);
    assert!(!q.active(t0), "a doubt as wide as the window: not followed");
    assert_eq!(q.not_before(t0), None);
    // The same window named in seconds from now is followed.
    let mut q = QuotaWindows::default();
    q.on_headers(t0, t0, &said(0, ms(900), S, false), 0);
    assert_eq!(q.not_before(t0), Some(t0 + S));
    // A long window first seen in its last second is followed once an
    // answer names a reset farther off.
    let mut q = QuotaWindows::default();
    q.on_headers(t0, t0, &said(5, Duration::ZERO, S, true), 0);
    assert!(!q.active(t0));
    let later = t0 + 2 * S;
    q.on_headers(later, later, &said(59, 59 * S, 60 * S, true), 0);
    assert!(q.active(later), "a window of a minute is followed");
}

#[tokio::test(start_paused = true)]
async fn a_quota_that_comes_back_only_in_part_at_its_reset_is_not_followed() {
    // A moving window of 10 a second: its reset is when its oldest
    // request leaves, and then only that one comes back.
    let t0 = Instant::now();
    let mut q = QuotaWindows::default();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    q.on_headers(at(0), at(0), &said(9, Duration::ZERO, S, false), 0);
    q.on_headers(
        at(900),
        at(900),
        &said(0, Duration::ZERO, Duration::from_millis(100), false),
        0,
    );
    assert!(q.active(at(900)), "a fixed window, for all it showed yet");
    q.on_headers(
        at(1010),
        at(1010),
        &said(1, Duration::ZERO, Duration::from_millis(90), false),
        0,
    );
    assert!(!q.active(at(1010)));
    assert_eq!(q.rate(at(1010), 1.0), None);
    assert_eq!(q.not_before(at(1010)), None);
}

#[tokio::test(start_paused = true)]
async fn an_answer_from_the_window_before_spends_nothing() {
    // Two requests in flight across a reset: the later one's answer
    // shows the new window first; the earlier one's, the old window's
    // last request.
    let t0 = Instant::now();
    let mut q = QuotaWindows::default();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    q.on_headers(at(990), at(989), &said(5, Duration::ZERO, S, false), 0);
    q.on_headers(at(1005), at(1001), &said(19, Duration::ZERO, S, false), 2);
    q.on_headers(at(1006), at(999), &said(0, Duration::ZERO, S, false), 2);
    assert_eq!(q.not_before(at(1006)), None, "the new window is not spent");
    let rate = q.rate(at(1006), 1.0).expect("a quota");
    assert!(rate > 18.0, "{rate}");
}

#[tokio::test(start_paused = true)]
async fn resets_that_come_early_are_read_early_until_a_refusal() {
    // An epoch reset rounded up: the headers say (4 s, 5.6 s] while the
    // window really resets at 5 s.
    let t0 = Instant::now();
    let mut q = QuotaWindows::default();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    q.on_headers(t0, t0, &said(10, 4 * S, Duration::from_millis(5600), true), 0);
    q.on_headers(
        at(4990),
        at(4989),
        &said(1, Duration::ZERO, Duration::from_millis(610), true),
        0,
    );
    q.on_headers(
        at(5010),
        at(5009),
        &said(99, Duration::from_millis(3590), Duration::from_millis(5590), true),
        0,
    );
    // The next window's reset is read as early as this one came, less
    // twice the spacing of its answers: 590 - 2 × 20 ms.
    q.on_headers(
        at(9000),
        at(8999),
        &said(0, Duration::ZERO, Duration::from_millis(1600), true),
        0,
    );
    assert_eq!(q.not_before(at(9000)), Some(at(10_050)));
    // A refusal after the reset as read, before the headers' own: it
    // was read too early. Before it, or after the headers' reset, not.
    assert!(q.read_too_early(at(10_100)));
    assert!(!q.read_too_early(at(10_000)), "the quota is spent then");
    assert!(!q.read_too_early(at(10_700)));
    // A refusal: back to what the headers say.
    q.on_refused();
    assert_eq!(q.not_before(at(9000)), Some(at(10_600)));
    assert!(!q.read_too_early(at(10_100)), "nothing learned to undo");
}
