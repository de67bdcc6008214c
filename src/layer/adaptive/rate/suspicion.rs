//! A large share refused after a deep cut, as large as before it: a
//! server that refuses whatever the pace, or a rate limiter sent so far
//! past its rate that one cut leaves it nearly as full. A bucket of 10/s
//! with a burst of 20, refilled at each second (Spring Cloud Gateway's,
//! Envoy's `local_ratelimit`), refused 67 % at 39/s and 57 % at 25/s;
//! read at once as refusals that ignore the pace, the host went unpaced
//! for ten seconds and 45 % of the crawl was refused; 100 ms away, a
//! share under 60 % was read as noise the same way, and half of all
//! requests were refused for good. So the first
//! sighting is a suspicion: the pace is cut deeper and held there, nothing
//! else cutting it, until the answers to what it sends tell the two
//! apart. A limiter's share falls; refusals that ignore the pace do not.

use std::time::Duration;

use tokio::time::Instant;

use super::{RateControl, MIN_EVIDENCE};

/// A suspicion is judged within this long, or within the time twice the
/// answers it needs take at the pace it holds.
const SUSPECT_FOR: Duration = Duration::from_secs(10);
/// Refusals the first sighting's share predicts among the answers a
/// judgement of noise (a share under 60 %) reads: at a fifth refused,
/// forty answers. Eight held a refusal in five at one, passed for a
/// limit, and the pace fell to 2/s of 2 560/s.
const NOISE_EXPECTED: f64 = 8.0;
/// The pace a suspicion holds, as a share of the pace cut before it: a
/// second deep cut.
const SUSPECT_CUT: f64 = 0.5;
/// The share refused at the held pace, as a part of the first
/// sighting's, that confirms noise: a rate limiter refuses nothing
/// there (the held pace is under 0.35 of the pace before the first cut,
/// which such a limiter accepted more than 40 % of).
const NOISE_CONFIRMED: f64 = 0.5;
/// Refusals at the held pace that confirm noise whatever their share,
/// and as soon as they come: a limiter accepts everything there. Waiting
/// for the answers that predict eight refusals held a refusal in five
/// under a GCRA of 500/s at a few a second for ten seconds and more (the
/// noisy openings table: 51 % of the rate, 41 % that way).
const NOISE_REFUSED: u32 = 2;
/// The share refused at the pace a suspicion holds, as a part of the
/// share that began it, that confirms refusals of 60 % or more
/// (`refusals_ignore_the_pace`'s own test): a limiter that refused that
/// much may still refuse some at the held pace (a bucket refilled each
/// second, a third as much).
const CONFIRMED_SHARE: f64 = 0.8;

/// The suspicion under way, if any, and whether one was confirmed.
#[derive(Debug, Default)]
pub(super) struct Suspicions {
    current: Option<Suspicion>,
    /// A suspicion was confirmed once: later sightings are believed at
    /// once (each would cost the host its pace again).
    confirmed: bool,
}

/// A first sighting of refusals that ignored a deep cut.
#[derive(Debug, Clone, Copy)]
struct Suspicion {
    /// The share refused after that cut.
    share: f64,
    /// The pace cut from.
    pace: f64,
    /// When it is over, judged or not.
    until: Instant,
    /// What a confirmation makes of them.
    then: Ignore,
}

/// How refusals that ignore the pace are ignored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Ignore {
    /// Under 60 % of the answers: noise of this share, the estimate back
    /// to `top`, where the decline began.
    AsNoise { share: f64, top: f64 },
    /// More: no pace from them for a while.
    Unpaced,
}

/// What the answers at the pace a suspicion holds say.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    /// Too few are in yet: the pace holds.
    Waiting,
    /// As large a share refused: the refusals ignore the pace.
    Ignored(Ignore),
    /// A smaller share: a limit. The pace to go back to, when the one
    /// held was refused nothing.
    Followed(Option<f64>),
}

