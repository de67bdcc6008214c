//! Refusals that do not follow the pace. A server that refuses some
//! requests whatever the rate (one bad backend among many behind a
//! balancer, a limiter other clients fill, a bot check) is no rate
//! limiter: cutting on its refusals removes none of them and stalls the
//! crawl. A large share that a deep cut leaves as large is ignored for a
//! while (`refusals_ignore_the_pace`, in `counts.rs`). A small share (a
//! refusal in fifty) cuts the pace a step at a time, each step with too
//! few answers to judge: 2 % of a host's answers refused took it from
//! 3 200/s to 39/s within a minute, still falling.
//!
//! So a decline is judged as a whole: the share refused while the
//! estimate was near where the decline began, against the share once the
//! estimate is lower by more than a seventh. A rate limiter refuses
//! nothing that far under its rate; a share that comes back as large
//! (from a third to two and a half times the top's) is noise. The
//! estimate goes back to where the decline began, a chain of probes
//! climbs from there, and from then on each answer earns a little more
//! than the noise's share of a refusal: a refusal that finds a whole one
//! earned is noise, and teaches nothing. Refusals beyond the noise (a
//! rate limit on top of it) still teach the pace.

use tokio::time::Instant;

use super::suspicion::Suspicions;
use super::{Basis, RateControl, PROBE_WAIT_CHEAP};

/// A fall of the estimate under this share is a cut, not a step.
const STEP: f64 = 0.9;
/// The largest share of refusals read as noise.
const MAX_SHARE: f64 = 0.15;
/// Estimates this close under the decline's top count as the top.
const AT_TOP: f64 = 0.9;
/// The estimate must fall this far under the top before what it is
/// refused there is compared with the top's share.
const BELOW: f64 = 0.85;
/// Refusals the top's share predicts below the top, before the two are
/// compared. Noise then fails the test one time in twenty-five (one
/// refusal or none where five were due), which only ends the decline;
/// at eight, a host at 100/s with a refusal in fifty was cut for 8 s
/// before the verdict, and 40 s at 20/s.
const EXPECTED: f64 = 5.0;
/// The share under the top, as a part of the top's, from which it is
/// noise: a rate limiter refuses nothing there, and noise of one share
/// now and then reads half as much over a dozen refusals.
const FOUND_OVER_TOP: f64 = 0.35;
/// The share under the top, as a multiple of the top's, past which it is
/// no noise but a limit refusing more as the estimate falls.
const FOUND_UNDER_TOP: f64 = 2.5;
/// Refusals at the top needed for its share to mean anything. Each
/// refusal there steps the estimate back 3-5 %, so the top's band of a
/// tenth holds three of them: at four, a sliding log of 100/s under a
/// refusal in fifty was never judged, and fell to a fifth of its rate
/// within a minute.
const MIN_AT_TOP: u32 = 3;
/// The first probe after a verdict goes this far over the hold, and the
/// chain doubles it: the top was accepted with nothing but noise refused,
/// and is often low (read while the opening grew). From the probes'
/// usual 3 %, a GCRA of 500/s under noise climbed back from 47/s in 25 s;
/// from 50 %, the noisy tables read 39 % where they read 20 % (small
/// bursts) at the same share refused.
const CLIMB: f64 = 1.5;
/// The most refusals the noise's earned share holds: noise that comes in
/// a cluster larger than this teaches a step.
const CREDIT_CAP: f32 = 8.0;
/// Each answer earns this much more than the noise's share of a refusal,
/// so that the noise's own clusters seldom find nothing earned.
const EARN_OVER: f32 = 1.5;
/// What the host's refusals said about following the pace.
#[derive(Debug, Default)]
pub(super) struct Noise {
    /// Refusals that ignored a deep cut (a large share): untold losses
    /// are ignored until then (see `refusals_ignore_the_pace`).
    pub(super) indifferent_until: Option<Instant>,
    /// A decline of the estimate under way, and the answers counted
    /// along it.
    decline: Option<Decline>,
    /// The share of refusals found not to follow the pace.
    share: Option<f32>,
    /// Refusals the noise has earned and not spent: each answer earns
    /// its share of one.
    credit: f32,
    /// A large share refused as before a deep cut, suspected of ignoring
    /// the pace until a second cut tells (see `suspicion.rs`).
    pub(super) suspicion: Suspicions,
}

/// A decline of the estimate: where it began, and the answers (accepted,
/// refused) while the estimate was near there and once well under it.
#[derive(Debug, Clone, Copy)]
struct Decline {
    top: f64,
    at_top: (u32, u32),
    below: (u32, u32),
}

