//! In a fleet (feature `redis`), the GCRA fit of the fleet's cycles: every
//! process's sends between two pauses, merged (see `fleet::cycle`), fitted
//! as one limiter's. Each process then paces its share of the fitted rate.
//!
//! A process's own cycles hold its share of the sends, and a small share
//! sees a small part of the burst: its fit is coarse, and the fleet's
//! rate was the sum of four coarse fits (from 89 % to 101 % of the
//! limiter's rate, run to run). The fleet's cycles are the limiter's own
//! view: one fit, the same in every process.
//!
//! The opening flood (unpaced: each process's part of it is whatever its
//! requests raced to) is fitted with nothing. Each process searches from
//! its share of what the fleet sent up to the refusal, not from its own
//! part (`rate.rs`), so none lags the fleet's pauses. The flood bounds
//! the burst: a
//! search and a pace held past the rate also fit a GCRA at half the rate
//! with three times the burst, which a flood refused after some fifty
//! sends rules out (`fit::crossing_within`).
//!
//! Merged send times are each sender's own, and a few milliseconds of
//! jitter move a cycle's end by a send or two: crossings are sought up to
//! twice the cycles' average rate (a merged cycle's first sends straggle),
//! and when none fits, the rates every cycle allows under the flood's
//! bound, if they lie close together, give the fit
//! (`fit::narrow_consistent`). When the first two paced cycles fit
//! nothing, the processes probe past their own fits at once (`rate.rs`).
//!
//! Every process that sent in a merged cycle paces an equal share of its
//! fit, whatever its own count of live processes (a process that sends
//! little leases rarely and may be counted out). A process's own view of
//! the host overrules a fit only when the merge may miss a process's
//! sends (`FleetCycle::complete`).
//!
//! Over 400 lines with its tests (the last 150).

use std::sync::Arc;

use tokio::time::Instant;

use crate::tally::Tally;

use super::fit::{
    burst_under_flood, fit_cycles_within, narrow_consistent, peak_rate, Fit, CYCLES_KEPT, FIT_OVER_PEAK,
};

/// This process's latest cycle, for the fleet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finished {
    /// When it ended: the refused request's send time, or when this process
    /// learned of another's pause.
    pub(crate) end: Instant,
    /// It ended at this process's own refusal.
    pub(crate) told: bool,
    /// A GCRA could have ended it.
    pub(crate) fits: bool,
    /// Send times, seconds before `end` (ascending, at most 0; an unpaced
    /// flood's go on past it).
    pub(crate) log: Vec<f32>,
    /// An unpaced flood's answers still to come (none for a paced cycle).
    pub(crate) flood: Option<FloodAnswers>,
}

/// The answers an opening flood's record waits for before the fleet gets
/// it (up to [`FLOOD_SETTLE`]). The record keeps the sends the server
/// took, and the refused one that ended it. When the record is made, only
/// the first refusal is in: the rest of the flood is still in flight, and
/// the server took it in any order. Handed on at once with every send
/// (65-85 for four processes, where the server took 53-56), the flood bounded
/// the burst so loosely that a crossing implying a burst of 86 held a
/// fleet at 76 % of its rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FloodAnswers {
    /// The flood's sends not yet answered.
    pub(crate) unanswered: usize,
    /// Refusals among the answers since the record was made (the
    /// refusal that ended it, when this process's own, included).
    pub(crate) refused: usize,
}

/// The longest a flood's record waits for its answers.
pub(crate) const FLOOD_SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

impl Finished {
    /// Whether the fleet may have this record at `now`: a flood's once its
    /// answers are in, or [`FLOOD_SETTLE`] after its end.
    pub(crate) fn ready(&self, now: Instant) -> bool {
        self.flood
            .is_none_or(|f| f.unanswered == 0 || now >= self.end + FLOOD_SETTLE)
    }

