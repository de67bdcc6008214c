//! Cycles between `Retry-After` pauses and their fits.

use std::time::Duration;

use tokio::time::Instant;

use super::{gcra_cycle, ms};
use crate::layer::adaptive::rate::probe::PROBE_HOLDS;
use crate::layer::adaptive::rate::{Basis, RateControl, PROBE_GROWTH};

/// Sends at `pace(t)` per second from `start` until `until`, then
/// three requests at once, the last refused with `Retry-After`: a
/// one-request burst refusing requests that the network bunched.
fn bunched_cycle(c: &mut RateControl, start: Instant, until: f64, pace: impl Fn(f64) -> f64) -> Instant {
    let mut t = 0.0;
    while t < until {
        c.on_send(start + Duration::from_secs_f64(t));
        t += 1.0 / pace(t);
    }
    let end = start + Duration::from_secs_f64(t);
    for _ in 0..3 {
        c.on_send(end);
    }
    c.on_loss(end, end, Some(Duration::from_secs(1)));
    end
}

/// 20/s with a burst of one and `Retry-After: 1`: a flood and a search
/// of a few sends each, which allow rates some 10 % either side of
/// 20/s. Returns when the pause after them ends.
fn wide_fit(c: &mut RateControl, t0: Instant) -> Instant {
    let end = gcra_cycle(c, t0, 20.0, 1.0, 60.0);
    let end = gcra_cycle(c, end + Duration::from_secs(1), 20.0, 1.0, 60.0);
    end + Duration::from_secs(1)
}

