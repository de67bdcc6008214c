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
//! A rate limiter that refuses each request over its rate with a bare 403
//! (nginx with `limit_req_status 403`) makes no long run: it accepts one
//! request per interval. Under the adaptive limiter, a host whose answers
//! are half bare 403s or more, and whose rate no refusal measured, is
//! given a trial of the pace (`adaptive/rate/trial.rs`): held at half
//! what it accepted over the last second for [`TRIAL_ANSWERS`] answers
//! (or two seconds), and at half of that again, twice at most, while its
//! share of 403s has not fallen. A limiter's share falls to a quarter or
//! less there, and its 403s are refusals for rate from then on (429s, as
//! a block's), searched upward from the trial's pace; forbidden pages stay
//! as many, and the host goes back to its pace before the trial, its 403s
//! pages for good. Unpaced, a crawl had nginx refuse 96-99.7 % of its
//! sends so.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio::time::Instant;

use super::adaptive::Controller;
use super::hosts::HostState;
use super::shared::WATCH_MS;
use crate::clock::CoarseClock;

/// The shortest run of bare 403s that is a block's.
pub(crate) const FORBIDDEN_RUN: u32 = 8;
/// The longest: a host that forbids nearly everything.
const LONGEST_RUN: u32 = 1_000;
/// How rare a run of chance the threshold allows, per run.
const CHANCE: f64 = 1e-6;
/// The counts are halved past this many answers: the share follows the
/// host's latest few thousand.
const COUNTED: u32 = 4_096;

/// Answers to sends made at a trial's pace that judge it; as many before
/// it, half of them bare 403s or more, call for one.
pub(crate) const TRIAL_ANSWERS: u32 = 12;
/// Trials at half the pace before the last, at most, before the 403s are
/// judged forbidden pages: the first pace is half what the host accepted
/// over a second, which a burst may have filled.
const TRIAL_STEPS: u8 = 2;
/// The longest a trial counts its answers, at least [`TRIAL_LEAST`] of
/// them: halved a few times, a slow host's pace takes seconds an answer,
/// and a host whose pages are forbidden is slowed for the trials' time.
const TRIAL_MS: u64 = 2_000;
const TRIAL_LEAST: u32 = 4;
/// How far the share of 403s must fall at the trial's pace for them to be
/// a limiter's refusals: to a quarter of what it was, or under.
const FELL_TO: f64 = 0.25;

/// What a host's bare 403s are (`HostState::forbidden_kind`).
const UNKNOWN: u8 = 0;
const PAGES: u8 = 1;
const RATE: u8 = 2;

/// What a trial of the pace found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The 403s fell with the pace: a rate limiter's refusals.
    Rate,
    /// They did not: the next trial, at half the pace.
    Lower,
    /// They did not at the last trial either: forbidden pages. The
    /// trial's pace goes.
    Pages,
}

/// Whether `host`'s bare 403s are a rate limiter's refusals, as a trial
/// of the pace found.
#[inline]
pub(crate) fn refuse_for_rate(host: &HostState) -> bool {
    host.forbidden_kind.load(Ordering::Relaxed) == RATE
}

/// Whether `host` calls for a trial of the pace: none yet, and at least
/// [`TRIAL_ANSWERS`] answers counted, half of them bare 403s or more.
pub(crate) fn trial_due(host: &HostState) -> bool {
    if host.forbidden_kind.load(Ordering::Relaxed) != UNKNOWN
        || host.trial_from_ms.load(Ordering::Relaxed) != 0
    {
        return false;
    }
    let answers = host.answers_counted.load(Ordering::Relaxed);
    answers >= TRIAL_ANSWERS && 2 * host.forbidden_counted.load(Ordering::Relaxed) >= answers
}

/// The trial's pace is set, at `now_ms` (`started`), or could not be (a
/// pace the host's refusals set, or nothing accepted: its 403s are pages).
pub(crate) fn trial_began(host: &HostState, now_ms: u64, started: bool) {
    if !started {
        host.forbidden_kind.store(PAGES, Ordering::Relaxed);
        return;
    }
    let answers = host.answers_counted.load(Ordering::Relaxed).max(1);
    let share = f64::from(host.forbidden_counted.load(Ordering::Relaxed)) / f64::from(answers);
    host.trial_share_before
        .store((share.min(1.0) * 1e6) as u32, Ordering::Relaxed);
    host.trial_steps.store(0, Ordering::Relaxed);
    trial_paced(host, now_ms);
}

/// The next trial's pace is set at `now_ms` (see [`Verdict::Lower`]), or
/// a refusal made the pace its own (`going_on` false: no more trials, the
/// 403s left as pages).
pub(crate) fn trial_lowered(host: &HostState, now_ms: u64, going_on: bool) {
    if going_on {
        trial_paced(host, now_ms);
    } else {
        host.forbidden_kind.store(PAGES, Ordering::Relaxed);
    }
}

fn trial_paced(host: &HostState, now_ms: u64) {
    host.trial_answers.store(0, Ordering::Relaxed);
    host.trial_forbidden.store(0, Ordering::Relaxed);
    host.trial_from_ms.store(now_ms.max(1), Ordering::Relaxed);
}

