//! The fleet's answers from a host: how many requests every process had
//! accepted and refused, per tenth of a second of Unix time, summed in
//! Redis by the lease script.
//!
//! Each process measures a limiter from its own answers, and its share of
//! them is whatever its requests raced to. Four processes reading "what
//! the host accepted in a second" over four different seconds summed to
//! 692 requests a second under a sliding window of 500: the window, which
//! counts refusals, then refused for nine seconds while each process cut
//! its own pace 5 % at a time. Read over one span, from counts everybody
//! reports alike, the fleet's acceptances are bounded by the limiter: no
//! window of a second accepts more than its count, and no GCRA more than
//! its rate and burst. So while the host refuses, the paces together need
//! not go over the most the fleet saw accepted in a second (see
//! [`FleetLoad::cap`]). The bound only ever cuts: for a limiter with a
//! burst the peak is the rate and the burst, so a fleet whose readings
//! sum under the rate (424/s in one run) is left to its probes.

use std::collections::VecDeque;
use std::fmt::Write as _;

/// One count's span of Unix time, ms.
pub(crate) const BUCKET_MS: u64 = 100;
/// Spans the fleet keeps and returns: six seconds' worth.
pub(crate) const KEPT: u64 = 60;
/// Spans in a second.
const PER_SECOND: usize = (1000 / BUCKET_MS) as usize;
/// Refusals count when this recent, in spans (two seconds): those of an
/// opening flood still in the kept spans say nothing of the paces now.
const RECENT: usize = 2 * PER_SECOND;

/// Accepted and refused answers in one span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// Unix ms over [`BUCKET_MS`].
    pub(crate) index: u64,
    pub(crate) accepted: u32,
    pub(crate) refused: u32,
}

/// This process's answers not yet reported to the fleet (the latest
/// [`KEPT`] spans).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Tally {
    buckets: VecDeque<Bucket>,
}

impl Tally {
    /// Adds `accepted` and `refused` answers received at `unix_ms`.
    pub(crate) fn add(&mut self, unix_ms: u64, accepted: u32, refused: u32) {
        let index = unix_ms / BUCKET_MS;
        let b = match self.buckets.iter_mut().rev().find(|b| b.index == index) {
            Some(b) => b,
            None => {
                // Answers come in time order, about: a late one opens its
                // span again at the end, and the report sums both.
                if self.buckets.len() >= KEPT as usize {
                    self.buckets.pop_front();
                }
                self.buckets.push_back(Bucket {
                    index,
                    accepted: 0,
                    refused: 0,
                });
                self.buckets.back_mut().expect("just pushed")
            }
        };
        b.accepted = b.accepted.saturating_add(accepted);
        b.refused = b.refused.saturating_add(refused);
    }

    /// The counts for the lease script: `<index> <accepted> <refused>…`.
    pub(crate) fn encode(&self) -> String {
        let mut s = String::new();
        for b in &self.buckets {
            let _ = write!(s, "{} {} {} ", b.index, b.accepted, b.refused);
        }
        s
    }

    /// Puts back `earlier` counts whose report failed, before the ones
    /// counted since (the latest [`KEPT`] spans are kept).
    pub(crate) fn restore(&mut self, mut earlier: Tally) {
        earlier.buckets.append(&mut self.buckets);
        let extra = earlier.buckets.len().saturating_sub(KEPT as usize);
        earlier.buckets.drain(..extra);
        self.buckets = earlier.buckets;
    }
}

/// What the fleet's answers from a host say, as of a lease: over the
/// spans every live process had reported.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FleetLoad {
    /// The spans every live process had reported end here, Unix ms.
    pub(crate) through_ms: u64,
    /// The most the fleet had accepted in a second of them (a second
    /// sliding by a span), per second.
    pub(crate) peak: f64,
    /// The fleet's refusals in their last [`RECENT`] spans.
    pub(crate) refused: u64,
    /// The live processes' paces summed, requests per second.
    pub(crate) paces: f64,
}

impl FleetLoad {
    /// From the fleet's spans (any order), the first span not every live
    /// process had reported, and the paces summed; `None` with less than
    /// a second reported.
    pub(crate) fn from_buckets(buckets: &[Bucket], through: u64, paces: f64) -> Option<Self> {
        let from = through.checked_sub(KEPT)?;
        let mut counts = [(0u32, 0u32); KEPT as usize];
        let mut any = false;
        for b in buckets.iter().filter(|b| b.index >= from && b.index < through) {
            let slot = &mut counts[(b.index - from) as usize];
            slot.0 = slot.0.saturating_add(b.accepted);
            slot.1 = slot.1.saturating_add(b.refused);
            any = true;
        }
        if !any {
            return None;
        }
        let peak = counts
            .windows(PER_SECOND)
            .map(|w| w.iter().map(|c| u64::from(c.0)).sum::<u64>())
            .max()
            .unwrap_or(0);
        Some(Self {
            through_ms: through * BUCKET_MS,
            peak: peak as f64,
            refused: counts[KEPT as usize - RECENT..]
                .iter()
                .map(|c| u64::from(c.1))
                .sum(),
            paces: paces.max(0.0),
        })
    }