    /// Leaves out of a flood's sends one for each refusal but the one
    /// that ended it: the rest are what the server took, or may have.
    pub(crate) fn without_refused(mut self) -> Self {
        if let Some(f) = self.flood.take() {
            let late = f.refused.saturating_sub(usize::from(self.told));
            let keep = self.log.len().saturating_sub(late).max(1);
            self.log.truncate(keep);
        }
        self
    }
}

/// The fleet's cycle: every process's sends up to the first refusal, as
/// `fleet::cycle` merges them from the processes' records and a host's
/// rate control fits them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FleetCycle {
    /// Counts the fleet cycles this process merged (from 1).
    pub(crate) seq: u64,
    /// When it ended: Unix µs.
    pub(crate) end_us: u64,
    /// Every record in it could have been a GCRA's cycle.
    pub(crate) fits: bool,
    /// How many processes' records it merges.
    pub(crate) processes: usize,
    /// It merges a record of every process live when it was read: no
    /// process's sends are missing from it.
    pub(crate) complete: bool,
    /// It merges the cycle of the one before it again, with records that
    /// came after that was merged: a fit of that cycle is replaced.
    pub(crate) replaces: bool,
    /// Send times, seconds before the end (ascending, at most 0; the
    /// latest `fleet::cycle::MAX_SENDS`).
    pub(crate) log: Arc<[f32]>,
}

/// What a host's rate control keeps in a fleet: whether others send to
/// the host too, the fleet's seed, and the fleet's cycles as this process
/// has merged them.
#[derive(Debug, Default)]
pub(crate) struct FleetCycles {
    /// This process's share of the host, as last read (none before).
    pub(crate) share: Option<f64>,
    /// The estimate the fleet seeded, while it is still the estimate: not
    /// this process's own finding, so not published back.
    pub(crate) seeded: Option<f64>,
    /// This process's latest cycle, not yet handed to the fleet.
    pub(crate) finished: Option<Finished>,
    /// The fleet's previous cycles' send times (latest last).
    previous: Vec<Vec<f32>>,
    /// When the latest fleet cycle ended, Unix µs.
    last_end_us: Option<u64>,
    /// When the fleet cycle before it ended: where a cycle merged again
    /// takes the fit back to.
    end_before_us: Option<u64>,
    /// The sequence number of the latest fleet cycle read.
    pub(crate) seen: u64,
    /// This process's sends in its latest cycle.
    pub(crate) own_sends: usize,
    /// The cycle last kept for this process's own fit was the unpaced
    /// opening flood.
    pub(crate) flood_kept: bool,
    /// The fleet's opening flood: fitted with nothing, but the excess it
    /// was refused at bounds the limiter's burst.
    flood: Option<Vec<f32>>,
    /// A fit of the fleet's cycles set this process's pace.
    pub(crate) fitted: bool,
    /// Probes sent because the fleet's opening cycles fitted nothing.
    pub(crate) opening_probes: u8,
    /// The end of the fleet's answers (Unix ms) that last cut the pace.
    pub(crate) load_cut_ms: u64,
    /// This process's answers from the host not yet handed to the fleet.
    pub(crate) answers: Tally,
    /// Answers while unpaced, before the opening flood's record: the
    /// flood's sends answered before its refusal.
    pub(crate) flood_answered: usize,
    /// An instant and the Unix ms it was, to date answers without reading
    /// the wall clock for each (taken again each minute: the two clocks
    /// drift apart).
    wall: Option<(Instant, u64)>,
}

impl FleetCycles {
    /// One more answer (`refused`: a refusal for rate) while `unpaced`:
    /// a part of the opening flood, counted before its record is made and
    /// against it after.
    pub(crate) fn flood_answer(&mut self, unpaced: bool, refused: bool) {
        match self.finished.as_mut().and_then(|f| f.flood.as_mut()) {
            Some(f) => {
                f.unanswered = f.unanswered.saturating_sub(1);
                f.refused += usize::from(refused);
            }
            None if unpaced => self.flood_answered = self.flood_answered.saturating_add(1),
            None => {}
        }
    }

