//! Windows that count refusals, shut: the trickle until one drains, what
//! its reopening reads, and refusals that are no reading of a drain or a
//! hold.

use std::time::Duration;

use tokio::time::Instant;

use super::window::{accepted_at_pace, full_at_100_then_refused};
use super::{accept_every, measured, ms};
use crate::layer::adaptive::rate::loss::DRAIN;
use crate::layer::adaptive::rate::RateControl;

#[tokio::test(start_paused = true)]
async fn refusals_with_nothing_accepted_trickle_until_the_window_drains_and_it_sets_the_pace() {
    // A window of 10 s at 20/s that counts refusals: 200 accepted in
    // the first second, then full; nothing is accepted at any pace over
    // its average until it drains.
    let t0 = Instant::now();
    let mut c = RateControl::new(0.5, t0);
    for i in 0..200 {
        let t = t0 + ms(5 * i);
        c.on_accepted(t, t);
    }
    // Held at 48/s from second 2 (after a second of nothing accepted,
    // nothing reads as a rate to step back to).
    c.force_rate(t0 + ms(2000), 48.0);
    // Refused at the pace until `until`; when the pace last changed.
    let refuse_until = |c: &mut RateControl, mut t: Instant, until: Instant| {
        let mut changed = None;
        while t < until {
            let rate = c.rate(t).expect("paced");
            t += Duration::from_secs_f64(1.0 / rate);
            c.on_loss(t, t, None);
            if c.rate(t) != Some(rate) {
                changed = Some(t);
            }
        }
        (t, changed)
    };
    let (t, cut_at) = refuse_until(&mut c, t0 + ms(2000), t0 + ms(3500));
    let cut_at = cut_at.expect("cut");
    assert!(cut_at >= t0 + ms(3000), "not before a second of refusals");
    let trickle = c.rate(t).expect("paced");
    assert!(
        (trickle - 1.5).abs() < 0.01,
        "a trickle, a thirty-second: {trickle}/s"
    );
    // The next cut waits for a second and eight refusals more (5.3 s
    // at this trickle), and halves.
    let (t, changed) = refuse_until(&mut c, t, cut_at + ms(4500));
    assert_eq!(
        changed.map(|c| c - cut_at),
        None,
        "no second cut before eight refusals"
    );
    let (t, _) = refuse_until(&mut c, t, cut_at + ms(6000));
    let halved = c.rate(t).expect("paced");
    assert!(
        (0.95..=1.0).contains(&halved),
        "halved, but not under a send a second this early in the cycle: {trickle} -> {halved}/s"
    );
    // Drained, about 10 s after the first send: the window's 200 over
    // the cycle is its rate, held.
    let (t, _) = refuse_until(&mut c, t, t0 + ms(10_000));
    c.on_accepted(t, t);
    let held = c.rate(t).expect("paced");
    assert!(
        (17.0..=20.0).contains(&held),
        "the cycle's rate, held: {held}/s (the trickle was {halved}/s)"
    );
    // Probed as after any cut (400 answers at the held rate, 30 s at
    // the least), not after 400 answers at the trickle's rate.
    let wait = c.probe_after.saturating_duration_since(t);
    assert!(wait <= Duration::from_secs(31), "next probe in {wait:?}");
}

