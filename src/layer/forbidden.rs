//! Runs of bare 403s: a block's refusals.
//!
//! A `403 Forbidden` without `Retry-After` or a spent quota refuses one
//! request, not a rate (see [`is_throttled`](crate::retry_after::is_throttled)),
//! and a crawl meets many. But Apache's `mod_evasive` and the rate rules of
//! web application firewalls (AWS WAF's default action, for one) block a
//! client with bare 403s, and each request sent into the block renews it:
//! read as answers that say nothing about load, the block never ended, and
//! the crawl sent on into it at its full speed. Crawlee's sessions count a
//! 403 as blocked for the same reason.
//!
//! So a run of bare 403s with no acceptance between, long enough that the
//! host's own share of them would make it once in a million runs, is a
//! block's: its 403s count as 429s from then on (a back-off pause, the
//! adaptive controller's refusals) until the host accepts again. A host
//! that forbade none of its pages before needs [`FORBIDDEN_RUN`]; one that
//! forbids half of them, twenty. A run of a fixed length was read as a
//! block by chance at a site forbidding most of its pages, and the pace
//! it cut made such runs longer in time, not rarer: at 100/s with seven
//! pages in ten forbidden, eight in a row over a quarter of a second cut
//! the crawl to 4 % of its rate.
//!
//! The share is counted from the answers the layer sees of the host: its
//! 403s, and its successes while they are reported (for a few seconds
//! after any pause or bare 403, see `report.rs`), which errs toward a
//! larger share, and so a longer run.
//!
//! A rate limiter that refuses each request with a bare 403 makes no long
//! run; a trial of the pace tells its 403s apart (`forbidden_trial.rs`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::hosts::HostState;
use super::shared::WATCH_MS;

/// The shortest run of bare 403s that is a block's.
pub(crate) const FORBIDDEN_RUN: u32 = 8;
/// The longest: a host that forbids nearly everything.
const LONGEST_RUN: u32 = 1_000;
/// How rare a run of chance the threshold allows, per run.
const CHANCE: f64 = 1e-6;
/// The counts are halved past this many answers: the share follows the
/// host's latest few thousand.
const COUNTED: u32 = 4_096;

/// The layer's view of the runs: when any host last answered a bare 403,
/// so that successes are reported to the host map for a while after it
/// (see `report.rs`), and a success ends its host's run.
#[derive(Debug, Default)]
pub(crate) struct ForbiddenRuns {
    /// Coarse ms of the latest bare 403 from any host; 0 for none.
    latest_ms: AtomicU64,
}

impl ForbiddenRuns {
    /// Coarse ms of the latest bare 403 from any host (0: none yet).
    #[inline]
    pub(crate) fn latest_ms(&self) -> u64 {
        self.latest_ms.load(Ordering::Relaxed)
    }

    /// One more bare 403 from `host` at `now_ms`: whether its run is long
    /// enough to be a block's. Without an adaptive controller, whose
    /// permits report every acceptance, a run whose latest 403 came
    /// [`WATCH_MS`] ago or more (`unwatched`) starts again: successes
    /// after it went unreported. (A back-off's pauses are at most 4 s
    /// apart by default.)
    pub(crate) fn forbidden(&self, host: &HostState, now_ms: u64, unwatched: bool) -> bool {
        let now_ms = now_ms.max(1);
        self.latest_ms.fetch_max(now_ms, Ordering::Relaxed);
        let last = host.forbidden_last_ms.swap(now_ms, Ordering::Relaxed);
        if unwatched && now_ms.saturating_sub(last) >= WATCH_MS {
            host.forbidden_run.store(0, Ordering::Relaxed);
        }
        let run = host
            .forbidden_run
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if run == 1 {
            let needed = run_needed(
                host.forbidden_counted.load(Ordering::Relaxed),
                host.answers_counted.load(Ordering::Relaxed),
            );
            host.forbidden_needed.store(needed, Ordering::Relaxed);
        }
        let block = run >= host.forbidden_needed.load(Ordering::Relaxed).max(FORBIDDEN_RUN);
        if !block {
            // A block's 403s say nothing of the pages the host forbids.
            count(host, true);
        }
        block
    }
}

/// An acceptance from `host` that its adaptive controller's permit
/// reports: its run of 403s, if any, is over.
#[inline]
pub(crate) fn end_run(host: &HostState) {
    if host.forbidden_run.load(Ordering::Relaxed) != 0 {
        host.forbidden_run.store(0, Ordering::Relaxed);
    }
}

