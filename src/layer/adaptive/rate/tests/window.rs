//! Windows that count refusals: drained, read whole, read again.

use std::time::Duration;

use tokio::time::Instant;

use super::{accept_every, ms};
use crate::layer::adaptive::fit::SEARCH_STEP;
use crate::layer::adaptive::rate::loss::DRAIN;
use crate::layer::adaptive::rate::window::{round_window, STARVED};
use crate::layer::adaptive::rate::{Basis, RateControl};

#[test]
fn a_window_reopening_a_little_after_a_round_length_is_that_long() {
    assert_eq!(round_window(10.58), 10.0);
    assert_eq!(round_window(1.05), 1.0);
    assert_eq!(round_window(63.0), 60.0);
    assert_eq!(round_window(11.2), 10.0);
    assert_eq!(round_window(5.9), 5.0);
    assert_eq!(
        round_window(12.5),
        12.5,
        "not within a tenth and a second of 10 s"
    );
    assert_eq!(round_window(9.9), 9.9, "never longer than measured");
}

/// Every request sent at the pace (which binds) from `from` to `until`
/// accepted at once; the pace then.
pub(super) fn accepted_at_pace(c: &mut RateControl, from: Instant, until: Instant) -> f64 {
    let mut t = from;
    while t < until {
        c.bound_at = Some(t);
        let rate = c.rate(t).expect("paced");
        t += Duration::from_secs_f64(1.0 / rate);
        c.on_send(t);
        c.on_accepted(t, t);
    }
    c.rate(t).expect("paced")
}

/// A host that accepted 100 within its first second and then refused
/// one (a window at 100/s that counts refusals); returns when.
pub(super) fn full_at_100_then_refused(t0: Instant) -> (RateControl, Instant) {
    let mut c = RateControl::new(1.0, t0);
    let t = accept_every(&mut c, t0, 100, ms(5));
    c.on_loss(t, t, None);
    (c, t)
}

/// `n` refusals of requests sent 10 ms apart after `from`; returns the
/// last one's time.
fn refused_every_10_ms(c: &mut RateControl, from: Instant, n: u32) -> Instant {
    let mut t = from;
    for _ in 0..n {
        t += ms(10);
        c.on_loss(t, t, None);
    }
    t
}