    /// Counts an answer at `now` for the fleet's answers: accepted, or
    /// refused for rate.
    pub(crate) fn count_answer(&mut self, now: Instant, accepted: bool) {
        let (base, base_ms) = match self.wall {
            Some((base, ms)) if now.saturating_duration_since(base).as_secs() < 60 => (base, ms),
            _ => {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                self.wall = Some((now, ms));
                (now, ms)
            }
        };
        let unix_ms = base_ms + now.saturating_duration_since(base).as_millis() as u64;
        self.answers
            .add(unix_ms, u32::from(accepted), u32::from(!accepted));
    }
}

impl FleetCycles {
    /// Other processes send to the host too (this process's share is
    /// under 1).
    pub(crate) fn shared(&self) -> bool {
        self.share.is_some_and(|s| s < 1.0)
    }

    /// The fleet's cycles since the last one no GCRA could end (its
    /// opening flood, a refusal without `Retry-After`) number two or more:
    /// enough for a fit.
    pub(crate) fn paired(&self) -> bool {
        self.previous.len() >= 2
    }

    /// Takes back the latest cycle, which ended at `end_us`, before its
    /// merge again (with more processes' records) is fitted in its place;
    /// whether it was the latest.
    pub(crate) fn take_back(&mut self, end_us: u64) -> bool {
        if self.last_end_us != Some(end_us) {
            return false;
        }
        self.last_end_us = self.end_before_us.take();
        if self.last_end_us.is_none() {
            // It was the opening flood (or the first cycle after none).
            self.flood = None;
        }
        // Only a cycle a GCRA could end was kept (see `fit`).
        self.previous.pop();
        true
    }

    /// The whole host's rate that the fleet's cycle (ended at `end_us`,
    /// send times `log`) and those before it fit, if any: the same checks
    /// as a process's own fit (see `rate.rs`). `estimate` is this
    /// process's view of the whole host's rate (0 for none).
    pub(crate) fn fit(&mut self, end_us: u64, fits: bool, log: &[f32], estimate: f64) -> Option<Fit> {
        let previous_end = self.last_end_us.replace(end_us);
        self.end_before_us = previous_end;
        if previous_end.is_none() && !fits && log.len() >= 2 {
            self.flood = Some(log.to_vec());
        }
        if !fits {
            // Refusals without `Retry-After` in it: not a GCRA's cycle.
            self.previous.clear();
            return None;
        }
        // What the fleet sent since the previous refusal, all accepted but
        // the last: the limiter refills no faster than its rate.
        let floor = previous_end.filter(|&e| end_us > e).map_or(0.0, |e| {
            log.len().saturating_sub(2) as f64 / ((end_us - e) as f64 / 1e6)
        });
        let peak = peak_rate(log);
        // The burst a fit implies is under what refused the flood: the
        // flood's sends the server took, and each process's refused one
        // (see `FloodAnswers`), a GCRA's burst and one more. A few sends
        // of room: a merged cycle's end may read a send or two high.
        let flood = self.flood.as_deref();
        let max_burst = |r: f64| burst_under_flood(flood, r);
        let fitted = fit_cycles_within(&self.previous, log, estimate, max_burst, REACH)
            .or_else(|| {
                let all: Vec<&[f32]> = self.previous.iter().map(Vec::as_slice).chain([log]).collect();
                narrow_consistent(&all, max_burst)
            })
            .filter(|f| f.rate >= floor && (peak == 0.0 || f.rate <= FIT_OVER_PEAK * peak));
        if self.previous.len() >= CYCLES_KEPT {
            self.previous.remove(0);
        }
        self.previous.push(log.to_vec());
        fitted
    }
}

/// How far over the cycles' average rate crossings are sought: a merged
/// cycle's first sends may straggle (one held 165 sends over 0.37 s
/// against a limiter of 500/s).
const REACH: f64 = 2.0;

#[cfg(test)]
#[path = "fleet_fit_tests.rs"]
pub(super) mod tests;
