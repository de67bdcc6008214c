//! A rate the server announces outright.

use std::time::Duration;

use tokio::time::Instant;

use super::ms;
use crate::layer::adaptive::rate::{Basis, RateControl, HOLD};

#[tokio::test(start_paused = true)]
async fn an_announced_rate_paces_the_host_and_no_probe_goes_past_it() {
    let t0 = Instant::now();
    let mut c = RateControl::new(0.01, t0);
    c.on_announced_rate(t0, 10.0);
    assert_eq!(c.estimate(), (10.0, Basis::Measured));
    // Ten minutes of acceptances with the pace binding: probes are due
    // every 400 answers, and none may go past the announced rate.
    let mut now = t0;
    while now < t0 + Duration::from_secs(600) {
        c.bound_at = Some(now);
        let pace = c.rate(now).expect("paced");
        assert!(pace <= 10.0 * HOLD * 1.0001, "{pace}/s at {:?}", now - t0);
        c.on_send(now);
        c.on_accepted(now + ms(1), now);
        c.on_announced_rate(now + ms(1), 10.0);
        now += Duration::from_secs_f64(1.0 / pace);
    }
}

#[tokio::test(start_paused = true)]
async fn an_announced_rate_lowers_a_higher_estimate_and_caps_the_climb_back() {
    let t0 = Instant::now();
    let mut c = RateControl::new(0.01, t0);
    c.force_rate(t0, 20.0);
    c.on_announced_rate(t0, 10.0);
    assert_eq!(c.estimate(), (10.0, Basis::Measured));
    // Refusals found a lower rate (others spend the bucket too): kept.
    c.force_rate(t0, 5.0 * HOLD);
    c.on_announced_rate(t0, 10.0);
    assert!((c.estimate().0 - 5.0).abs() < 1e-9);
    // Probes that hold climb back toward the announced rate, never past.
    c.probe_after = t0;
    let mut now = t0;
    while now < t0 + Duration::from_secs(1200) {
        c.bound_at = Some(now);
        let pace = c.rate(now).expect("paced");
        c.on_send(now);
        c.on_accepted(now + ms(1), now);
        assert!(c.estimate().0 <= 10.0, "{}/s at {:?}", c.estimate().0, now - t0);
        now += Duration::from_secs_f64(1.0 / pace);
    }
    let (estimate, _) = c.estimate();
    assert!(estimate > 5.0 && estimate <= 10.0, "{estimate}");
}
