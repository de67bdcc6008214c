//! Tests of the rate controller, replayed on tokio's paused clock, by
//! the file of the rules they test; the helpers here send and answer.

use std::time::Duration;

use tokio::time::Instant;

use crate::layer::adaptive::rate::{Basis, RateControl};

/// nginx's GCRA as these tests send to it: `rate` per second and
/// `burst` requests of excess allowed, its burst full at the start.
pub(super) struct Gcra {
    rate: f64,
    burst: f64,
    excess: f64,
    last: Instant,
}

impl Gcra {
    pub(super) fn new(rate: f64, burst: f64, start: Instant) -> Self {
        Self {
            rate,
            burst,
            excess: 0.0,
            last: start,
        }
    }

    /// Whether a request arriving at `now` is accepted.
    pub(super) fn accepts(&mut self, now: Instant) -> bool {
        let drained = self.rate * now.saturating_duration_since(self.last).as_secs_f64();
        let excess = (self.excess - drained).max(0.0) + 1.0;
        if excess > self.burst + 1.0 {
            return false;
        }
        (self.excess, self.last) = (excess, now);
        true
    }
}

/// Sends from `start` at the controller's own pace (at `flood` per
/// second while it has none) to a GCRA of `rate` and `burst`, full at
/// the start, until it refuses one with `Retry-After`.
pub(super) fn gcra_cycle(c: &mut RateControl, start: Instant, rate: f64, burst: f64, flood: f64) -> Instant {
    let (mut now, mut gcra) = (start, Gcra::new(rate, burst, start));
    loop {
        c.bound_at = Some(now);
        let pace = c.rate(now).unwrap_or(flood);
        c.on_send(now);
        if !gcra.accepts(now) {
            c.on_loss(now + Duration::from_millis(1), now, Some(Duration::from_secs(1)));
            return now + Duration::from_millis(1);
        }
        c.on_accepted(now + Duration::from_millis(1), now);
        now += Duration::from_secs_f64(1.0 / pace);
    }
}

/// A host measured at `estimate`, paced at `pace`, from `t0`.
pub(super) fn measured(t0: Instant, estimate: f64, pace: f64) -> RateControl {
    let mut c = RateControl::new(1.0, t0);
    c.basis = Basis::Measured;
    c.estimate = estimate;
    c.pace = pace;
    c
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` requests sent `gap` apart after `from`, each accepted at once;
/// returns the last one's time.
pub(super) fn accept_every(c: &mut RateControl, from: Instant, n: u32, gap: Duration) -> Instant {
    let mut t = from;
    for _ in 0..n {
        t += gap;
        c.on_accepted(t, t);
    }
    t
}

mod announced;
mod ban;
mod cycles;
mod fleet;
mod fleet_cycles;
mod loss;
mod probes;
mod slow;
mod trickle;
mod window;
