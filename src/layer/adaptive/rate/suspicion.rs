//! A large share refused after a deep cut, as large as before it: a
//! server that refuses whatever the pace, or a rate limiter sent so far
//! past its rate that one cut leaves it nearly as full. A bucket of 10/s
//! with a burst of 20, refilled at each second (Spring Cloud Gateway's,
//! Envoy's `local_ratelimit`), refused 67 % at 39/s and 57 % at 25/s;
//! read at once as refusals that ignore the pace, the host went unpaced
//! for ten seconds and 45 % of the crawl was refused. So the first
//! sighting is a suspicion: the pace is cut deeper and held there, nothing
//! else cutting it, until the answers to what it sends tell the two
//! apart. A limiter's share falls; refusals that ignore the pace do not.

use std::time::Duration;

use tokio::time::Instant;

use super::{RateControl, MIN_EVIDENCE};

/// A suspicion is judged within this long, or within the time
/// [`SUSPECT_ANSWERS`] take at the pace it holds.
const SUSPECT_FOR: Duration = Duration::from_secs(10);
/// See [`SUSPECT_FOR`]: twice the answers a judgement needs.
const SUSPECT_ANSWERS: f64 = 2.0 * MIN_EVIDENCE as f64;
/// The pace a suspicion holds, as a share of the pace cut before it: a
/// second deep cut.
const SUSPECT_CUT: f64 = 0.5;
/// The share refused at the pace a suspicion holds, as a part of the
/// share that began it, that confirms it (`refusals_ignore_the_pace`'s
/// own test).
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
}

/// What the answers at the pace a suspicion holds say.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    /// Too few are in yet: the pace holds.
    Waiting,
    /// As large a share refused: the refusals ignore the pace.
    Ignored,
    /// A smaller share: a limit. The pace to go back to, when the one
    /// held was refused nothing.
    Followed(Option<f64>),
}

impl Suspicions {
    /// The answers since a suspicion's cut (`counts`, accepted and
    /// refused), at `now`, once [`MIN_EVIDENCE`] of them are in or the
    /// suspicion is over; `None` without one.
    fn weigh(&mut self, now: Instant, counts: (u32, u32)) -> Option<Verdict> {
        let first = self.current?;
        let (a, r) = counts;
        let answers = a.saturating_add(r);
        if now < first.until && answers < MIN_EVIDENCE {
            return Some(Verdict::Waiting);
        }
        self.current = None;
        if now < first.until && f64::from(r) >= CONFIRMED_SHARE * first.share * f64::from(answers) {
            self.confirmed = true;
            return Some(Verdict::Ignored);
        }
        // A limit, or too few answers to tell: back to the pace cut from,
        // unless the one held was refused too (the pace learns as usual
        // from there).
        Some(Verdict::Followed((r == 0).then_some(first.pace)))
    }
}

impl RateControl {
    /// A large share refused after a deep cut, as large as before it:
    /// the refusals ignore the pace if such were confirmed on this host
    /// before; otherwise a suspicion, and the pace cut to half again and
    /// held while the answers come in (see [`weigh_suspicion`]).
    ///
    /// [`weigh_suspicion`]: Self::weigh_suspicion
    pub(super) fn suspect(&mut self, now: Instant) {
        if self.noise.suspicion.confirmed {
            return self.ignore_refusals(now);
        }
        let (a, r) = self.since_cut;
        let share = f64::from(r) / f64::from(a + r).max(1.0);
        let pace = (SUSPECT_CUT * self.pace).max(self.min_rate);
        let judged = SUSPECT_FOR.as_secs_f64().max(SUSPECT_ANSWERS / pace);
        self.noise.suspicion.current = Some(Suspicion {
            share,
            pace: self.pace,
            until: now + Duration::from_secs_f64(judged.min(3600.0)),
        });
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
            Some(Verdict::Ignored) => {
                self.ignore_refusals(now);
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
