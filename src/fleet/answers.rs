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
//! [`FleetLoad::cap`]).
//!
//! Nor far under it. Where refusals pause nobody (`Retry-After: 0` or
//! none), no fleet cycle measures the host, and each process read its own
//! part of it when refused: four parts summed to 36-85 % of a GCRA's rate
//! (one part at 2/s), held for the half minute a probe waits after a loss.
//! So the most the fleet was accepted in a second that also held refusals
//! ([`FleetLoad::at_limit`]) is a reading of the host, and a process whose
//! pace is far under its share of it starts from that share, as far as
//! the room the live processes' paces leave under it goes, once the fleet
//! has refused nothing for two seconds (a process that drains or resumes
//! after refusals paces less than it holds). Not a second that holds the
//! first refusal kept: it may hold a burst spent at once.
//! Refusals cut a share raised past the rate back, each process's own and
//! the cap alike.

use crate::tally::{Span, SPAN_MS};

/// Spans the fleet keeps and returns: six seconds' worth.
pub(crate) const KEPT: u64 = 60;
/// Spans in a second.
const PER_SECOND: usize = (1000 / SPAN_MS) as usize;
/// Refusals count when this recent, in spans (two seconds): those of an
/// opening flood still in the kept spans say nothing of the paces now.
const RECENT: usize = 2 * PER_SECOND;

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
    /// The most the fleet had accepted in a second of them that also
    /// refused, after their first refusal: a reading at the host's limit
    /// (0 for none).
    pub(crate) peak_refusing: f64,
    /// The fleet's refusals in all of them.
    pub(crate) refused_kept: u64,
    /// The live processes' paces summed, requests per second.
    pub(crate) paces: f64,
}

impl FleetLoad {
    /// From the fleet's spans (any order), the first span not every live
    /// process had reported, and the paces summed; `None` with less than
    /// a second reported.
    pub(crate) fn from_buckets(spans: &[Span], through: u64, paces: f64) -> Option<Self> {
        let from = through.checked_sub(KEPT)?;
        let mut counts = [(0u32, 0u32); KEPT as usize];
        let mut any = false;
        for b in spans.iter().filter(|b| b.index >= from && b.index < through) {
            let slot = &mut counts[(b.index - from) as usize];
            slot.0 = slot.0.saturating_add(b.accepted);
            slot.1 = slot.1.saturating_add(b.refused);
            any = true;
        }
        if !any {
            return None;
        }
        // Seconds after the first refusal kept: the second that holds it
        // may hold a burst spent at once (a token bucket's first second
        // took twice its rate), read as the rate it raised four processes
        // to twice the host's room.
        let first_refusal = counts.iter().position(|c| c.1 > 0).unwrap_or(counts.len());
        let (mut peak, mut peak_refusing) = (0u64, 0u64);
        for (i, second) in counts.windows(PER_SECOND).enumerate() {
            let (accepted, refused) = second
                .iter()
                .fold((0u64, 0u64), |(a, r), c| (a + u64::from(c.0), r + u64::from(c.1)));
            peak = peak.max(accepted);
            if i > first_refusal && refused > 0 {
                peak_refusing = peak_refusing.max(accepted);
            }
        }
        Some(Self {
            through_ms: through * SPAN_MS,
            peak: peak as f64,
            peak_refusing: peak_refusing as f64,
            refused_kept: counts.iter().map(|c| u64::from(c.1)).sum(),
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
        if self.refused < MIN_REFUSED || self.peak <= 0.0 || self.paces <= self.peak {
            return None;
        }
        Some((UNDER_PEAK * self.peak / self.paces).clamp(0.5, 1.0))
    }

    /// What the fleet's answers show the host takes at its limit: 97 % of
    /// the most the fleet saw accepted in a second that also held
    /// refusals, after the first refusal kept (a second without refusals
    /// may show a rate the host has since dropped; the second of the first
    /// one, a burst). `None` without refusals enough to call it the limit.
    pub(crate) fn at_limit(&self) -> Option<f64> {
        (self.refused_kept >= MIN_REFUSED && self.peak_refusing > 0.0)
            .then_some(UNDER_PEAK * self.peak_refusing)
    }
}

/// Refusals in the span that say the host is at its limit, not a stray
/// one.
const MIN_REFUSED: u64 = 8;
/// Where the paces together go: a little under the peak, which the
/// limiter's jitter reaches.
const UNDER_PEAK: f64 = 0.97;

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(index: u64, accepted: u32, refused: u32) -> Span {
        Span {
            index,
            accepted,
            refused,
        }
    }

    #[test]
    fn the_peak_is_the_busiest_second_of_what_all_reported() {
        // 40 accepted per span for 8 spans, then 60 per span for 10: the
        // busiest second holds 600; refusals in spans 115 and 116, and
        // older ones (60, 70) that are not counted.
        let mut buckets: Vec<Span> = (100..108).map(|i| bucket(i, 40, 0)).collect();
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
        let buckets: Vec<Span> = (100..120).map(|i| bucket(i, 50, 1)).collect();
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

    #[test]
    fn the_limit_is_read_only_from_seconds_that_held_refusals() {
        // 600 a second accepted without a refusal, then 300 a second with
        // refusals (the host's limit fell): the limit is 300, not 600.
        let mut buckets: Vec<Span> = (100..110).map(|i| bucket(i, 60, 0)).collect();
        buckets.extend((110..120).map(|i| bucket(i, 30, 0)));
        buckets.extend((145..160).map(|i| bucket(i, 30, 2)));
        let load = FleetLoad::from_buckets(&buckets, 160, 150.0).unwrap();
        assert_eq!(load.peak, 600.0);
        assert_eq!(load.peak_refusing, 300.0);
        assert_eq!(load.at_limit(), Some(0.97 * 300.0));
        // Refused a while ago, not in the last two seconds: still a reading.
        assert_eq!(FleetLoad { refused: 0, ..load }.at_limit(), Some(0.97 * 300.0));
        // A stray refusal or two: not the limit.
        assert_eq!(
            FleetLoad {
                refused_kept: 2,
                ..load
            }
            .at_limit(),
            None
        );
        // A token bucket's first second: its burst and its rate taken at
        // once, then refused; the seconds after it hold the rate.
        let mut opening: Vec<Span> = (100..110)
            .map(|i| bucket(i, 60, u32::from(i == 109) * 20))
            .collect();
        opening.extend((110..130).map(|i| bucket(i, 30, u32::from(i % 5 == 0))));
        let load = FleetLoad::from_buckets(&opening, 130, 150.0).unwrap();
        assert_eq!(load.peak, 600.0);
        assert_eq!(load.peak_refusing, 300.0);
        let unrefused: Vec<Span> = (100..120).map(|i| bucket(i, 60, 0)).collect();
        assert_eq!(
            FleetLoad::from_buckets(&unrefused, 120, 150.0)
                .unwrap()
                .at_limit(),
            None
        );
    }
}