impl Suspicion {
    /// The answers a judgement reads: [`MIN_EVIDENCE`], or for noise as
    /// many as predict [`NOISE_EXPECTED`] refusals.
    fn needs(&self) -> u32 {
        match self.then {
            Ignore::AsNoise { share, .. } => {
                let predicted = NOISE_EXPECTED / self.share.max(share).max(1e-3);
                (predicted.ceil() as u32).clamp(MIN_EVIDENCE, 1000)
            }
            Ignore::Unpaced => MIN_EVIDENCE,
        }
    }
}

impl Suspicions {
    /// The answers since a suspicion's cut (`counts`, accepted and
    /// refused), at `now`, once as many as it needs are in or the
    /// suspicion is over; `None` without one.
    fn weigh(&mut self, now: Instant, counts: (u32, u32)) -> Option<Verdict> {
        let first = self.current?;
        let (a, r) = counts;
        let answers = a.saturating_add(r);
        // Noise shows as soon as the held pace is refused at all.
        let noise_shown = matches!(first.then, Ignore::AsNoise { .. }) && r >= NOISE_REFUSED;
        if now < first.until && answers < first.needs() && !noise_shown {
            return Some(Verdict::Waiting);
        }
        self.current = None;
        let confirmed = match first.then {
            // Refusals at all at the held pace: a limit refuses none there.
            Ignore::AsNoise { .. } => {
                r >= NOISE_REFUSED || f64::from(r) >= NOISE_CONFIRMED * first.share * f64::from(answers)
            }
            Ignore::Unpaced => f64::from(r) >= CONFIRMED_SHARE * first.share * f64::from(answers),
        };
        if now < first.until && confirmed {
            self.confirmed = true;
            return Some(Verdict::Ignored(first.then));
        }
        // A limit, or too few answers to tell: back to the pace cut from,
        // unless the one held was refused too (the pace learns as usual
        // from there).
        Some(Verdict::Followed((r == 0).then_some(first.pace)))
    }
}

impl RateControl {
    /// Refusals found to ignore the pace: noise of their share, or no
    /// pace from them for a while.
    fn ignore(&mut self, now: Instant, then: Ignore) {
        match then {
            Ignore::AsNoise { share, top } => {
                self.before_cut = None;
                self.noise.found(share);
                self.refusals_are_noise(now, top);
            }
            Ignore::Unpaced => self.ignore_refusals(now),
        }
    }

    /// A large share refused after a deep cut, as large as before it:
    /// the refusals ignore the pace (`then` says how they are ignored) if
    /// such were confirmed on this host before; otherwise a suspicion,
    /// and the pace cut to half again and held while the answers come in
    /// (see [`weigh_suspicion`]).
    ///
    /// [`weigh_suspicion`]: Self::weigh_suspicion
    pub(super) fn suspect(&mut self, now: Instant, then: Ignore) {
        if self.noise.suspicion.confirmed {
            return self.ignore(now, then);
        }
        let (a, r) = self.since_cut;
        let share = f64::from(r) / f64::from(a + r).max(1.0);
        let pace = (SUSPECT_CUT * self.pace).max(self.min_rate);
        let mut suspicion = Suspicion {
            share,
            pace: self.pace,
            until: now,
            then,
        };
        let judged = SUSPECT_FOR
            .as_secs_f64()
            .max(2.0 * f64::from(suspicion.needs()) / pace);
        suspicion.until = now + Duration::from_secs_f64(judged.min(3600.0));
        self.noise.suspicion.current = Some(suspicion);
        self.estimate = pace / self.hold();
        self.settle(now);
        self.restart_count(now);
    }

    /// Judges a suspicion by the answers since its cut, on an answer at
    /// `now`; whether it still holds the pace or just ended it (this
    /// answer is then learned from no further).
    pub(super) fn weigh_suspicion(&mut self, now: Instant) -> bool {
        match self.noise.suspicion.weigh(now, self.since_cut) {
            None => false,
            Some(Verdict::Waiting) => true,
            Some(Verdict::Ignored(then)) => {
                self.ignore(now, then);
                true
            }
            Some(Verdict::Followed(back_to)) => {
                // No reference to judge the next cut by: the counts before
                // the suspicion are what it was wrong about.
                self.before_cut = None;
                if let Some(pace) = back_to {
                    self.estimate = pace / self.hold();
                    self.settle(now);
                }
                self.restart_count(now);
                true
            }
        }
    }
}