impl Noise {
    /// The estimate fell from `before` to `after`, measured: a decline
    /// begins at `before` unless one is under way. A deep cut is no step
    /// of a decline but a finding (a window that counts refusals read at
    /// its drain, a search frozen past a limit): it ends any decline, and
    /// its top is no rate to go back to (a search frozen at 3 500/s in a
    /// window of 500/s was searched from again, and flooded the window).
    pub(super) fn on_fall(&mut self, before: f64, after: f64) {
        if after < STEP * before {
            self.decline = None;
        } else if after < before && self.decline.is_none() {
            self.decline = Some(Decline {
                top: before,
                at_top: (0, 0),
                below: (0, 0),
            });
        }
    }

    /// Counts an answer (a refusal without `Retry-After`, or an
    /// acceptance) to a request answered while the estimate was
    /// `estimate`. Returns the decline's top when the decline shows its
    /// refusals to be noise.
    pub(super) fn count(&mut self, refused: bool, estimate: f64) -> Option<f64> {
        if let Some(share) = self.share {
            self.credit = (self.credit + EARN_OVER * share).min(CREDIT_CAP);
        }
        let d = self.decline.as_mut()?;
        if estimate > d.top {
            // Grown past where it began: no decline any more.
            self.decline = None;
            return None;
        }
        let band = if estimate >= AT_TOP * d.top {
            &mut d.at_top
        } else if estimate <= BELOW * d.top {
            &mut d.below
        } else {
            return None;
        };
        if refused {
            band.1 = band.1.saturating_add(1);
        } else {
            band.0 = band.0.saturating_add(1);
        }
        self.judge()
    }

    /// Judges the decline once the share at its top predicts enough
    /// refusals under it: noise if a third as many came or more.
    fn judge(&mut self) -> Option<f64> {
        let d = self.decline?;
        let share = |(a, r): (u32, u32)| f64::from(r) / f64::from(a.saturating_add(r)).max(1.0);
        let top = share(d.at_top);
        if d.at_top.1 < MIN_AT_TOP {
            return None;
        }
        let below = f64::from(d.below.0.saturating_add(d.below.1));
        if top * below < EXPECTED {
            return None;
        }
        self.decline = None;
        let found = share(d.below);
        // Noise refuses as much under the top as at it; a limit refuses
        // less there, or, a window still full of what the estimate sent
        // at its top, more (a log of ten seconds at 30/s refused 4 % at
        // the top of a decline and 42 % under it).
        let alike = (FOUND_OVER_TOP * top..=FOUND_UNDER_TOP * top).contains(&found);
        (top <= MAX_SHARE && alike).then(|| {
            // The noise's share, over all the decline's answers: read
            // under the top alone it was now and then read low, and the
            // noise spent more than it earned.
            let (a, r) = d.at_top;
            self.found(share((a.saturating_add(d.below.0), r.saturating_add(d.below.1))));
            d.top
        })
    }

    /// Refusals found to ignore the pace, `share` of all answers (by a
    /// decline, or by `refusals_ignore_the_pace`): noise of that share
    /// from now on.
    pub(super) fn found(&mut self, share: f64) {
        self.decline = None;
        self.share = Some(share as f32);
        self.credit = CREDIT_CAP;
    }

    /// Whether a refusal now is the noise found: one it earned, which
    /// this spends (nothing is earned before noise is found).
    pub(super) fn explains(&mut self) -> bool {
        let earned = self.credit >= 1.0;
        if earned {
            self.credit -= 1.0;
        }
        earned
    }
}

impl RateControl {
    /// Counts a refusal without `Retry-After` toward the noise; whether
    /// it is noise, which teaches nothing: not the meter's slots, not the
    /// gaps, not the pace (recorded there, the noise's refusals marked
    /// slots as at the limit, and each later reading of them cut the
    /// estimate to the pace). A quota explains its own refusals. Only a
    /// measured estimate declines, or holds with noise: a guess searches,
    /// and an unpaced host has nothing to cut.
    pub(super) fn is_noise(&mut self, now: Instant) -> bool {
        if self.basis != Basis::Measured || self.quota.active(now) || self.quota.read_too_early(now) {
            return false;
        }
        if let Some(top) = self.noise.count(true, self.estimate) {
            self.refusals_are_noise(now, top);
            return true;
        }
        self.noise.explains()
    }

