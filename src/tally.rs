//! Answers counted per 100 ms of Unix time: what a host's rate control
//! counts for a fleet, and what the fleet reports to Redis with a lease
//! (`fleet::answers`). Outside both, so that each uses it without
//! depending on the other; without the `redis` feature it is only counted.

use std::collections::VecDeque;
use std::fmt::Write as _;

/// One span of Unix time, ms.
pub(crate) const SPAN_MS: u64 = 100;
/// The most spans a tally holds (the latest): six seconds and a little.
const HELD: usize = 64;

/// Accepted and refused answers in one span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// Unix ms over [`SPAN_MS`].
    pub(crate) index: u64,
    pub(crate) accepted: u32,
    pub(crate) refused: u32,
}

/// Answers not yet handed on, per span (the latest [`HELD`]).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Tally {
    spans: VecDeque<Span>,
}

impl Tally {
    /// Adds `accepted` and `refused` answers received at `unix_ms`.
    pub(crate) fn add(&mut self, unix_ms: u64, accepted: u32, refused: u32) {
        let index = unix_ms / SPAN_MS;
        // Answers come in time order, about: the span is the last one, or
        // near it.
        let s = match self.spans.iter_mut().rev().find(|s| s.index == index) {
            Some(s) => s,
            None => {
                if self.spans.len() >= HELD {
                    self.spans.pop_front();
                }
                self.spans.push_back(Span {
                    index,
                    accepted: 0,
                    refused: 0,
                });
                self.spans.back_mut().expect("just pushed")
            }
        };
        s.accepted = s.accepted.saturating_add(accepted);
        s.refused = s.refused.saturating_add(refused);
    }

    /// Moves `other`'s counts into this tally.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn append(&mut self, other: &mut Tally) {
        for s in other.spans.drain(..) {
            self.add(s.index * SPAN_MS, s.accepted, s.refused);
        }
    }

    /// The counts for the lease script: `<index> <accepted> <refused>…`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        for s in &self.spans {
            let _ = write!(text, "{} {} {} ", s.index, s.accepted, s.refused);
        }
        text
    }

    /// Puts back `earlier` counts whose report failed, before the ones
    /// counted since (the latest [`HELD`] spans are kept).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn restore(&mut self, mut earlier: Tally) {
        earlier.spans.append(&mut self.spans);
        let extra = earlier.spans.len().saturating_sub(HELD);
        earlier.spans.drain(..extra);
        self.spans = earlier.spans;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> usize {
        text.split(' ').filter(|p| !p.is_empty()).count()
    }

    #[test]
    fn a_tally_sums_per_span() {
        let mut t = Tally::default();
        t.add(1_000, 1, 0);
        t.add(1_050, 1, 0);
        t.add(1_099, 0, 1);
        t.add(1_100, 1, 0);
        // A late answer goes to its own span.
        t.add(1_020, 1, 0);
        assert_eq!(t.encode(), "10 3 1 11 1 0 ");
        assert_eq!(std::mem::take(&mut t).encode(), "10 3 1 11 1 0 ");
        assert_eq!(t.encode(), "", "taken once");
    }

    #[test]
    fn appended_counts_merge_into_their_spans() {
        let mut fleet = Tally::default();
        fleet.add(1_000, 2, 0);
        let mut counted = Tally::default();
        counted.add(1_010, 1, 1);
        counted.add(1_120, 4, 0);
        fleet.append(&mut counted);
        assert_eq!(fleet.encode(), "10 3 1 11 4 0 ");
        assert_eq!(counted.encode(), "", "moved, not copied");
    }

    #[test]
    fn a_tally_keeps_the_latest_spans_and_takes_back_a_failed_report() {
        let mut t = Tally::default();
        for i in 0..(HELD as u64 + 5) {
            t.add(i * SPAN_MS, 1, 0);
        }
        let report = t.encode();
        assert!(report.starts_with("5 1 0 "), "{report}");
        assert_eq!(words(&report), 3 * HELD);
        // A report that failed goes back before what came since.
        let mut failed = Tally::default();
        failed.add(700, 0, 1);
        let mut since = Tally::default();
        since.add(900, 1, 0);
        since.restore(failed);
        assert_eq!(since.encode(), "7 0 1 9 1 0 ");
        // Put back before a full tally: the oldest put back go first.
        let mut full = std::mem::take(&mut t);
        full.restore(since);
        let text = full.encode();
        assert_eq!(words(&text), 3 * HELD);
        assert!(text.starts_with("5 1 0 ") && !text.contains(" 0 1 "), "{text}");
    }
}
