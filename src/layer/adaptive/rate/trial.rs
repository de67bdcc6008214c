//! A trial of the pace for a host whose bare 403s may be a rate
//! limiter's (see `layer/forbidden_trial.rs`): held at half what it
//! accepted over the last second, and halved again, while the layer
//! counts the share of 403s in the answers; searched upward from there if
//! that share fell, given back as it was if not (forbidden pages).

use std::time::Duration;

use tokio::time::Instant;

use super::{Basis, RateControl};

impl RateControl {
    /// Paces the host at half what it accepted over the last second, as
    /// a measured estimate (no search grows it while the trial counts, and
    /// no probe comes soon): a rate limiter refuses nothing there. (At
    /// what it accepted, a GCRA of 10/s whose burst of ten was in that
    /// second refused 44 % there, against 56 % before, and was taken for
    /// forbidden pages.) A rate its refusals measured is tried too: the
    /// opening's run of 403s measured nginx at 3/s with `burst=50` at its
    /// burst, 51/s, and 95 % of the sends were refused there for good.
    /// `None` while the host has been sent to for less than a second (its
    /// count is no rate yet: a trial begun 40 ms in paced 100/s at 1/s) or
    /// while its pace trickles into a window that counts refusals (what
    /// it accepted is the trickle's). Returns whether it did: a host that
    /// accepted nothing is left as it is.
    pub(crate) fn start_trial(&mut self, now: Instant) -> Option<bool> {
        let second = Duration::from_secs(1);
        if now.saturating_duration_since(self.resumed_at) < second || self.starving {
            return None;
        }
        let (count, span) = self
            .meter
            .accepted_since(now, now.checked_sub(second).unwrap_or(now));
        if count == 0 {
            return Some(false);
        }
        self.on_trial = Some(Box::new((self.basis, self.estimate as f32, self.pace as f32)));
        self.estimate = (0.5 * f64::from(count) / span.as_secs_f64().max(1.0)).max(self.min_rate);
        self.basis = Basis::Measured;
        self.costly_probe();
        self.settle(now);
        self.probe_after = now + self.probe_wait;
        Some(true)
    }

    /// The 403s did not fall at the trial's pace: half of it, the next
    /// trial (a burst in the second read can put the first over the
    /// limiter's rate). Returns whether the trial goes on: not once a
    /// refusal made the pace its own.
    pub(crate) fn lower_trial(&mut self, now: Instant) -> bool {
        if self.on_trial.is_none() {
            return false;
        }
        self.estimate = (0.5 * self.estimate).max(self.min_rate);
        self.settle(now);
        true
    }

    /// The 403s fell at the trial's pace: a rate limiter's refusals, which
    /// count as such from now on. The trial's pace is a lower bound on
    /// its rate, searched upward from.
    pub(crate) fn confirm_trial(&mut self, now: Instant) {
        if self.on_trial.take().is_some() {
            self.basis = Basis::Guess;
            self.settle(now);
        }
    }

    /// The trial's 403s were forbidden pages: the pace as it was before
    /// (none, or the search's), unless a refusal made it its own
    /// meanwhile.
    pub(crate) fn end_trial(&mut self) {
        if let Some(before) = self.on_trial.take() {
            let (basis, estimate, pace) = *before;
            self.basis = basis;
            self.estimate = f64::from(estimate);
            self.pace = f64::from(pace);
        }
    }
}
