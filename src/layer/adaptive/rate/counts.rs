//! What the host accepted since a point (the cut, the episode's first
//! refusal, the reference before the last cut), and the second a search's
//! first refusal read, read again once its acceptances are in.

use std::time::Duration;

use tokio::time::Instant;

use super::{Basis, RateControl, MIN_EVIDENCE};
use crate::layer::adaptive::meter::Meter;

/// The least share of refusals read as ignoring the pace: under where
/// the noise's decline (`noise.rs`) stops, so that no share falls
/// between the two (from 20 %, a seventh to a quarter refused was
/// neither rule's, and stalled the crawl).
pub(super) const IGNORED_FROM: f64 = 0.1;
/// From this share a decline's refusals come in blocks, as a window that
/// counts them refuses, not as noise does.
pub(super) const IN_BLOCKS_FROM: f64 = 0.5;

impl RateControl {
    /// The rate the host accepted the requests sent since the current
    /// refusal episode began at (so with no burst left), over the last
    /// second the meter keeps, once three quarters of a second of them is
    /// answered and enough were accepted to be a rate; `None` before.
    pub(super) fn accepted_in_episode(&mut self, now: Instant) -> Option<f64> {
        let since = self.episode_sent?.max(self.resumed_at);
        let (count, span) = self.meter.accepted_since(now, since);
        // Requests sent in the last round trip are not answered yet.
        let answered = span.checked_sub(self.served_rtt)?;
        (answered >= Duration::from_millis(750) && count >= MIN_EVIDENCE)
            .then(|| f64::from(count) / answered.as_secs_f64())
    }

    /// The rate the host accepted requests sent since the latest cut at.
    /// While it accepted steadily (no gap of two intervals at either end),
    /// the intervals between its first and latest acceptance measure it
    /// exactly, whatever the count: a GCRA driven past its rate accepts one
    /// request per interval. Otherwise (acceptance in bursts, or stopped),
    /// the count over the time it was counted in (cuts with few answers
    /// between them keep counting; over the time since the latest cut
    /// alone, 3/s read 5.2/s).
    pub(super) fn accepted_since_cut(&self, now: Instant) -> f64 {
        self.accepted_steadily_since_cut(now)
            .unwrap_or_else(|| self.count_rate(self.counted_from, now))
    }

    /// The intervals between the host's first and latest acceptance of
    /// requests sent since the cut, if it accepted steadily (see
    /// [`accepted_since_cut`](Self::accepted_since_cut)) and at least
    /// [`MIN_EVIDENCE`] of them: a rate however recent the cut.
    pub(super) fn accepted_steadily_since_cut(&self, now: Instant) -> Option<f64> {
        let exact = self.accepted_at_intervals_since_cut(now, MIN_EVIDENCE)?;
        let (first, _) = self.ok_span?;
        // Requests sent in the last round trip are not answered yet.
        let lead = first.saturating_duration_since(self.cut_at).as_secs_f64() - self.served_rtt.as_secs_f64();
        (lead <= 2.0 / exact).then_some(exact)
    }

    /// The rate between the host's first and latest acceptance of
    /// requests sent since the cut, at least `min` of them, while the
    /// latest is within two of their intervals of `now` (it has not
    /// stopped accepting).
    pub(super) fn accepted_at_intervals_since_cut(&self, now: Instant, min: u32) -> Option<f64> {
        let a = self.since_cut.0;
        let (first, last) = self.ok_span?;
        let span = last.saturating_duration_since(first).as_secs_f64();
        let tail = now.saturating_duration_since(last).as_secs_f64();
        steady_rate(a, min, span, tail)
    }