/// A success from `host`, reported to the host map: the run is over, and
/// it counts toward the host's share of 403s.
pub(crate) fn accepted(host: &HostState) {
    end_run(host);
    count(host, false);
}

/// Counts one answer, a bare 403 or not, halving the counts past
/// [`COUNTED`] (racing halvings lose a count or two: a share needs no
/// more).
fn count(host: &HostState, forbidden: bool) {
    let answers = host
        .answers_counted
        .fetch_add(1, Ordering::Relaxed)
        .saturating_add(1);
    if forbidden {
        host.forbidden_counted.fetch_add(1, Ordering::Relaxed);
    }
    if answers > COUNTED {
        halve(&host.answers_counted);
        halve(&host.forbidden_counted);
    }
}

fn halve(n: &AtomicU32) {
    n.store(n.load(Ordering::Relaxed) / 2, Ordering::Relaxed);
}

/// The run of bare 403s that is a block's at a host that answered
/// `forbidden` of `answers` so: as long as a run of chance at that share
/// comes once in [`CHANCE`]. The share starts at one in eight, as if a
/// few answers were counted already (no answers counted: [`FORBIDDEN_RUN`]).
fn run_needed(forbidden: u32, answers: u32) -> u32 {
    let share = (f64::from(forbidden) + 1.0) / (f64::from(answers) + 8.0);
    if share >= 1.0 {
        return LONGEST_RUN;
    }
    let run = (CHANCE.ln() / share.ln()).ceil();
    if run.is_finite() {
        (run as u32).clamp(FORBIDDEN_RUN, LONGEST_RUN)
    } else {
        LONGEST_RUN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_a_block_needs_grows_with_the_share_of_forbidden_pages() {
        assert_eq!(run_needed(0, 0), FORBIDDEN_RUN);
        assert_eq!(run_needed(0, 1_000), FORBIDDEN_RUN);
        assert_eq!(run_needed(500, 1_000), 20);
        assert_eq!(run_needed(700, 1_000), 39);
        assert_eq!(run_needed(1_000, 1_000), LONGEST_RUN);
        assert_eq!(run_needed(u32::MAX, 0), LONGEST_RUN);
    }

    #[test]
    fn a_run_is_a_blocks_from_its_eighth_403_until_an_acceptance() {
        let (runs, host) = (ForbiddenRuns::default(), HostState::default());
        let seven: Vec<bool> = (0..FORBIDDEN_RUN - 1)
            .map(|i| runs.forbidden(&host, 10 + u64::from(i), true))
            .collect();
        assert!(seven.iter().all(|&b| !b), "{seven:?}");
        assert!(runs.forbidden(&host, 20, true));
        assert!(runs.forbidden(&host, 21, true));
        assert_eq!(runs.latest_ms(), 21);
        accepted(&host);
        assert!(
            !runs.forbidden(&host, 22, true),
            "an acceptance starts the count again"
        );
    }

    #[test]
    fn a_host_that_forbids_half_its_pages_needs_a_longer_run() {
        let (runs, host) = (ForbiddenRuns::default(), HostState::default());
        for i in 0..1_000 {
            if i % 2 == 0 {
                runs.forbidden(&host, 10, true);
            } else {
                accepted(&host);
            }
        }
        let run: Vec<bool> = (0..20).map(|_| runs.forbidden(&host, 10, true)).collect();
        assert_eq!(run.iter().position(|&b| b), Some(19), "{run:?}");
    }

    #[test]
    fn a_run_broken_by_unreported_time_starts_again_unless_a_controller_reports() {
        let (runs, host) = (ForbiddenRuns::default(), HostState::default());
        (0..FORBIDDEN_RUN - 1).for_each(|_| {
            runs.forbidden(&host, 10, true);
        });
        assert!(
            !runs.forbidden(&host, 10 + WATCH_MS, true),
            "successes went unreported meanwhile: a new run"
        );
        let (runs, host) = (ForbiddenRuns::default(), HostState::default());
        (0..FORBIDDEN_RUN - 1).for_each(|_| {
            runs.forbidden(&host, 10, false);
        });
        assert!(
            runs.forbidden(&host, 10 + WATCH_MS, false),
            "every acceptance is reported"
        );
    }
}
