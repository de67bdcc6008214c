//! Hosts slower than a request a pause: `Retry-After` cycles of a
//! request or two, whose count over the whole streak is the rate.
//!
//! nginx's `limit_req` takes rates per minute (`rate=30r/m`), and a server
//! that answers its refusals with `Retry-After: 1` pauses the host a
//! second, after which it refuses again: each cycle between two pauses
//! holds a request or two, a few milliseconds apart, and no fit reads a
//! rate from it (a pace of 51/s was held against 0.2/s, 82 % of the sends
//! refused). What reads it is the count over many cycles: a GCRA takes
//! exactly its rate over any span it is sent to faster, less what its
//! bucket held at either end (under a request each, both ends being
//! refusals), unless its bucket filled up meanwhile and lost what it
//! restored. A send refused after a gap of `g` seconds proves the host
//! restores under a request in `g` (whatever its burst); so while no gap
//! of the streak is wider than the widest before a refusal, the bucket
//! never filled, and the count bounds the rate from above. Nor did it
//! when the opening flood showed a bucket larger than a short cycle
//! takes: a pause that filled it would have been followed by that many
//! acceptances. nginx without `burst=` behind a static `Retry-After`
//! refills its one request in every pause, and shows neither: its count
//! is no bound. Until the streak takes a request, the bound goes no lower
//! than a search starts: a host that refuses whatever the pace shows a
//! falling count too.

use tokio::time::Instant;

use super::{Basis, RateControl, MIN_EVIDENCE};

/// `Retry-After` pauses in a row whose cycles each accepted fewer than
/// [`MIN_EVIDENCE`] sends, from the refused send before the first.
#[derive(Debug, Clone, Copy)]
pub(super) struct SlowStreak {
    since: Instant,
    /// What its cycles accepted: every send of each before its refusal.
    took: u32,
    /// The widest gap between two of its sends, seconds.
    widest_gap: f32,
    /// The widest gap before a refused send, seconds.
    refused_gap: f32,
}

/// How much wider than the widest refused gap a gap of the streak may be
/// (the scheduler's jitter): a bucket of one request or more does not fill
/// in it.
const GAP_JITTER: f32 = 1.05;

/// The opening flood's burst is what it took within this long, seconds.
const AT_ONCE: f32 = 0.1;

/// The fastest rate a count bound without a refused gap to back it is read
/// at: under it, a bucket refills less than a request while the opening
/// flood is counted ([`AT_ONCE`]).
const SLOW_COUNT: f64 = 1.0 / AT_ONCE as f64;

impl RateControl {
    /// Counts a told cycle, its sends `log` (seconds before its refused
    /// send, at `sent_at`), into the streak of short ones; the previous
    /// refusal was sent at `previous`. Once the streak bounds the rate
    /// under the estimate, the estimate is that bound (returns whether it
    /// is). Not in a fleet: others' sends spend the host's bucket too.
    pub(super) fn slow_cycle(
        &mut self,
        now: Instant,
        sent_at: Instant,
        previous: Option<Instant>,
        log: &[f32],
    ) -> bool {
        let accepted = log.len().saturating_sub(1);
        let shared = self.shared();
        let (Some(streak), Some(previous)) = (self.logs.slow.as_mut(), previous) else {
            self.logs.slow = Some(SlowStreak::from(sent_at));
            return false;
        };
        if accepted >= MIN_EVIDENCE as usize || shared {
            *streak = SlowStreak::from(sent_at);
            return false;
        }
        let first = log.first().copied().unwrap_or(0.0);
        let lead = sent_at.saturating_duration_since(previous).as_secs_f32() + first;
        let within = log.windows(2).map(|w| w[1] - w[0]);
        let refused_gap = match log {
            [.., before, last] => last - before,
            _ => lead,
        };
        streak.took = streak.took.saturating_add(accepted as u32);
        streak.widest_gap = within.fold(streak.widest_gap.max(lead), f32::max);
        streak.refused_gap = streak.refused_gap.max(refused_gap);
        let streak = *streak;
        let secs = sent_at.saturating_duration_since(streak.since).as_secs_f64();
        if secs <= 0.0 {
            return false;
        }
        let count = (f64::from(streak.took) + 1.0) / secs;
        let bound = if streak.refused_gap > 0.0 && streak.widest_gap <= GAP_JITTER * streak.refused_gap {
            // No gap wide enough to fill a bucket: the count bounds the rate.
            count.min(1.0 / f64::from(streak.refused_gap))
        } else if self.flood_burst() >= MIN_EVIDENCE as usize && count < SLOW_COUNT {
            // The opening flood showed a bucket of more than a short
            // cycle holds: a pause that filled it would have been followed
            // by that many acceptances, so none did.
            count
        } else {
            return false;
        };
        // Nothing accepted yet: a bound, but a host that refuses whatever
        // the pace (down, or hostile) shows one too, and read as a rate
        // per minute its pace fell to `min_rate` and stayed there after it
        // came back. No lower than a search starts, until it takes one.
        let bound = if streak.took == 0 {
            bound.max(self.search_floor())
        } else {
            bound
        };
        if bound >= self.estimate {
            return false;
        }
        self.estimate = bound.max(self.min_rate);
        self.basis = Basis::Measured;
        self.settle(now);
        true
    }

    /// How many requests the host took at once at the opening: the
    /// flood's sends within [`AT_ONCE`] of its first, before its refusal,
    /// one less (what its bucket refilled meanwhile, at a rate under
    /// [`SLOW_COUNT`]); 0 without a flood.
    fn flood_burst(&self) -> usize {
        let Some(flood) = self.logs.flood.as_deref() else {
            return 0;
        };
        let first = flood.first().copied().unwrap_or(0.0);
        let at_once = flood.iter().take_while(|&&t| t - first <= AT_ONCE).count();
        // The last send of the log is the refused one.
        at_once.min(flood.len().saturating_sub(1)).saturating_sub(1)
    }
}

impl SlowStreak {
    fn from(since: Instant) -> Self {
        Self {
            since,
            took: 0,
            widest_gap: 0.0,
            refused_gap: 0.0,
        }
    }
}
