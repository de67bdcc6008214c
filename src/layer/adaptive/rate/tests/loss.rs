//! Refusals without `Retry-After`: holds stepped back, searches frozen
//! and read again.

use std::time::Duration;

use tokio::time::Instant;

use super::{accept_every, measured, ms, Gcra};
use crate::layer::adaptive::fit::SEARCH_STEP;
use crate::layer::adaptive::rate::{Basis, RateControl, HOLD};
use crate::retry_after::QuotaWindow;

/// Held at `estimate`, cut at `t0`.
fn held(t0: Instant, estimate: f64) -> RateControl {
    let mut c = measured(t0, estimate, estimate * HOLD);
    c.cut_at = t0;
    c.restart_count(t0);
    c.probe_after = t0 + Duration::from_secs(60);
    c
}

/// Sends `gap` apart after `from`, each bound by the pace and answered a
/// millisecond later: accepted or refused (without `Retry-After`) in
/// the order `answers` gives.
fn answer_in_turn(c: &mut RateControl, from: Instant, gap: Duration, answers: &[bool]) {
    let mut t = from;
    for &accepted in answers {
        t += gap;
        c.bound_at = Some(t);
        if accepted {
            c.on_accepted(t + ms(1), t);
        } else {
            c.on_loss(t + ms(1), t, None);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_hold_refused_steps_back() {
    // Held at 5.4/s over a one-request burst at 5/s: a refusal every
    // three seconds, none within the second of another, and no second
    // holds eight answers to measure: it never stepped back.
    let t0 = Instant::now();
    let mut c = held(t0, 5.5);
    let t = accept_every(&mut c, t0, 12, Duration::from_secs_f64(1.0 / 5.39));
    c.bound_at = Some(t);
    c.on_loss(t + ms(1), t, None);
    let (estimate, _) = c.estimate();
    assert!(estimate < 5.5 * HOLD + 0.01, "still {estimate}");
}

#[tokio::test(start_paused = true)]
async fn a_hold_refused_as_often_as_accepted_steps_back_before_eight_acceptances() {
    // Held at 10/s where a host takes 5/s: half the sends refused, as
    // a burst's tolerance lets them through (no clean gaps). Eight
    // acceptances took 1.6 s of such refusals; a few and as many
    // refused are enough to read what it accepts.
    let t0 = Instant::now();
    let mut c = held(t0, 10.2);
    answer_in_turn(&mut c, t0, ms(100), &[true, false, false, true].repeat(3));
    let (estimate, _) = c.estimate();
    assert!(estimate < 6.0, "after 1.2 s still {estimate}");
}

#[tokio::test(start_paused = true)]
async fn a_hold_twice_the_rate_accepted_steadily_comes_down_to_it_at_once() {
    // Held at 204/s where a GCRA takes 100/s: it accepts every other
    // send, one every 10 ms, and refuses the rest. Stepped back 2 % a
    // cut, every eight acceptances, the hold came down over 3 s with
    // every other request refused; the steady acceptances measure it.
    let t0 = Instant::now();
    let mut c = held(t0, 204.0);
    answer_in_turn(&mut c, t0, ms(5), &[true, false].repeat(12));
    let (estimate, _) = c.estimate();
    assert!((95.0..=110.0).contains(&estimate), "after 120 ms {estimate}");
}

#[tokio::test(start_paused = true)]
async fn a_hold_five_times_a_slow_rate_comes_down_at_its_second_acceptance() {
    // Held at 0.5/s where nginx takes 6 a minute: one send in five
    // accepted, ten seconds apart. Four acceptances took 40 s of such
    // refusals; the interval between two measures the rate.
    let t0 = Instant::now();
    let mut c = held(t0, 0.5 / HOLD);
    c.min_rate = 0.01;
    let one_in_five = [true, false, false, false, false];
    answer_in_turn(
        &mut c,
        t0,
        ms(2_000),
        &[&one_in_five[..], &[true, false, false]].concat(),
    );
    let (estimate, _) = c.estimate();
    assert!((0.08..=0.11).contains(&estimate), "after 16 s still {estimate}");
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_an_epoch_reset_read_early_undoes_the_lateness() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let said = |remaining, lo: u64, hi: u64| QuotaWindow {
        remaining,
        reset_lo: Duration::from_millis(lo),
        reset_hi: Duration::from_millis(hi),
        epoch: true,
    };
    let mut c = RateControl::new(1.0, t0);
    // A window the headers put at (4 s, 5.6 s] resets at 5 s: later
    // windows are read 550 ms early (590 ms less two 20 ms spacings).
    c.on_quota(t0, t0, &said(10, 4000, 5600), 0);
    c.on_quota(at(4990), at(4989), &said(1, 0, 610), 0);
    c.on_quota(at(5010), at(5009), &said(99, 3590, 5590), 0);
    c.on_quota(at(9000), at(8999), &said(0, 0, 1600), 0);
    assert_eq!(c.not_before(at(10_000)), Some(at(10_050)));
    // Refused at 10.1 s, with `Retry-After`: the reset was read too
    // early. The quota waits for its headers' reset again; the refusal
    // is no cycle of a limiter that pauses.
    c.on_loss(at(10_100), at(10_099), Some(Duration::from_secs(1)));
    assert_eq!(c.not_before(at(10_100)), Some(at(10_600)));
    assert_eq!(c.estimate().1, Basis::None, "no rate learned from it");
}

#[tokio::test(start_paused = true)]
async fn a_search_stops_growing_at_refusals_in_its_first_second_too() {
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    // 50 accepted in 200 ms, then a refusal: a guess to search from.
    let mut t = accept_every(&mut c, t0, 50, ms(4));
    c.on_loss(t, t, None);
    // The search grows while the pace binds, then meets refusals.
    for _ in 0..3 {
        t += SEARCH_STEP;
        c.bound_at = Some(t);
        c.rate(t);
    }
    let past = c.rate(t).expect("paced");
    assert!(past > 50.0, "the search grew: {past}");
    c.on_loss(t + ms(1), t, None);
    // Half a second later, binding throughout: it did not grow on.
    for _ in 0..5 {
        t += SEARCH_STEP;
        c.bound_at = Some(t);
    }
    let held = c.rate(t).expect("paced");
    assert!(
        held <= past * 1.001,
        "grew from {past} to {held}/s past its refusals"
    );
}

/// Sends one request at a time, at the controller's pace, to a GCRA of
/// `rate` per second whose burst of `burst` is full at `from`, answered
/// after a millisecond, until `until`; returns (accepted, refused).
fn one_at_a_time(c: &mut RateControl, from: Instant, until: Instant, rate: f64, burst: f64) -> (u32, u32) {
    let (mut now, mut gcra) = (from, Gcra::new(rate, burst, from));
    let (mut accepted, mut refused) = (0, 0);
    while now < until {
        c.bound_at = Some(now);
        let pace = c.rate(now).unwrap_or(1000.0);
        c.on_send(now);
        if gcra.accepts(now) {
            c.on_accepted(now + ms(1), now);
            accepted += 1;
        } else {
            c.on_loss(now + ms(1), now, None);
            refused += 1;
        }
        now += Duration::from_secs_f64(1.0 / pace).max(ms(1));
    }
    (accepted, refused)
}

#[tokio::test(start_paused = true)]
async fn a_search_past_a_burst_is_measured_by_its_steady_acceptances() {
    // A search from 12/s against nginx at 100/s with `burst=10`: the
    // burst hides the rate until the pace is near twice it, and there
    // the GCRA accepts one send per interval. Frozen for the 600 ms a
    // measurement had to wait, it refused 35 sends; the steady
    // acceptances measure the rate after eight of them.
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    let t = accept_every(&mut c, t0, 12, ms(1));
    c.on_loss(t, t, None);
    let (accepted, refused) = one_at_a_time(&mut c, t, t + Duration::from_secs(4), 100.0, 10.0);
    let (estimate, basis) = c.estimate();
    assert_eq!(basis, Basis::Measured);
    assert!((97.0..=103.0).contains(&estimate), "measured {estimate}/s");
    assert!(refused <= 15, "{refused} refused, {accepted} accepted");
}

#[tokio::test(start_paused = true)]
async fn a_search_frozen_past_a_limiter_without_a_burst_probes_toward_its_pace() {
    // nginx at 50/s without `burst=`, searched one request at a time:
    // past its rate it accepts every other send, half the pace, however
    // near the pace is to the rate. Read as the rate, 28/s, and probed
    // 3 % at a time, the host stayed under 35/s for ten seconds; the pace
    // it was refused at is a ceiling, probed halfway at a time.
    // Ten seconds of a search past nginx at 50/s without `burst=`.
    let searched = |in_fleet: bool| {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        if in_fleet {
            c.fleet_answers();
        }
        let t = accept_every(&mut c, t0, 12, ms(40));
        c.on_loss(t, t, None);
        let (accepted, refused) = one_at_a_time(&mut c, t, t + Duration::from_secs(10), 50.0, 0.0);
        (c.estimate(), accepted, refused)
    };
    let ((estimate, basis), accepted, refused) = searched(false);
    assert_eq!(basis, Basis::Measured);
    assert!(
        estimate >= 42.0,
        "after 10 s {estimate}/s ({accepted} accepted, {refused} refused)"
    );
    // In a fleet, even one left local, no such ceiling: every process's
    // probes toward it fill the host's one window.
    let ((estimate, _), _, _) = searched(true);
    assert!(estimate < 35.0, "in a fleet, after 10 s {estimate}/s");
}

/// A host 200 ms away accepts `n` requests sent over half a second;
/// the search from the first reading is refused, and the acceptances
/// sent in the round trip before come back after the refusal. Then,
/// every 100 ms for half a second, a refusal, and if `accepting` an
/// acceptance too (of what was sent a round trip before). Returns the
/// estimate after the search's refusal and at the end.
fn far_search(n: u32, accepting: bool) -> (f64, f64) {
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    let rtt = ms(200);
    let gap = ms(500) / n;
    let sent: Vec<Instant> = (1..=n).map(|i| t0 + gap * i).collect();
    let answered = sent
        .iter()
        .filter(|&&at| at + rtt <= sent[sent.len() - 1] + gap)
        .count();
    for &at in &sent[..answered] {
        c.on_accepted(at + rtt, at);
    }
    let first = sent[answered - 1] + rtt;
    c.on_loss(first, first, None);
    let mut t = first + SEARCH_STEP;
    c.bound_at = Some(t);
    c.rate(t);
    c.on_loss(t, t, None);
    let read = c.estimate().0;
    for &at in &sent[answered..] {
        c.on_accepted(at + rtt, at);
    }
    let cut = t;
    for _ in 0..5 {
        t += ms(100);
        c.on_loss(t, t, None);
        if accepting && t - rtt >= cut {
            c.on_accepted(t, t - rtt);
        }
    }
    (read, c.estimate().0)
}

#[tokio::test(start_paused = true)]
async fn a_far_searchs_second_is_read_again_once_its_acceptances_are_in() {
    // A window of 10 a second that counts refusals: full, it refuses
    // everything.
    let (read, again) = far_search(10, false);
    assert!(read < 9.0, "the first reading misses what was in flight: {read}");
    assert!(again >= 10.0, "read again: {again}");
}

#[tokio::test(start_paused = true)]
async fn a_far_searchs_second_is_not_read_again_at_the_limit() {
    // A GCRA of 10/s spent a burst of 10 in that second, and accepts
    // its rate since: the meter measures that, and the second before
    // the refusal is no rate.
    let (read, again) = far_search(20, true);
    assert!(again <= read, "{read} then {again}");
}

/// A search frozen at `pace` over an estimate of 109/s, its sends set
/// by a concurrency limit of 20 at 50 ms (400/s in waves), is refused
/// once after 1.5 s: the estimate then, and the highest pace of the
/// two seconds after.
fn frozen_search_refused_in_waves(pace: f64) -> (f64, f64) {
    let t0 = Instant::now();
    let mut c = measured(t0, 109.0, pace);
    let rtt = ms(50);
    let mut t = t0;
    for wave in 0..30 {
        t = t0 + rtt * wave;
        for _ in 0..20 {
            c.on_send(t);
            if wave > 0 {
                c.on_accepted(t, t - rtt);
            }
        }
    }
    // The pace held nothing back: the concurrency limit set the sends.
    c.on_loss(t, t - rtt, None);
    let held = c.estimate().0;
    let mut top: f64 = 0.0;
    for step in 1..=40 {
        let now = t + ms(50) * step;
        c.bound_at = Some(now);
        top = top.max(c.rate(now).unwrap_or(0.0));
    }
    (held, top)
}

#[tokio::test(start_paused = true)]
async fn a_frozen_search_its_waves_kept_under_its_pace_is_probed_toward_that_pace() {
    let (held, top) = frozen_search_refused_in_waves(689.0);
    assert!((390.0..=420.0).contains(&held), "what it accepted: {held}");
    assert!(top > 1.2 * held, "probed toward 689/s at once: {top}");
}

#[tokio::test(start_paused = true)]
async fn a_frozen_search_sent_at_its_pace_is_not_probed_at_once() {
    // The same sends under a pace of 450/s came at nine tenths of it:
    // the pace was in charge, and its refusal a limit.
    let (held, top) = frozen_search_refused_in_waves(450.0);
    assert!((390.0..=420.0).contains(&held), "what it accepted: {held}");
    assert!(top <= held, "held at the estimate: {top}");
}

#[tokio::test(start_paused = true)]
async fn gaps_of_microseconds_are_no_rate_far_over_what_was_accepted() {
    // nginx counts whole milliseconds: at 2 000/s with a burst of one it
    // accepts two sends a few microseconds apart in a millisecond, and
    // refuses the third. Read as a limiter without a burst, those gaps
    // say 143 000/s; the host accepted 2 000/s.
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    c.force_rate(t0, 2000.0);
    let mut t = t0;
    for _ in 0..1000 {
        t += Duration::from_millis(1);
        let (second, third) = (t + Duration::from_micros(7), t + Duration::from_micros(10));
        for at in [t, second] {
            c.on_send(at);
            c.on_accepted(at, at);
        }
        c.on_send(third);
        c.on_loss(third, third, None);
    }
    let (estimate, _) = c.estimate();
    assert!(estimate < 8000.0, "estimate {estimate}");
}

#[tokio::test(start_paused = true)]
async fn refusals_ignored_as_not_following_the_pace_count_again_once_nearly_all_are_refused() {
    // Unpaced while refusals were read as ignoring the pace, then refused
    // nine in ten: going on unpaced sends as fast as refusals come back.
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    c.cut_at = t0;
    c.restart_count(t0);
    c.noise.indifferent_until = Some(t0 + Duration::from_secs(10));
    let mostly_refused: Vec<bool> = (0..200).map(|i| i % 20 == 0).collect();
    answer_in_turn(&mut c, t0, ms(2), &mostly_refused);
    let t = t0 + ms(410);
    assert!(c.rate(t).is_some(), "paced again");
    // Refusing a share it refused before, and accepting plenty: still
    // ignored, and unpaced.
    let mut c = RateControl::new(1.0, t0);
    c.cut_at = t0;
    c.restart_count(t0);
    c.noise.indifferent_until = Some(t0 + Duration::from_secs(10));
    let some_refused: Vec<bool> = (0..200).map(|i| i % 3 != 0).collect();
    answer_in_turn(&mut c, t0, ms(2), &some_refused);
    assert_eq!(c.rate(t), None);
}

/// A burst accepted a round trip after it was sent, then refusals that
/// come back at once: a closed loop of 64 against a bucket of three
/// refilled each second, 150 ms away, sent on without a pace and without
/// end, and no time passed. Eight refusals in a flood with nothing
/// accepted lately pace the host.
#[tokio::test(start_paused = true)]
async fn refusals_in_a_flood_after_a_spent_burst_pace_the_host() {
    let t0 = Instant::now();
    let mut c = RateControl::new(0.01, t0);
    for _ in 0..7 {
        c.on_send(t0);
    }
    for _ in 0..4 {
        c.on_loss(t0, t0, None);
    }
    let t1 = t0 + ms(150);
    for _ in 0..3 {
        c.on_accepted(t1, t0);
    }
    for _ in 0..8 {
        c.on_send(t1);
        c.on_loss(t1, t1, None);
    }
    assert!(c.rate(t1).is_some(), "refusals in a flood leave the host unpaced");
}
