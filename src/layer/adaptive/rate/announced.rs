//! A rate the server announces outright (Spring Cloud Gateway's
//! `X-RateLimit-Replenish-Rate`, see
//! [`replenish_rate`](crate::retry_after::replenish_rate)): the most the
//! host allows, told before any refusal. The pace holds below it from the
//! first answer that names it, and no probe goes past it. Refusals still
//! teach a lower rate (other clients spend the same bucket), and probes
//! climb back to the announced one, no further. Searched for instead, a
//! bucket that Spring refills at each whole second was refused a tenth of
//! the requests it was sent and more: what it accepted in the opening,
//! its burst and a second's refill together, read as its rate.

use tokio::time::Instant;

use super::{Basis, RateControl};

impl RateControl {
    /// The host announced `rate` requests a second: the estimate goes to
    /// it unless one measured here is already at or under it. In a fleet,
    /// this process's share of it.
    pub(crate) fn on_announced_rate(&mut self, now: Instant, rate: f64) {
        if !(rate.is_finite() && rate > 0.0) {
            return;
        }
        let rate = (rate * self.fleet_share()).max(self.min_rate);
        self.quota.announced_rate = Some(rate);
        if self.basis == Basis::Measured && self.estimate <= rate {
            return;
        }
        self.estimate = rate;
        self.basis = Basis::Measured;
        self.probing = false;
        self.ceiling = None;
        self.settle(now);
    }

    /// The most the estimate may rise to: the announced rate, if any.
    pub(super) fn announced_cap(&self) -> f64 {
        self.quota.announced_rate.unwrap_or(f64::INFINITY)
    }

    /// Whether the estimate is at the announced rate: no probe goes past.
    pub(super) fn at_announced_rate(&self) -> bool {
        self.estimate >= 0.999 * self.announced_cap()
    }
}