/// An answer to a request sent at `sent_ms` (coarse ms), a bare 403 or
/// not: counted by the trial under way, if sent at its pace, and its
/// verdict once [`TRIAL_ANSWERS`] are in, or [`TRIAL_MS`] has passed.
pub(crate) fn trial_answer(host: &HostState, sent_ms: u64, forbidden: bool) -> Option<Verdict> {
    let from = host.trial_from_ms.load(Ordering::Relaxed);
    if from == 0 || sent_ms <= from {
        return None;
    }
    if forbidden {
        host.trial_forbidden.fetch_add(1, Ordering::Relaxed);
    }
    let answers = host
        .trial_answers
        .fetch_add(1, Ordering::Relaxed)
        .saturating_add(1);
    let long = sent_ms.saturating_sub(from) >= TRIAL_MS && answers >= TRIAL_LEAST;
    if answers < TRIAL_ANSWERS && !long {
        return None;
    }
    if host.trial_from_ms.swap(0, Ordering::Relaxed) == 0 {
        // Judged by another thread's answer meanwhile.
        return None;
    }
    let after = f64::from(host.trial_forbidden.load(Ordering::Relaxed)) / f64::from(answers);
    let before = f64::from(host.trial_share_before.load(Ordering::Relaxed)) / 1e6;
    if after <= FELL_TO * before {
        host.forbidden_kind.store(RATE, Ordering::Relaxed);
        return Some(Verdict::Rate);
    }
    if host.trial_steps.fetch_add(1, Ordering::Relaxed) < TRIAL_STEPS {
        return Some(Verdict::Lower);
    }
    host.forbidden_kind.store(PAGES, Ordering::Relaxed);
    Some(Verdict::Pages)
}

/// What a trial's `verdict`, or an answer that may call for one, does to
/// `host`'s controller, under its lock (one trial at a time).
#[cold]
pub(crate) fn trial_step(
    host: &HostState,
    c: &mut Controller,
    now: Instant,
    verdict: Option<Verdict>,
    clock: &CoarseClock,
) {
    match verdict {
        Some(Verdict::Rate) => c.confirm_trial(now),
        Some(Verdict::Lower) => {
            let going_on = c.lower_trial(now);
            trial_lowered(host, clock.now_ms(), going_on);
        }
        Some(Verdict::Pages) => c.end_trial(),
        None => {}
    }
    if trial_due(host) {
        if let Some(started) = c.start_trial(now) {
            trial_began(host, clock.now_ms(), started);
        }
    }
}

/// The layer's view of the runs: when any host last answered a bare 403,
/// so that successes are reported to the host map for a while after it
/// (see `report.rs`), and a success ends its host's run.
#[derive(Debug, Default)]
pub(crate) struct ForbiddenRuns {
    /// Coarse ms of the latest bare 403 from any host; 0 for none.
    latest_ms: std::sync::atomic::AtomicU64,
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

    /// A host with `forbidden` bare 403s of `answers` counted.
    fn counted(forbidden: u32, answers: u32) -> HostState {
        let host = HostState::default();
        host.forbidden_counted.store(forbidden, Ordering::Relaxed);
        host.answers_counted.store(answers, Ordering::Relaxed);
        host
    }

    #[test]
    fn a_trial_is_due_at_half_403s_once_and_judges_by_the_share_at_its_pace() {
        assert!(!trial_due(&counted(7, 15)), "too few answers");
        assert!(!trial_due(&counted(7, 16)), "under half");
        let host = counted(12, 16);
        assert!(trial_due(&host));
        trial_began(&host, 1_000, true);
        assert!(!trial_due(&host), "one at a time");
        assert_eq!(trial_answer(&host, 1_000, true), None, "sent before its pace");
        for i in 0..TRIAL_ANSWERS - 1 {
            assert_eq!(trial_answer(&host, 1_001, i == 0), None);
        }
        // One 403 in sixteen against three in four: a limiter's.
        assert_eq!(trial_answer(&host, 1_001, false), Some(Verdict::Rate));
        assert!(refuse_for_rate(&host));
        assert!(!trial_due(&host), "judged for good");

        // As many 403s at the pace, and at each half of it: pages.
        let host = counted(12, 16);
        trial_began(&host, 1_000, true);
        let mut verdicts = Vec::new();
        for step in 0..=u64::from(TRIAL_STEPS) {
            let from = 1_000 + 100 * step;
            if step > 0 {
                trial_lowered(&host, from, true);
            }
            verdicts.extend((0..TRIAL_ANSWERS).filter_map(|i| trial_answer(&host, from + 1, i % 4 != 0)));
        }
        assert_eq!(verdicts, [Verdict::Lower, Verdict::Lower, Verdict::Pages]);
        assert!(!refuse_for_rate(&host));

        // A trial's pace that answers slowly is judged from a few answers
        // once two seconds have passed.
        let host = counted(12, 16);
        trial_began(&host, 1_000, true);
        let slow: Vec<_> = (0..TRIAL_LEAST)
            .filter_map(|i| trial_answer(&host, 1_001 + u64::from(i) * TRIAL_MS, false))
            .collect();
        assert_eq!(slow, [Verdict::Rate]);

        let host = counted(12, 16);
        trial_began(&host, 1_000, false);
        assert!(
            !trial_due(&host) && !refuse_for_rate(&host),
            "no pace to try: pages"
        );
    }

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
