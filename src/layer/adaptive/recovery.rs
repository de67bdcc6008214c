//! Capacity that fell and may come back.
//!
//! A host that accepted a held pace for a while and then refused far below
//! it lost capacity: another client took a share of its limit, a backend
//! degraded, an operator lowered the rate for an incident. Such a drop is
//! often temporary. The ordinary probes (3 % over the hold after a quiet
//! spell of up to half a minute, each held 5 s) would need minutes to climb
//! back, so until the pace is back near the rate it held, probes come soon
//! and each doubles the pace, up to the rate held before the fall: 4 s
//! after the fall's last refusal, or ten times its `Retry-After` pause
//! (a refused probe costs a few refusals, or one pause), doubled after
//! every second refused probe. Six refused probes in a row mean the drop
//! is lasting: the ceiling is forgotten, and ordinary probing resumes.

use std::time::Duration;

/// Answers accepted without a loss, over [`ESTABLISHED_FOR`] at least,
/// before a held rate counts as the host's capacity (a guess a burst
/// inflated rarely lasts as long).
const ESTABLISHED: u8 = 200;
/// The answers alone are not enough: a fixed window refilled by each pause
/// (a quota of 500 a second, refused with `Retry-After: 1`) accepts its
/// whole quota at any pace. 500 answers in 0.4 s at 1 350/s were a held
/// rate, and recovery probes doubled back toward it, each refused, while
/// the hold sank to 66 % of the quota.
const ESTABLISHED_FOR: Duration = Duration::from_secs(5);
/// A fall to under this share of the held rate is a drop in capacity, not
/// the estimate settling.
const FALL: f64 = 2.0 / 3.0;
/// Back at this share of the ceiling: recovered.
const RECOVERED: f64 = 0.9;
/// The most a recovery probe multiplies the estimate by.
const MAX_STEP: f64 = 2.0;
/// Refused recovery probes before the ceiling is forgotten.
const ATTEMPTS: u8 = 6;
/// The first wait for a recovery probe, doubled by every second refused
/// one (4, 4, 8, 8, 16, 16 s: a dip is caught within about half its length,
/// at the cost of a refused probe every few seconds while it lasts).
const FIRST_WAIT: Duration = Duration::from_secs(4);
/// A probe after a `Retry-After` pause waits this many times as long as
/// the pause: a refused one costs at most a tenth of the time.
pub(crate) const PAUSES_APART: u32 = 10;
/// The longest wait between recovery probes.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// What a host held before its capacity fell (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// The estimate held through the latest established spell; 0 when
    /// none (`f32` keeps a host's controller under its 1 KiB bound).
    ceiling: f32,
    /// The estimate fell under [`FALL`] of the ceiling since: recovering.
    fallen: bool,
    /// Recovery probes refused since the fall.
    failed: u8,
    /// Answers accepted since the latest loss, up to [`ESTABLISHED`].
    quiet: u8,
}

impl Recovery {
    /// An answer accepted.
    pub(crate) fn on_accepted(&mut self) {
        self.quiet = self.quiet.saturating_add(1).min(ESTABLISHED);
    }

    /// A loss moved the estimate to `estimate`, from `held` if it was held
    /// (measured, not probing, under a limiter that does not count
    /// refusals), after `quiet_for` without a loss. The first loss after an
    /// established spell marks the rate held through it; a fall under
    /// [`FALL`] of that rate, in one step or over the losses that follow,
    /// is a fall in capacity. Returns whether this loss completed one.
    pub(crate) fn on_loss(&mut self, held: Option<f64>, quiet_for: Duration, estimate: f64) -> bool {
        let quiet = std::mem::take(&mut self.quiet);
        if self.fallen {
            return false;
        }
        let established = quiet >= ESTABLISHED && quiet_for >= ESTABLISHED_FOR;
        if let Some(was) = held.filter(|_| established) {
            self.ceiling = was as f32;
        }
        if self.ceiling > 0.0 && estimate < FALL * f64::from(self.ceiling) {
            self.fallen = true;
            self.failed = 0;
            return true;
        }
        false
    }

    /// A recovery probe was refused: the next waits twice as long, and
    /// after a few the drop is taken as lasting.
    pub(crate) fn on_probe_refused(&mut self) {
        self.failed = self.failed.saturating_add(1);
        if self.failed >= ATTEMPTS {
            self.forget();
        }
    }