#[tokio::test(start_paused = true)]
async fn a_trickle_that_read_the_window_long_probes_toward_the_window_its_last_refusal_reads() {
    // A window of a second at 20/s that counts refusals (HAProxy's
    // counter): 20 accepted in the first 100 ms, then refused on, the
    // trickle's last refusal within the second after that window, the
    // acceptance that ends it only past two seconds: the cycle reads a
    // window of 2 s, 10/s. The window reopened somewhere between the two.
    let t0 = Instant::now();
    let mut c = RateControl::new(0.5, t0);
    let mut t = accept_every(&mut c, t0, 20, ms(5)) + ms(5);
    c.on_send(t);
    c.on_loss(t, t, None);
    let mut last_refused = t;
    while t < t0 + ms(1900) {
        let rate = c.rate(t).expect("paced");
        let next = t + Duration::from_secs_f64(1.0 / rate);
        if next >= t0 + ms(1900) {
            break;
        }
        t = next;
        c.on_send(t);
        c.on_loss(t, t, None);
        last_refused = t;
    }
    let trickle = c.rate(t).expect("paced");
    assert!(trickle <= 1.0, "starved to a trickle: {trickle}/s");
    assert!(last_refused < t0 + ms(2000), "{:?}", last_refused - t0);
    let t = t0 + ms(2600);
    c.on_send(t);
    c.on_accepted(t, t);
    let held = c.rate(t).expect("paced");
    assert!(
        (9.0..=10.0).contains(&held),
        "the cycle's 20 over 2 s, held: {held}/s"
    );
    // Accepted at the pace: the probes climb toward the 20/s a window of
    // a second gives, each a quarter at most, each held a while.
    let climbed = accepted_at_pace(&mut c, t, t0 + Duration::from_secs(40));
    assert!(
        climbed >= 17.0,
        "toward the window of a second: {held} -> {climbed}/s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cycle_refused_as_often_as_accepted_reads_a_window_as_haproxy_weighs_it() {
    // HAProxy's `http_req_rate(10s)` at 20/s under a closed loop: 200
    // accepted in the first second, 200 refused in the next (each
    // counted), then the trickle. The previous period weighs into the
    // next by the share of it still to run: 400 counted fall under 200
    // half a period in, and the cycle reads 15 s.
    let t0 = Instant::now();
    let mut c = RateControl::new(0.5, t0);
    let mut t = accept_every(&mut c, t0, 200, ms(5));
    for _ in 0..200 {
        t += ms(5);
        c.on_send(t);
        c.on_loss(t, t, None);
    }
    while t < t0 + ms(14_500) {
        let rate = c.rate(t).expect("paced");
        t += Duration::from_secs_f64(1.0 / rate).min(t0 + ms(14_500) - t + ms(1));
        c.on_send(t);
        c.on_loss(t, t, None);
    }
    let t = t0 + ms(15_000);
    c.on_send(t);
    c.on_accepted(t, t);
    let held = c.rate(t).expect("paced");
    assert!(held < 14.0, "the cycle's 200 over 15 s, held: {held}/s");
    // Accepted at the pace: probes climb toward 200 over 10 s.
    let climbed = accepted_at_pace(&mut c, t, t0 + Duration::from_secs(90));
    assert!(climbed >= 17.0, "toward a window of 10 s: {held} -> {climbed}/s");
}

#[tokio::test(start_paused = true)]
async fn a_log_of_a_minute_trickled_into_past_its_length_is_read_from_what_it_held() {
    // 30 a minute, in a log that counts every request: a flood of sixty
    // (thirty taken), then the pace and its trickle, answered at once.
    // The trickle's refusals hold the log shut well past a minute, so the
    // cycle alone reads 30 over some 75 s.
    use testkit::model::SlidingWindow;
    use testkit::Limiter;
    let t0 = Instant::now();
    let mut c = RateControl::new(0.01, t0);
    let mut log = SlidingWindow::new(30, Duration::from_secs(60));
    let (mut t, mut reopened) = (t0, None);
    while t < t0 + Duration::from_secs(150) {
        c.bound_at = Some(t);
        c.on_send(t);
        if log.arrive(t).served() {
            c.on_accepted(t, t);
            if t > t0 + Duration::from_secs(1) {
                reopened.get_or_insert(t);
            }
        } else {
            c.on_loss(t, t, None);
        }
        t += c.rate(t).map_or(ms(1), |r| Duration::from_secs_f64(1.0 / r));
    }
    let reopened = reopened.expect("the log reopened") - t0;
    assert!(reopened > Duration::from_secs(70), "reopened at {reopened:?}");
    let pace = c.rate(t).expect("paced");
    assert!(
        (0.45..=0.5).contains(&pace),
        "held near 30 over 60 s, not over the cycle: {pace}/s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_a_drain_the_host_took_whole_is_no_reading_of_the_drain() {
    // A window of 100/s that counts refusals, filled and drained: the
    // host takes every send of the drain, then refuses once at the hold
    // (its count still holds what the fill sent). What it accepted since
    // the cut is what the drain sent, not its rate.
    let (mut c, t0) = full_at_100_then_refused(Instant::now());
    // The fill's last sends, refused as they come back: the drain.
    let mut t = t0;
    for i in 1..=20 {
        t = t0 + ms(100 + 10 * i);
        c.on_loss(t, t0 + ms(5 * i), None);
    }
    assert!(c.rate(t).expect("paced") <= 51.0, "draining");
    let until = t + DRAIN + ms(200);
    while t < until {
        c.bound_at = Some(t);
        t += Duration::from_secs_f64(1.0 / c.rate(t).expect("paced"));
        c.on_send(t);
        c.on_accepted(t, t);
    }
    c.on_loss(t, t, None);
    let (estimate, _) = c.estimate();
    assert!(
        estimate >= 90.0,
        "stepped back from the estimate, not cut to the drain: {estimate}"
    );
}

#[tokio::test(start_paused = true)]
async fn refusals_half_a_minute_into_a_settled_hold_are_no_count_of_a_rate() {
    // A window of a second that counts refusals, held at 30/s for half a
    // minute without a loss, then refusing every other send for 0.6 s (a
    // probe that seemed to hold put the pace at its rate): nine
    // acceptances in that stretch are no rate (15/s); a small step back.
    let t0 = Instant::now();
    let mut c = measured(t0, 30.9, 30.0);
    c.counting_window = true;
    let mut t = t0 + Duration::from_secs(30);
    let pace = accepted_at_pace(&mut c, t0, t);
    assert!(pace >= 29.0, "held at {pace:.1}/s");
    for i in 0..18 {
        t += ms(33);
        if i % 2 == 0 {
            c.on_loss(t, t, None);
        } else {
            c.on_send(t);
            c.on_accepted(t, t);
        }
    }
    let (estimate, _) = c.estimate();
    assert!(estimate >= 28.0, "stepped back to {estimate:.1}/s");
}