    /// The factor this process's pace should be cut by, if the fleet's
    /// paces together run over the most the fleet saw accepted in a second
    /// while the host refused: the paces together to 97 % of that, at most
    /// halved at once. `None` when nothing says the paces are too high.
    pub(crate) fn cap(&self) -> Option<f64> {
        /// Refusals in the span that say the host is at its limit, not a
        /// stray one.
        const MIN_REFUSED: u64 = 8;
        /// Where the paces together go: a little under the peak, which the
        /// limiter's jitter reaches.
        const UNDER_PEAK: f64 = 0.97;
        if self.refused < MIN_REFUSED || self.peak <= 0.0 || self.paces <= self.peak {
            return None;
        }
        Some((UNDER_PEAK * self.peak / self.paces).clamp(0.5, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(index: u64, accepted: u32, refused: u32) -> Bucket {
        Bucket {
            index,
            accepted,
            refused,
        }
    }

    #[test]
    fn a_tally_sums_per_span() {
        let mut t = Tally::default();
        t.add(1_000, 1, 0);
        t.add(1_050, 1, 0);
        t.add(1_099, 0, 1);
        t.add(1_100, 1, 0);
        assert_eq!(t.encode(), "10 2 1 11 1 0 ");
        assert_eq!(std::mem::take(&mut t).encode(), "10 2 1 11 1 0 ");
        assert_eq!(t.encode(), "", "taken once");
    }

    #[test]
    fn a_tally_keeps_the_latest_spans_and_takes_back_a_failed_report() {
        let mut t = Tally::default();
        for i in 0..(KEPT + 5) {
            t.add(i * BUCKET_MS, 1, 0);
        }
        let report = t.encode();
        assert!(report.starts_with("5 1 0 "), "{report}");
        assert_eq!(
            report.split(' ').filter(|p| !p.is_empty()).count(),
            3 * KEPT as usize
        );
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
        assert_eq!(
            text.split(' ').filter(|p| !p.is_empty()).count(),
            3 * KEPT as usize
        );
        assert!(text.starts_with("5 1 0 ") && !text.contains(" 0 1 "), "{text}");
    }

    #[test]
    fn the_peak_is_the_busiest_second_of_what_all_reported() {
        // 40 accepted per span for 8 spans, then 60 per span for 10: the
        // busiest second holds 600; refusals in spans 115 and 116, and
        // older ones (60, 70) that are not counted.
        let mut buckets: Vec<Bucket> = (100..108).map(|i| bucket(i, 40, 0)).collect();
        buckets.extend((108..118).map(|i| bucket(i, 60, u32::from(i == 115 || i == 116) * 5)));
        buckets.extend([bucket(60, 10, 50), bucket(70, 10, 50)]);
        // A span not yet reported by every process is left out.
        buckets.push(bucket(118, 900, 900));
        let load = FleetLoad::from_buckets(&buckets, 118, 692.0).unwrap();
        assert_eq!(load.peak, 600.0);
        assert_eq!(load.refused, 10);
        assert_eq!(load.through_ms, 11_800);
        let cap = load.cap().unwrap();
        assert!((cap - 0.97 * 600.0 / 692.0).abs() < 1e-9, "{cap}");
    }

    #[test]
    fn no_cap_without_refusals_or_below_the_peak() {
        let buckets: Vec<Bucket> = (100..120).map(|i| bucket(i, 50, 1)).collect();
        let load = FleetLoad::from_buckets(&buckets, 120, 600.0).unwrap();
        assert_eq!(load.peak, 500.0);
        // 20 refusals, paces over the peak: capped.
        assert!(load.cap().is_some());
        // Paces within the peak: nothing to cut.
        assert_eq!(FleetLoad { paces: 480.0, ..load }.cap(), None);
        // A stray refusal or two: not the limit.
        assert_eq!(FleetLoad { refused: 2, ..load }.cap(), None);
        // At most halved at once.
        assert_eq!(
            FleetLoad {
                paces: 5000.0,
                ..load
            }
            .cap(),
            Some(0.5)
        );
        assert_eq!(FleetLoad::from_buckets(&[], 120, 600.0), None);
        assert_eq!(FleetLoad::from_buckets(&buckets, 10, 600.0), None);
    }
}
