//! Probes past a measured rate.

use std::time::Duration;

use tokio::time::Instant;

use super::{measured, ms};
use crate::layer::adaptive::rate::probe::PROBE_HOLDS;
use crate::layer::adaptive::rate::RateControl;

#[tokio::test(start_paused = true)]
async fn a_larger_probe_of_a_chain_holds_less_but_outlasts_a_burst() {
    let mut c = RateControl::new(1.0, Instant::now());
    assert_eq!(c.probe_holds(), PROBE_HOLDS, "an ordinary probe");
    c.pace = 0.5;
    assert_eq!(
        c.probe_holds(),
        Duration::from_secs(64),
        "an ordinary probe at a send every two seconds: 32 sends"
    );
    c.counting_window = true;
    assert_eq!(c.probe_holds(), PROBE_HOLDS, "a window that counts refusals");
    c.counting_window = false;
    c.pace = 100.0;
    assert_eq!(c.probe_holds(), PROBE_HOLDS);
    c.chained = true;
    let holds = |c: &mut RateControl, estimate: f64, step: f64| {
        c.estimate = estimate;
        c.probe_step = step;
        c.probe_holds().as_secs_f64()
    };
    // At 500/s: half as long for twice the step; a second at least.
    assert!((holds(&mut c, 500.0, 1.06) - 2.5).abs() < 0.01);
    assert!((holds(&mut c, 500.0, 2.0) - 1.0).abs() < 0.01);
    // At 20/s a burst of 50 hides a probe of 24 % for 10 s: the full
    // five seconds still.
    assert!((holds(&mut c, 20.0, 1.24) - 5.0).abs() < 0.01);
    assert!((holds(&mut c, 100.0, 1.48) - 1.04).abs() < 0.01);
}

#[tokio::test(start_paused = true)]
async fn a_frozen_search_that_nothing_refused_probes_from_what_it_was_accepted_at() {
    // Frozen at its first loss at 1 900/s over an estimate of 400/s,
    // and accepted at that pace ever since: the probe goes on from
    // there, not back to the estimate.
    let t0 = Instant::now();
    let mut c = measured(t0, 400.0, 1900.0);
    c.cut_at = t0;
    c.restart_count(t0);
    c.probe_after = t0 + Duration::from_secs(3);
    let mut now = t0;
    while now < t0 + Duration::from_millis(3500) {
        c.bound_at = Some(now);
        let pace = c.rate(now).unwrap_or(0.0);
        assert!(pace >= 1800.0, "{pace:.0}/s at {:?}", now - t0);
        c.on_send(now);
        c.on_accepted(now + ms(1), now);
        now += Duration::from_secs_f64(1.0 / pace);
    }
    assert!(c.probing, "the probe began");
    assert!(c.estimate > 1800.0, "estimate {:.0}", c.estimate);
}

#[tokio::test(start_paused = true)]
async fn probes_wait_ten_pauses_after_a_long_retry_after() {
    // A refused probe costs a pause as long as the last: after
    // `Retry-After: 60` the next probe waits ten minutes, not 30 s.
    for (pause, least, most) in [(1, 30, 60), (60, 600, 660)] {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.force_rate(t0, 98.0);
        let mut t = t0;
        for _ in 0..500 {
            t += ms(10);
            c.on_send(t);
            c.on_accepted(t, t);
        }
        c.on_send(t);
        c.on_loss(t, t, Some(Duration::from_secs(pause)));
        let wait = c.probe_after.duration_since(t).as_secs();
        assert!(
            (least..=most).contains(&wait),
            "Retry-After {pause}: probe in {wait} s"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_quota_accepted_in_a_moment_is_no_capacity_to_recover() {
    // A fixed window of 500 a second, refused with `Retry-After: 1`: each
    // pause refills it, and its 500 answers come back in 0.4 s at 1 350/s,
    // as many as a held pace's, in no time. The estimate sinks toward the
    // quota; recovery must not probe back toward 1 350/s, each probe a
    // refusal and a pause.
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    c.force_rate(t0, 1350.0);
    let mut t = t0;
    for _ in 0..8 {
        for _ in 0..500 {
            t += Duration::from_micros(740);
            c.on_send(t);
            c.on_accepted(t, t);
        }
        c.on_send(t);
        c.on_loss(t, t, Some(Duration::from_secs(1)));
        t += Duration::from_secs(1);
    }
    let (estimate, _) = c.estimate();
    assert!(estimate < 0.6 * 1350.0, "the estimate sank: {estimate}");
    assert!(!c.recovery.active(), "recovering from a rate never held");
}

#[tokio::test(start_paused = true)]
async fn a_reading_far_under_the_pace_it_refused_is_probed_while_young() {
    // At 10/s, with a handful of answers accepted: 400 answers (40 s)
    // between probes, but 100 (10 s) once a loss set the estimate far
    // under the pace it refused, until a probe is refused. A host that
    // accepted 400 or more is back at 400 either way, and so are a window
    // that counts refusals and a host in a fleet.
    let t0 = Instant::now();
    let mut c = measured(t0, 10.0, 0.0);
    let secs = |c: &RateControl| c.answers_between_probes().as_secs_f64();
    assert!((secs(&c) - 40.0).abs() < 0.01, "{}", secs(&c));
    c.pace = 43.0;
    c.settle(t0);
    assert!(c.refused_far_above);
    assert!((secs(&c) - 10.0).abs() < 0.01, "{}", secs(&c));
    c.counting_window = true;
    assert!((secs(&c) - 40.0).abs() < 0.01, "{}", secs(&c));
    c.counting_window = false;
    for i in 0..250 {
        let t = t0 + ms(i);
        c.on_send(t);
        c.on_accepted(t, t);
    }
    assert!((secs(&c) - 25.0).abs() < 0.01, "{}", secs(&c));
    c.probe_refused();
    assert!((secs(&c) - 40.0).abs() < 0.01, "{}", secs(&c));
    // A step back by a refusal just over the estimate sets nothing.
    c.pace = 10.0;
    c.settle(t0);
    assert!(!c.refused_far_above);
    // In a fleet, the usual spacing.
    let mut c = measured(t0, 10.0, 43.0);
    c.fleet_answers();
    c.settle(t0);
    assert!(c.refused_far_above);
    assert!((secs(&c) - 40.0).abs() < 0.01, "{}", secs(&c));
}
