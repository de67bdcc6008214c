//! What the slots a limiter names (exact waits, see
//! `adaptive/named_slots.rs`) teach the pace: where a search starts, and
//! the rate two of them measure.

use std::time::Duration;

use tokio::time::Instant;

use super::{Basis, RateControl, PROBE_WAIT_CHEAP};

impl RateControl {
    /// A refusal named the limiter's next slot `wait` away while the rate
    /// is a guess or unknown, from a host whose served requests come back
    /// within half that wait: a bucket or a GCRA just emptied names its
    /// next token about an interval away, so the search starts from
    /// `1 / wait` if that is higher. What such a host accepted before its
    /// first refusals is no lower bound worth starting from: Traefik's
    /// 100/s with a burst of one accepted one request of the opening's
    /// four, and a search from 1/s took two seconds to reach it. Not for a
    /// host farther than that: its sends in the opening are those of a
    /// concurrency limit still growing, and a pace set above them read
    /// them as the rate (500/s 50 ms away was held at 173/s and probed
    /// back over 40 s).
    pub(crate) fn guess_from_named_wait(&mut self, now: Instant, wait: Duration) {
        let near = !self.served_rtt.is_zero() && self.served_rtt * 2 <= wait;
        if !near || self.basis == Basis::Measured || self.quota.active(now) {
            return;
        }
        let rate = 1.0 / wait.as_secs_f64();
        if self.basis == Basis::Guess && self.estimate >= rate {
            return;
        }
        self.estimate = rate.max(self.min_rate);
        self.basis = Basis::Guess;
        self.settle(now);
    }

    /// Refusals named the limiter's next slots exactly, and `rate` is what
    /// it accepted between two of them over the time between (see
    /// `named_slots.rs`): its rate, measured, and held below. The first
    /// such measurement is probed again within seconds, not after the
    /// usual 400 answers: such a refusal costs one interval's wait, and
    /// the count is a lower bound (what the bucket refilled while the
    /// client was slower than it is not counted). Later ones keep the
    /// probes' usual spacing: each refused probe names two slots and
    /// measures again, and probes 4 s apart refused 1.3 % of 3/s. Not
    /// while a quota sets the pace.
    pub(crate) fn measured_by_named_slots(&mut self, now: Instant, rate: f64) {
        if !(rate.is_finite() && rate > 0.0) || self.quota.active(now) {
            return;
        }
        let first = self.basis != Basis::Measured;
        self.estimate = rate.max(self.min_rate);
        self.basis = Basis::Measured;
        self.probing = false;
        self.settle(now);
        if first {
            self.probe_wait = PROBE_WAIT_CHEAP;
            self.probe_after = now + PROBE_WAIT_CHEAP;
        }
    }
}