#[tokio::test(start_paused = true)]
async fn a_wide_fit_is_probed_at_its_top_and_three_cycles_narrow_it() {
    // The hold sits at the middle of the rates two cycles allow, over
    // the rate or under it; a third cycle sent at once at their top
    // narrows them.
    let (r, burst) = (20.0, 1.0);
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    let resumed = wide_fit(&mut c, t0);
    let (two, basis) = c.estimate();
    assert_eq!(basis, Basis::Measured, "two cycles fit");
    c.bound_at = Some(resumed);
    let probe = c.rate(resumed).expect("a pace");
    assert!(
        probe > 1.04 * two,
        "the wide fit {two}/s is probed at its top at once, not at {probe}/s"
    );
    gcra_cycle(&mut c, resumed, r, burst, 3.0 * r);
    let (three, _) = c.estimate();
    assert!(
        (three - r).abs() <= 0.02 * r && (three - r).abs() < (two - r).abs(),
        "three cycles fit {three}/s (two fitted {two}/s)"
    );
    assert!(
        c.rate(resumed + Duration::from_secs(2)).is_some_and(|p| p < r),
        "the hold after the third cycle is under the rate"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wide_fits_top_that_holds_starts_no_chain() {
    // The probe at a wide fit's top held: nothing above it fits, so
    // the next probe waits instead of going twice as far at once.
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    let resumed = wide_fit(&mut c, t0);
    c.bound_at = Some(resumed);
    let probe = c.rate(resumed).expect("a pace");
    assert!(c.probing && c.top_probe, "the top is probed at once: {probe}/s");
    let t = resumed + PROBE_HOLDS + ms(10);
    c.bound_at = Some(t);
    let held = c.rate(t).expect("a pace");
    assert!((held - probe).abs() < 1e-6, "the probe held: {held}");
    assert!(!c.chained && c.probe_after > t, "no chain after the top");
    assert_eq!(c.probe_step, PROBE_GROWTH);
}

#[tokio::test(start_paused = true)]
async fn no_fit_goes_below_what_the_host_accepted_since_its_last_refusal() {
    // Against a GCRA of 2 000/s with a burst of 1, a search from 2/s
    // and then a cycle paced at 1 500/s both end in a refusal of
    // requests bunched on the way: neither cycle went over the rate, so
    // their shapes fit nothing real (300/s). The second cycle alone
    // shows 750 sends accepted within 1.5 s of the first refusal: at
    // least 500/s.
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    let end = bunched_cycle(&mut c, t0, 3.2, |t| (2.0 * 1.25f64.powf(t / 0.1)).min(1500.0));
    let first = c.logs.previous.last().cloned().expect("a cycle");
    let start = end + Duration::from_secs(1);
    let end = bunched_cycle(&mut c, start, 0.5, |_| 1500.0);
    let floor = 750.0
        / end
            .saturating_duration_since(start - Duration::from_secs(1))
            .as_secs_f64();
    let second = c.logs.previous.last().cloned().expect("a cycle");
    if let Some(r) = crate::layer::adaptive::fit::fit(&first, &second) {
        assert!(r < floor, "the cycles alone fit {r}/s: this test tests nothing");
    }
    let (estimate, _) = c.estimate();
    assert!(
        estimate >= 0.99 * floor,
        "{estimate}/s, below the {floor}/s the host accepted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_guess_is_searched_upward_too() {
    // A guess of 2/s: the leader asks for a slot every 500 ms, and the
    // search must still see its pace bind.
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    c.seed(t0, 2.0, false);
    let mut t = t0;
    for _ in 0..20 {
        // The leader asks at its slot, held back since the last one.
        let rate = c.rate(t).expect("paced");
        c.bound_at = Some(t);
        t += Duration::from_secs_f64(1.0 / rate);
    }
    let rate = c.rate(t).expect("paced");
    assert!(rate > 20.0, "still {rate}/s after {:?}", t - t0);
}

#[tokio::test(start_paused = true)]
async fn short_cycles_at_a_high_hold_step_halfway_to_what_was_accepted() {
    // Held at 4× a one-second bucket of 100/s that answers `Retry-After:
    // 1`: each pause refills the bucket, so every cycle at one pace has
    // one shape, and cuts of 2, 4, 8, 15 % took five pauses to reach
    // the rate. From the second short cycle the estimate steps
    // halfway (in ratio) to what the host accepted since its last
    // refusal, which is never above its rate.
    use testkit::model::TokenBucket;
    use testkit::{Limiter, RetryAfter};
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    c.force_rate(t0, 400.0);
    let mut bucket = TokenBucket::new(100.0, 100.0, RetryAfter::Static(1), t0);
    let (mut t, mut pauses) = (t0, 0);
    while c.estimate().0 > 110.0 && pauses < 10 {
        let pace = c.rate(t).expect("paced");
        t += Duration::from_secs_f64(1.0 / pace);
        c.on_send(t);
        if bucket.arrive(t).served() {
            c.on_accepted(t, t);
        } else {
            c.on_loss(t, t, Some(Duration::from_secs(1)));
            pauses += 1;
            t += Duration::from_secs(1);
        }
    }
    let (estimate, _) = c.estimate();
    assert!(pauses <= 3, "{pauses} pauses to reach {estimate:.1}/s");
    assert!(
        estimate >= 95.0,
        "never below what the host allows: {estimate:.1}/s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fit_at_a_burst_the_opening_flood_rules_out_is_not_taken() {
    use crate::layer::adaptive::fleet_fit::tests::gcra_cycle_log;
    // A search, then a pace held past the rate, at 500/s with a burst of
    // 50: their curves also cross far below the rate, at a burst some
    // three times as large, which the opening flood (refused after 51
    // sends in a few milliseconds) rules out.
    let (flood, _) = gcra_cycle_log(500.0, 50.0, |_| 20_000.0);
    let (ramp, _) = gcra_cycle_log(500.0, 50.0, |t| 50.0 * 1.25f64.powf(t / 0.1));
    let (held, held_len) = gcra_cycle_log(500.0, 50.0, |_| 625.0);
    let fit = |with_flood: bool| {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.logs.flood = with_flood.then(|| flood.clone());
        c.logs.previous = vec![ramp.clone()];
        c.basis = Basis::Measured;
        c.estimate = 600.0;
        c.pace = 600.0;
        let start = t0 + Duration::from_secs(5);
        let first = held[0];
        c.cycle = Some((start, held.iter().map(|&t| t - first).collect()));
        let sent_at = start + Duration::from_secs_f64(held_len);
        c.on_loss(sent_at + ms(1), sent_at, Some(Duration::from_secs(1)));
        c.estimate().0
    };
    let bounded = fit(true);
    assert!((bounded - 500.0).abs() < 10.0, "fitted {bounded}/s");
    let unbounded = fit(false);
    assert!(unbounded < 350.0, "without the flood, {unbounded}/s");
}

#[tokio::test(start_paused = true)]
async fn a_floods_sends_refused_with_the_one_that_paused_leave_its_cycle_once_answered() {
    // A GCRA with a burst of five takes six of a flood of nine sent in
    // one millisecond. The refusal that pauses comes back first, and
    // three acceptances after it. Kept as sent, the flood's cycle said
    // the limiter took eight together: fitted with a search after the
    // pause, a GCRA of 20/s read 14/s (`JITTER_MS=1` in the model table).
    let t0 = Instant::now();
    let mut c = RateControl::new(0.5, t0);
    c.on_send(t0);
    c.on_send(t0);
    for _ in 0..7 {
        c.on_send(t0 + Duration::from_micros(800));
    }
    for _ in 0..3 {
        c.on_accepted(t0 + ms(2), t0);
    }
    c.on_loss(
        t0 + ms(2),
        t0 + Duration::from_micros(800),
        Some(Duration::from_secs(1)),
    );
    for _ in 0..3 {
        c.on_accepted(t0 + ms(3), t0 + Duration::from_micros(800));
    }
    for _ in 0..2 {
        c.on_loss(
            t0 + ms(3),
            t0 + Duration::from_micros(800),
            Some(Duration::from_secs(1)),
        );
    }
    let kept = |c: &RateControl| {
        (
            c.logs.previous.last().map(Vec::len),
            c.logs.flood.as_ref().map(Vec::len),
        )
    };
    assert_eq!(kept(&c), (Some(9), Some(9)), "answers still to come");
    // The pause ends: every answer is in, and six were taken.
    c.on_send(t0 + Duration::from_secs(1));
    assert_eq!(kept(&c), (Some(7), Some(7)), "six taken, and the refused one");
}

/// A cycle of `n` sends `1/pace` apart, the last at 0 (the refused one).
fn cycle_at(n: usize, pace: f64) -> Vec<f32> {
    (0..n).rev().map(|i| -(i as f64 / pace) as f32).collect()
}

#[test]
fn a_window_restored_whole_by_each_pause_is_read_as_its_quota_a_second() {
    use crate::layer::adaptive::rate::cycles::quota_per_pause;
    let second = Duration::from_secs(1);
    // A window of 500 a second: 500 taken and the next refused, by the
    // opening flood at 5 000/s and by cycles at 1 250/s and 700/s.
    let (flood, search, held) = (cycle_at(501, 5000.0), cycle_at(501, 1250.0), cycle_at(501, 700.0));
    assert_eq!(quota_per_pause(&flood, &flood, &search, second), Some(500.0));
    assert_eq!(quota_per_pause(&flood, &search, &held, second), Some(500.0));
    // A GCRA of 500/s with a burst of 50 refills while a cycle lasts: the
    // slower cycle takes more.
    let gcra_flood = cycle_at(52, 5000.0);
    assert_eq!(
        quota_per_pause(&gcra_flood, &gcra_flood, &cycle_at(170, 700.0), second),
        None
    );
    // Two cycles that the network's bunching ended after the same count,
    // where the flood took a burst of two: no quota.
    let (one, other) = (cycle_at(45, 480.0), cycle_at(45, 540.0));
    assert_eq!(quota_per_pause(&cycle_at(3, 5000.0), &one, &other, second), None);
    // One pace twice tells a quota from a rate by nothing.
    assert_eq!(
        quota_per_pause(&flood, &search, &cycle_at(501, 1260.0), second),
        None
    );
    // Nor does a longer pause, whose length follows the reset's phase.
    assert_eq!(quota_per_pause(&flood, &flood, &search, 2 * second), None);
    // A count a second over what both cycles were sent at is no quota.
    let slow = cycle_at(9, 4.0);
    assert_eq!(quota_per_pause(&slow, &slow, &cycle_at(9, 6.0), second), None);
}