    /// A decline from `top` showed the host's refusals to be noise: the
    /// decline taught nothing, and the estimate goes back to where it
    /// began, which the host accepted with nothing but noise refused.
    /// That may be low: the first refusal can come while the opening
    /// still grows the concurrency limit (2 % refused at random read
    /// 115/s of a GCRA of 500/s). So a chain of probes starts at once,
    /// from [`CLIMB`] over the hold, each twice as far as the last while
    /// they hold (one step at a time under a window that counts
    /// refusals). Not a search: from a decline's top, one overshot a
    /// window of ten seconds and flooded it.
    pub(super) fn refusals_are_noise(&mut self, now: Instant, top: f64) {
        tracing::debug!(
            top,
            "refusals do not follow the pace: back to where they began cutting it"
        );
        self.estimate = top.max(self.min_rate);
        self.basis = Basis::Measured;
        self.probing = false;
        self.drain = None;
        self.before_cut = None;
        self.settle(now);
        self.probe_step = CLIMB;
        self.probe_wait = PROBE_WAIT_CHEAP;
        self.probe_after = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers at `estimate`, one refusal every `every`.
    fn answers(n: &mut Noise, count: usize, every: usize, estimate: f64) -> Option<f64> {
        let mut found = None;
        for i in 1..=count {
            found = found.or(n.count(i % every == 0, estimate));
        }
        found
    }

    #[test]
    fn a_share_that_comes_back_well_under_the_top_is_noise() {
        let mut n = Noise::default();
        n.on_fall(100.0, 98.0);
        assert_eq!(answers(&mut n, 300, 50, 98.0), None);
        // Between the bands: not counted.
        assert_eq!(answers(&mut n, 300, 50, 88.0), None);
        assert!(!n.explains());
        // Well under: the same share, judged once it predicts five.
        assert_eq!(answers(&mut n, 249, 50, 78.0), None);
        assert_eq!(answers(&mut n, 1, 1, 78.0), Some(100.0));
        // A refusal in fifty is noise: each earned by the answers before.
        for _ in 0..10 {
            answers(&mut n, 49, 1_000_000, 100.0);
            assert!(n.explains(), "refusals at the noise's share are noise");
        }
        // A limit on top of it refuses far more: the earned ones spent,
        // the rest teach.
        let taught = (0..20).filter(|_| !n.explains()).count();
        assert!(taught >= 12, "{taught}");
    }

    #[test]
    fn three_refusals_at_the_top_are_enough_to_judge() {
        // Steps of 3-5 % leave the top's band after three refusals.
        let mut n = Noise::default();
        n.on_fall(100.0, 97.0);
        assert_eq!(answers(&mut n, 50, 50, 97.0), None);
        assert_eq!(answers(&mut n, 50, 50, 93.0), None);
        n.on_fall(93.0, 89.0);
        assert_eq!(answers(&mut n, 50, 50, 90.5), None);
        // Out of the band, down to well under it, at the same share.
        assert_eq!(answers(&mut n, 100, 50, 87.0), None, "between the bands");
        let found = answers(&mut n, 250, 50, 82.0);
        assert_eq!(found, Some(100.0), "noise, judged on three at the top");
    }

    #[test]
    fn a_deep_cut_ends_a_decline() {
        let mut n = Noise::default();
        n.on_fall(100.0, 98.0);
        answers(&mut n, 300, 50, 98.0);
        // A window read at its drain, say: a finding, not a step.
        n.on_fall(98.0, 40.0);
        assert!(n.decline.is_none());
        assert_eq!(answers(&mut n, 1_000, 50, 40.0), None);
    }

    #[test]
    fn a_share_that_falls_with_the_estimate_follows_the_pace() {
        let mut n = Noise::default();
        n.on_fall(100.0, 98.0);
        answers(&mut n, 300, 50, 98.0);
        // A rate limiter refuses nothing a fifth under its rate.
        assert_eq!(answers(&mut n, 1_000, 1_000_000, 78.0), None);
        assert!(n.decline.is_none(), "judged");
        assert!(!n.explains(), "no noise found");
    }

    #[test]
    fn a_large_share_or_a_decline_grown_out_of_is_not_this_rules() {
        let mut n = Noise::default();
        n.on_fall(100.0, 98.0);
        answers(&mut n, 100, 3, 98.0);
        assert_eq!(answers(&mut n, 100, 3, 70.0), None, "a third refused: not noise");
        assert!(!n.explains());
        n.on_fall(100.0, 98.0);
        answers(&mut n, 100, 50, 98.0);
        n.count(false, 120.0);
        assert!(n.decline.is_none(), "grown past its top");
    }
}