#[tokio::test(start_paused = true)]
async fn refusals_below_what_the_host_accepted_drain_instead_of_cutting() {
    // 100 accepted within the first second, then refusals (a sliding
    // window at 100/s that counts them).
    let (mut c, mut t) = full_at_100_then_refused(Instant::now());
    let first = c.rate(t).expect("paced");
    assert!((first - 100.0).abs() < 1.0, "{first}");
    // Refusals keep coming at that pace: drain at half, keep the count.
    t = refused_every_10_ms(&mut c, t, 20);
    let drained = c.rate(t).expect("paced");
    assert!(drained <= 51.0, "{drained}");
    assert_eq!(c.estimate(), (100.0, Basis::Measured));
    // After the drain: the hold below it, with the room a counting
    // window needs.
    let after = c.rate(t + DRAIN).expect("paced");
    assert!(
        (after - 97.0).abs() < 1.0,
        "under a counting limiter the hold is 97 %: {after}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_drain_refused_eight_times_with_nothing_accepted_sends_a_sixteenth() {
    // A window full of the opening's flood refuses the drain's half pace
    // as it refuses everything, and counts each refusal.
    let (mut c, mut t) = full_at_100_then_refused(Instant::now());
    // Refused every 10 ms until the drain begins.
    while c.rate(t).is_some_and(|r| r > 51.0) {
        t = refused_every_10_ms(&mut c, t, 1);
    }
    let from = t;
    for _ in 0..7 {
        t += ms(20);
        c.on_loss(t, t, None);
    }
    let half = c.rate(t).expect("paced");
    assert!((half - 50.0).abs() < 0.5, "seven refusals: half still, {half}");
    t += ms(20);
    c.on_loss(t, t, None);
    let drawn_out = c.rate(t).expect("paced");
    assert!(t < from + DRAIN, "within the half second");
    assert!((drawn_out - 6.25).abs() < 0.1, "eight: a sixteenth, {drawn_out}");
}

#[tokio::test(start_paused = true)]
async fn a_drain_goes_on_while_the_window_still_refuses_up_to_a_second() {
    let (mut c, t) = full_at_100_then_refused(Instant::now());
    let drained_from = refused_every_10_ms(&mut c, t, 20);
    // Past the half second, the window (HAProxy's counter, still weighing
    // the overshoot's period) refuses on and nothing was accepted: the
    // drain goes on.
    let t = drained_from + DRAIN + ms(10);
    c.on_loss(t, t, None);
    let still = c.rate(t).expect("paced");
    assert!(
        (still - 6.25).abs() < 0.1,
        "drawn out, at a sixteenth (each refusal stays counted): {still}"
    );
    assert_eq!(c.estimate(), (100.0, Basis::Measured));
    // Never past a second from its start in all.
    let after = c.rate(drained_from + STARVED + ms(1)).expect("paced");
    assert!((after - 97.0).abs() < 1.0, "the hold after a second: {after}");
}

#[tokio::test(start_paused = true)]
async fn a_window_of_a_second_that_starves_the_pace_drains_before_it_trickles() {
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    // Eight accepted within a third of a second (a window of 8/s), then a
    // search's refusals and the hold's, nothing accepted for over a second.
    let mut t = accept_every(&mut c, t0, 8, ms(40));
    let mut refused_every_80_ms = |c: &mut RateControl, n: usize| {
        for _ in 0..n {
            t += ms(80);
            c.on_send(t);
            c.on_loss(t, t, None);
        }
        t
    };
    let t1 = refused_every_80_ms(&mut c, 14);
    let pace = c.rate(t1).expect("paced");
    assert!(
        (3.5..=4.5).contains(&pace),
        "half the eight the window took, not a trickle: {pace}"
    );
    assert_eq!(c.estimate(), (8.0, Basis::Measured));
    // Refused through a second of that drain: a longer window, trickled.
    let t2 = refused_every_80_ms(&mut c, 14);
    let pace = c.rate(t2).expect("paced");
    assert!(pace <= 1.0, "the trickle: {pace}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_counting_window_nearby_is_read_whole() {
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    // A window of 20 a second, 20 ms away: 20 sent 50 ms apart from
    // 130 ms, accepted; the 21st, 10 ms after the last, refused at
    // once, before the last acceptance comes back: the first reading
    // is 19.
    let rtt = ms(20);
    let sent: Vec<Instant> = (0..20).map(|i| t0 + ms(130 + 50 * i)).collect();
    for &at in &sent[..19] {
        c.on_accepted(at + rtt, at);
    }
    let mut t = sent[19] + ms(10);
    c.on_loss(t, t, None);
    c.on_accepted(sent[19] + rtt, sent[19]);
    // The search past it is refused at once, and on: the window counts
    // the refusals.
    t += SEARCH_STEP;
    c.bound_at = Some(t);
    c.rate(t);
    for _ in 0..12 {
        c.on_loss(t, t, None);
        t += ms(10);
    }
    // Drained: the second that ended at the first refusal holds 20
    // acceptances. The last second, read at the drain, held fewer (it
    // slid on since, by whole slots of the meter): no bound on that.
    let (estimate, basis) = c.estimate();
    assert_eq!(basis, Basis::Measured);
    assert!((estimate - 20.0).abs() < 0.5, "read whole: {estimate}/s");
}

#[tokio::test(start_paused = true)]
async fn a_counting_window_is_read_again_once_its_acceptances_are_answered() {
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    // A window of 100 a second filled in 200 ms; the refusal of the
    // 101st comes back before the last 15 acceptances.
    let sent: Vec<Instant> = (1..=100).map(|i| t0 + ms(2 * i)).collect();
    for &at in &sent[..85] {
        c.on_accepted(at + ms(1), at);
    }
    let refused_at = t0 + ms(201);
    c.on_loss(refused_at, refused_at, None);
    assert!(
        c.estimate().0 < 90.0,
        "the first read is short: {:?}",
        c.estimate()
    );
    // The search steps past it and is refused there: frozen.
    let mut t = refused_at + SEARCH_STEP;
    c.bound_at = Some(t);
    c.rate(t);
    c.on_loss(t + ms(1), t, None);
    assert_eq!(c.estimate().1, Basis::Measured);
    assert!(c.estimate().0 < 90.0, "{:?}", c.estimate());
    // The last acceptances come in late.
    for &at in &sent[85..] {
        c.on_accepted(t + ms(5), at);
    }
    // Refusals keep coming at the pace: the window counts them. Read
    // two round trips (of those late answers) after the cut at least:
    // sooner, a far GCRA's answers read three to one too.
    for _ in 0..30 {
        t += ms(10);
        c.on_loss(t, t, None);
    }
    let (estimate, basis) = c.estimate();
    assert_eq!(basis, Basis::Measured);
    assert!((estimate - 100.0).abs() < 1.0, "read again: {estimate}/s");
}

/// Against `limiter`: an opening flood of `flood` sent a millisecond
/// apart, then every send at the pace (which binds), each answered at once,
/// until `until`. The pace then, and the share of the sends of the last
/// `last` refused.
fn paced_into(mut limiter: impl testkit::Limiter, flood: u32, until: Duration, last: Duration) -> (f64, f64) {
    let t0 = Instant::now();
    let mut c = RateControl::new(0.5, t0);
    let (mut sent, mut refused) = (0u32, 0u32);
    let mut answer = |c: &mut RateControl, t: Instant| {
        c.on_send(t);
        let counted = t >= t0 + until - last;
        sent += u32::from(counted);
        if limiter.arrive(t).served() {
            c.on_accepted(t, t);
        } else {
            c.on_loss(t, t, None);
            refused += u32::from(counted);
        }
    };
    let mut t = t0;
    for _ in 0..flood {
        t += ms(1);
        answer(&mut c, t);
    }
    while t < t0 + until {
        c.bound_at = Some(t);
        t += c.rate(t).map_or(ms(1), |r| Duration::from_secs_f64(1.0 / r));
        answer(&mut c, t);
    }
    (
        c.rate(t).expect("paced"),
        f64::from(refused) / f64::from(sent.max(1)),
    )
}

#[tokio::test(start_paused = true)]
async fn a_log_of_three_seconds_is_read_as_that_long() {
    // 30 over 3 s, in a log that counts refusals: read as 2 s (15/s)
    // before 3 s was a length counters are configured with, and each
    // fill at that pace refused a window's sends.
    let secs = Duration::from_secs;
    let log = testkit::model::SlidingWindow::new(30, secs(3));
    let (pace, refused) = paced_into(log, 60, secs(60), secs(40));
    assert!(pace <= 10.0 && refused < 0.05, "{pace}/s, {refused} refused");
}

#[tokio::test(start_paused = true)]
async fn a_gcra_past_its_burst_accepting_steadily_through_a_drain_is_measured_there() {
    // The burst taken at once in the opening reads as a window of a
    // second that counts refusals, and the pace drains at half of it.
    // nginx at 3/s with `burst=50` accepts that drain three times a
    // second: measured there, not resumed at 51/s once the drain ends
    // (86 % of the sends of the first 3 s refused went to 74 %). At 2/s
    // with `burst=10` the drain is accepted once and the hold after it
    // once each half second more: those steady acceptances, far under
    // the hold, measure it (76 % of 6 s went to 59 %). Every send is
    // answered at once.
    for (rate, burst, flood, secs, most_refused) in [(3.0, 50, 60, 3, 0.8), (2.0, 10, 20, 6, 0.68)] {
        let gcra = testkit::model::Gcra::new(rate, burst, testkit::RetryAfter::Absent, Instant::now());
        let until = Duration::from_secs(secs);
        let (pace, refused) = paced_into(gcra, flood, until, until - ms(50));
        assert!((0.9 * rate..=1.1 * rate).contains(&pace), "{rate}/s: {pace}/s");
        assert!(refused < most_refused, "{rate}/s: {refused} of the sends refused");
    }
}
