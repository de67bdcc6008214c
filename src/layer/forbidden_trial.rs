//! A trial of the pace for a host whose bare 403s may be a rate
//! limiter's refusals, not forbidden pages.
//!
//! A rate limiter that refuses each request over its rate with a bare 403
//! (nginx with `limit_req_status 403`) makes no long run: it accepts one
//! request per interval. Under the adaptive limiter, a host whose answers
//! are half bare 403s or more is given a trial of the pace
//! (`adaptive/rate/trial.rs`): held at half what it accepted over the
//! last second for [`TRIAL_ANSWERS`] answers (or two seconds), and at
//! half of that again, twice at most, while its share of 403s has not
//! fallen. A limiter's share falls to a quarter or less there, and its
//! 403s are refusals for rate from then on (429s, as a block's), searched
//! upward from the trial's pace; forbidden pages stay as many, and the
//! host goes back to its pace before the trial, its 403s pages for good,
//! which count as served from then on (they passed its limiter, as
//! missing pages do). Unpaced, a crawl had nginx refuse 96-99.7 % of its
//! sends so.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::adaptive::Controller;
use super::hosts::HostState;
use crate::clock::CoarseClock;

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

/// Whether `host`'s bare 403s are forbidden pages, as a trial of the pace
/// found: they passed its rate limiter, and count as served (see
/// `report.rs`).
#[inline]
pub(crate) fn forbidden_pages(host: &HostState) -> bool {
    host.forbidden_kind.load(Ordering::Relaxed) == PAGES
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

/// The trial's pace is set, at `now_ms` (`started`), or could not be
/// (nothing accepted: its 403s are pages).
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
    let pace = c.rate_control();
    match verdict {
        Some(Verdict::Rate) => pace.confirm_trial(now),
        Some(Verdict::Lower) => {
            let going_on = pace.lower_trial(now);
            trial_lowered(host, clock.now_ms(), going_on);
        }
        Some(Verdict::Pages) => pace.end_trial(),
        None => {}
    }
    if trial_due(host) {
        if let Some(started) = pace.start_trial(now) {
            trial_began(host, clock.now_ms(), started);
        }
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
}