    /// The growth of the next probe from `estimate`, while recovering;
    /// `None` once recovered (the ceiling is then forgotten).
    pub(crate) fn step(&mut self, estimate: f64) -> Option<f64> {
        let ceiling = f64::from(self.ceiling);
        if !self.fallen || estimate <= 0.0 {
            return None;
        }
        if estimate >= RECOVERED * ceiling {
            self.forget();
            return None;
        }
        Some((ceiling / estimate).min(MAX_STEP))
    }

    /// Whether a fall is being recovered from.
    pub(crate) fn active(&self) -> bool {
        self.fallen
    }

    /// Whether a rate was held through an established spell: a loss
    /// under it may be a fall in capacity, which this recovers from.
    pub(crate) fn held_a_rate(&self) -> bool {
        self.ceiling > 0.0
    }

    fn forget(&mut self) {
        self.fallen = false;
        self.ceiling = 0.0;
    }

    /// How long until the next recovery probe, after a loss that paused
    /// the host for `pause`, if any: a refused probe then costs a pause as
    /// long, so probes wait ten times that at least.
    pub(crate) fn wait(&self, pause: Option<Duration>) -> Duration {
        let first = pause.map_or(FIRST_WAIT, |p| FIRST_WAIT.max(p.saturating_mul(PAUSES_APART)));
        first
            .saturating_mul(1u32 << (self.failed / 2).min(6))
            .min(MAX_WAIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn established(r: &mut Recovery) {
        for _ in 0..ESTABLISHED {
            r.on_accepted();
        }
    }

    #[test]
    fn a_fall_after_a_held_rate_is_probed_back_in_doublings_to_it() {
        let mut r = Recovery::default();
        established(&mut r);
        assert!(r.on_loss(Some(500.0), ESTABLISHED_FOR, 100.0));
        assert_eq!(r.step(100.0), Some(2.0));
        assert_eq!(r.step(400.0), Some(1.25));
        assert_eq!(r.step(460.0), None, "within 10 % of the ceiling: recovered");
        assert!(!r.active());
    }

    #[test]
    fn settling_or_an_unestablished_rate_is_not_a_fall() {
        let mut r = Recovery::default();
        assert!(
            !r.on_loss(Some(500.0), ESTABLISHED_FOR, 100.0),
            "nothing held for long"
        );
        for _ in 0..ESTABLISHED - 1 {
            r.on_accepted();
        }
        assert!(
            !r.on_loss(Some(500.0), ESTABLISHED_FOR, 100.0),
            "held, but not long enough"
        );
        established(&mut r);
        assert!(
            !r.on_loss(None, ESTABLISHED_FOR, 100.0),
            "not held (probing, or a guess)"
        );
        established(&mut r);
        assert!(
            !r.on_loss(Some(500.0), ESTABLISHED_FOR, 400.0),
            "a fifth down: the estimate settling"
        );
        assert!(!r.active());
        let mut r = Recovery::default();
        established(&mut r);
        assert!(
            !r.on_loss(Some(500.0), ESTABLISHED_FOR / 10, 100.0),
            "answers enough, but over too short a time (a quota spent at once)"
        );
        assert!(!r.active());
    }

    #[test]
    fn a_fall_in_small_steps_is_a_fall_from_the_rate_held_before_them() {
        let mut r = Recovery::default();
        established(&mut r);
        let mut estimate: f64 = 500.0;
        let mut fell = false;
        while !fell {
            let held = estimate;
            estimate *= 0.98;
            fell = r.on_loss(Some(held), ESTABLISHED_FOR, estimate);
        }
        assert!(estimate < FALL * 500.0 && estimate > FALL * 0.97 * 500.0);
        assert_eq!(r.step(estimate), Some(500.0 / estimate));
    }

    #[test]
    fn refused_recovery_probes_wait_longer_and_end_the_recovery() {
        let mut r = Recovery::default();
        established(&mut r);
        assert!(r.on_loss(Some(500.0), ESTABLISHED_FOR, 100.0));
        assert_eq!(r.wait(None), FIRST_WAIT);
        let second = Duration::from_secs(1);
        assert_eq!(r.wait(Some(second)), second * PAUSES_APART);
        r.on_probe_refused();
        assert_eq!(r.wait(None), FIRST_WAIT);
        r.on_probe_refused();
        assert_eq!(r.wait(None), FIRST_WAIT * 2);
        assert_eq!(r.wait(Some(second)), second * PAUSES_APART * 2);
        assert_eq!(r.wait(Some(Duration::MAX)), MAX_WAIT, "no overflow");
        for _ in 2..ATTEMPTS {
            r.on_probe_refused();
        }
        assert!(!r.active());
        assert_eq!(r.step(100.0), None);
    }
}