    /// Since the latest cut, at or below the accepted rate, the host
    /// refused at least as large a share as before it, and accepted enough
    /// for that share to mean something.
    pub(super) fn refusals_ignore_the_pace(&self, now: Instant) -> bool {
        let (a, r) = self.since_cut;
        let Some((share_before, pace_before, accepted_before)) = self.before_cut else {
            return false;
        };
        // Only a real cut tests whether the refusals follow the pace, and
        // only once its answers are in: refusals come back at once and
        // acceptances a round trip later (100 ms away, a GCRA with a burst
        // of 50 answering 503 read as refusing whatever the pace, and went
        // unpaced for ten seconds, refusing two sends in three).
        if self.pace > 0.7 * pace_before || !self.cut_answered(now) {
            return false;
        }
        let share = f64::from(r) / f64::from(a + r);
        // A rate limiter driven past its rate refuses a share that falls
        // with the pace, slowly when the pace is far past it (a guess its
        // burst inflated): its share is judged on twice the evidence,
        // unless the rate it accepted fell with the pace as well, as a
        // server's that refuses whatever the rate does.
        let accepted_fell = self.accepted_since_reference(now) <= 0.85 * accepted_before;
        let evidence = if accepted_fell {
            MIN_EVIDENCE
        } else {
            2 * MIN_EVIDENCE
        };
        a >= MIN_EVIDENCE / 2
            && a + r >= evidence
            && share >= IGNORED_FROM
            && share_before >= IGNORED_FROM
            && share >= 0.8 * share_before
    }

    /// The rate the host accepted requests sent since `counted_from` at.
    pub(super) fn accepted_since_reference(&self, now: Instant) -> f64 {
        self.count_rate(self.counted_from, now)
    }

    /// The accepted count since the cut over the time since `from`, less
    /// the round trip whose requests are not answered yet.
    pub(super) fn count_rate(&self, from: Instant, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(from).as_secs_f64() - self.served_rtt.as_secs_f64();
        f64::from(self.since_cut.0) / secs.max(0.001)
    }

    /// Starts counting the answers since the cut afresh.
    pub(super) fn restart_count(&mut self, now: Instant) {
        self.since_cut = (0, 0);
        self.ok_span = None;
        self.counted_from = now;
    }

    /// Reads again, once its acceptances are all answered, the second a
    /// search's first refusal read, and raises the estimate to it: a
    /// limiter refuses before the work and serves after it, so far away
    /// that reading missed what the host accepted in the last round trip
    /// before the refusal (200 ms away, a sliding window of 10/s read 9
    /// and held 8.8/s; of 3/s, read 2). At most
    /// [`read_again_at_most`](Self::read_again_at_most); and not when the host has
    /// since both accepted and refused: it is at its limit, which the
    /// meter measures, and a second before the refusal held a burst too
    /// (a GCRA of 50/s with a burst of 50 read 96/s there).
    pub(super) fn reread_second(&mut self, now: Instant) {
        if self.reread <= 0.0 || !self.cut_answered(now) {
            return;
        }
        let first = std::mem::take(&mut self.reread);
        let (accepted, refused) = self.since_cut;
        if self.basis != Basis::Measured || self.probing || (accepted > 0 && refused > 0) {
            return;
        }
        let Some(count) = self.meter.accepted_in_second_to(now, self.cut_at) else {
            return;
        };
        let cap = self.read_again_at_most(f64::from(first), Duration::ZERO);
        let again = f64::from(count).min(cap);
        if again > self.estimate {
            self.estimate = again;
            self.pace = self.pace.max(again * self.hold());
        }
    }

    /// The most a second may read once its late acceptances are in, when
    /// a second that ended `since` later read `last`: what four round
    /// trips of acceptances add, what slid out of the later second
    /// meanwhile (counted in the meter's slots, a second at most), and one
    /// more, which a count of a few a second misses at its edge (a window
    /// of 20 a second nearby read 19 and then 20, and a bound of four
    /// round trips of 2 ms kept 19). A window longer than a second that
    /// accepted a whole flood in one second reads far more.
    pub(super) fn read_again_at_most(&self, last: f64, since: Duration) -> f64 {
        let slid = (since + Meter::slot_len())
            .min(Duration::from_secs(1))
            .as_secs_f64();
        last * (1.0 + 4.0 * self.served_rtt.as_secs_f64() + slid) + 1.0
    }
}

/// The rate of `accepted` acceptances (at least `min`, and two) whose
/// first and latest came `span` seconds apart, while the latest came
/// `tail` seconds ago, within two of their intervals: the host has not
/// stopped accepting.
pub(super) fn steady_rate(accepted: u32, min: u32, span: f64, tail: f64) -> Option<f64> {
    if accepted < min.max(2) || span <= 0.0 {
        return None;
    }
    let rate = f64::from(accepted - 1) / span;
    (tail <= 2.0 / rate).then_some(rate)
}
