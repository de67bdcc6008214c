//! The spacing of recent sends and their outcomes: what tells a limiter
//! without a burst (nginx `limit_req` without `burst=`, its default) and
//! measures its rate.
//!
//! Such a limiter accepts a request only if one interval of its rate has
//! passed since the last request it accepted, and refuses it otherwise.
//! Sent a little faster than that, it refuses every request that comes too
//! soon and so accepts well under its rate: what it accepts at the limit is
//! no measure of it. The gaps are: every refused request came sooner after
//! the last accepted one than every accepted request did, and the rate lies
//! between the two. A limiter with a burst accepts requests close together
//! too, so its gaps never separate that cleanly.

use std::collections::VecDeque;

use tokio::time::Instant;

/// Outcomes kept, the latest: a round trip's worth and more at a few
/// hundred a second.
const KEPT: usize = 64;
/// Accepted requests needed for the gaps to tell.
const MIN_ACCEPTED: usize = 4;
/// Refused requests needed for the gaps to tell. Two: under `Retry-After`
/// each refusal costs a pause, and four took a crawl's first half minute
/// (nginx without `burst=` at 20/s was held at 80 % meanwhile). The
/// opening flood tells a limiter with a burst apart: it accepts requests
/// sent together, so its accepted gaps never clear its refused ones.
const MIN_REFUSED: usize = 2;
/// Sends this soon after the host's first (seconds since it) went with
/// it: the opening flood's requests leave within a millisecond or two.
/// Under a limiter's interval up to 200/s.
const TOGETHER: f32 = 0.005;
/// How long the gaps of sends that left the latest [`KEPT`] still count,
/// in seconds: at a few hundred a second the opening flood's refusal
/// leaves them before the search's first refusal comes, and a search at
/// 500/s refused once was held at 84 % for want of a second refusal.
/// Longer, and a rate that changed since would be read by stale gaps.
const OLDER_FOR: f32 = 30.0;

/// Recent sends in the order they were sent, with their outcome.
#[derive(Debug)]
pub(crate) struct Spacing {
    base: Instant,
    /// Seconds since `base` at send, accepted.
    sends: VecDeque<(f32, bool)>,
    /// Of the sends that went together first, the host accepted one and
    /// refused the others: a limiter without a burst.
    opened_without_burst: bool,
    /// The gaps of sends that left `sends`, lately (boxed: read and
    /// changed only as sends leave and at a refusal).
    older: Box<Older>,
}

/// The gaps of sends that left the latest [`KEPT`], for [`OLDER_FOR`]:
/// folded as they leave, in the order they were sent.
#[derive(Debug, Clone, Copy)]
struct Older {
    /// When the first folded send was sent.
    since: f32,
    /// The latest folded accepted send.
    last_accepted: Option<f32>,
    gaps: Gaps,
}

/// The gaps after the last accepted send, of accepted and refused sends.
#[derive(Debug, Clone, Copy)]
struct Gaps {
    shortest_accepted: f32,
    longest_refused: f32,
    accepted: usize,
    refused: usize,
}

impl Gaps {
    const NONE: Self = Self {
        shortest_accepted: f32::MAX,
        longest_refused: 0.0,
        accepted: 0,
        refused: 0,
    };

    /// Counts a send at `t` with `accepted`, after the accepted one at
    /// `last` (none: its gap is unknown, and only an acceptance counts, as
    /// the next one's start).
    fn add(&mut self, last: &mut Option<f32>, t: f32, accepted: bool) {
        let Some(from) = *last else {
            if accepted {
                *last = Some(t);
            }
            return;
        };
        let gap = t - from;
        if accepted {
            self.shortest_accepted = self.shortest_accepted.min(gap);
            self.accepted += 1;
            *last = Some(t);
        } else {
            self.longest_refused = self.longest_refused.max(gap);
            self.refused += 1;
        }
    }
}

impl Spacing {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            base: now,
            sends: VecDeque::with_capacity(KEPT),
            opened_without_burst: false,
            older: Box::new(Older {
                since: 0.0,
                last_accepted: None,
                gaps: Gaps::NONE,
            }),
        }
    }

    /// The answer to a request sent at `sent_at`.
    pub(crate) fn record(&mut self, sent_at: Instant, accepted: bool) {
        let t = sent_at.saturating_duration_since(self.base).as_secs_f32();
        if self.sends.len() >= KEPT {
            if let Some((left, ok)) = self.sends.pop_front() {
                let o = &mut *self.older;
                if left - o.since > OLDER_FOR {
                    o.since = left;
                    o.gaps = Gaps::NONE;
                }
                o.gaps.add(&mut o.last_accepted, left, ok);
            }
        }
        // Answers come nearly in the order of their sends: mostly at the
        // back, otherwise inserted from the back.
        if self.sends.back().is_none_or(|&(s, _)| s <= t) {
            self.sends.push_back((t, accepted));
        } else {
            let at = self.sends.iter().rposition(|&(s, _)| s <= t).map_or(0, |i| i + 1);
            self.sends.insert(at, (t, accepted));
        }
        if t <= TOGETHER {
            // Read again as the opening's answers come, in any order.
            let opening = self.sends.iter().take_while(|&&(s, _)| s <= TOGETHER);
            let (accepted, refused) = opening.fold((0, 0), |(a, r), &(_, ok)| if ok { (a + 1, r) } else { (a, r + 1) });
            self.opened_without_burst = accepted == 1 && refused > 0;
        }
    }

    /// Whether the host accepted one of the sends that went together
    /// first and refused the others: a limiter without a burst (nginx
    /// `limit_req` without `burst=` at up to a few hundred a second).
    /// A limiter with a burst accepts two or more.
    pub(crate) fn opened_without_burst(&self) -> bool {
        self.opened_without_burst
    }

    /// The rates a limiter without a burst may have, if the recent gaps
    /// show one: every refused request came sooner after the last accepted
    /// one than every accepted request did. From one over the shortest gap
    /// after which a request was accepted (the rate it measures) to one
    /// over the longest gap after which one was refused. Only sends before
    /// `answered_before` count: a later one's neighbours may be unanswered
    /// yet (a slow backend refuses at once and serves a round trip later).
    pub(crate) fn no_burst_rates(&self, answered_before: Instant) -> Option<(f64, f64)> {
        let until = answered_before.saturating_duration_since(self.base).as_secs_f32();
        let mut last_accepted = self.older.last_accepted;
        let mut g = self.older.gaps;
        for &(t, ok) in self.sends.iter().take_while(|&&(t, _)| t <= until) {
            g.add(&mut last_accepted, t, ok);
        }
        (g.accepted >= MIN_ACCEPTED
            && g.refused >= MIN_REFUSED
            && g.longest_refused < g.shortest_accepted
            && g.longest_refused > 0.0)
            .then(|| {
                (
                    1.0 / f64::from(g.shortest_accepted),
                    1.0 / f64::from(g.longest_refused),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(now: Instant, outcomes: &[(u64, bool)]) -> Spacing {
        let mut s = Spacing::new(now);
        for &(ms, ok) in outcomes {
            s.record(now + Duration::from_millis(ms), ok);
        }
        s
    }

    #[tokio::test(start_paused = true)]
    async fn a_limiter_without_a_burst_is_measured_by_its_gaps() {
        // 100/s without a burst, sent to every 9 or 10 ms (a pace of 108/s
        // on a millisecond timer): the 9 ms gaps are refused. It accepts
        // some 60/s, and its rate is one over the 10 ms gap.
        let now = Instant::now();
        let mut outcomes = Vec::new();
        let (mut t, mut last) = (0u64, None::<u64>);
        for i in 0..30 {
            let ok = last.is_none_or(|l| t - l >= 10);
            if ok {
                last = Some(t);
            }
            outcomes.push((t, ok));
            t += if i % 3 == 2 { 10 } else { 9 };
        }
        let (rate, top) = run(now, &outcomes)
            .no_burst_rates(now + Duration::from_secs(1))
            .expect("the gaps tell");
        assert!((rate - 100.0).abs() < 0.5, "{rate}");
        assert!((top - 111.1).abs() < 0.5, "the 9 ms gaps were refused: {top}");
    }

    #[tokio::test(start_paused = true)]
    async fn sends_whose_neighbours_are_unanswered_do_not_count() {
        // 100/s without a burst sent to every 8 ms: every other request is
        // refused. A slow backend refuses at once and serves later, so the
        // latest refusal (at 104 ms) is in while the acceptance before it
        // (96 ms) is not, and its gap reads 24 ms, longer than accepted ones.
        let now = Instant::now();
        let mut outcomes: Vec<(u64, bool)> = (0..12).map(|i| (i * 8, i % 2 == 0)).collect();
        outcomes.push((104, false));
        let s = run(now, &outcomes);
        let ms = |n| now + Duration::from_millis(n);
        assert_eq!(s.no_burst_rates(ms(200)), None, "unanswered, the gaps mislead");
        let (low, top) = s.no_burst_rates(ms(92)).expect("answered, the gaps tell");
        assert!(
            (low - 62.5).abs() < 0.1 && (top - 125.0).abs() < 0.1,
            "{low}–{top}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn two_refusals_and_four_acceptances_tell() {
        // 20/s without a burst behind `Retry-After`: the flood's second
        // request refused at once, the search's at 44 ms; accepted 55 ms
        // apart and more.
        let now = Instant::now();
        let mut outcomes = vec![(0, true), (2, false), (1000, true), (1300, true), (1500, true)];
        outcomes.extend([(1600, true), (1655, true), (1699, false)]);
        let s = run(now, &outcomes);
        let (low, top) = s
            .no_burst_rates(now + Duration::from_secs(2))
            .expect("the gaps tell");
        assert!(
            (low - 18.2).abs() < 0.1 && (top - 22.7).abs() < 0.1,
            "{low}–{top}"
        );
        // The search's refusal alone does not.
        let s = run(now, &outcomes[2..]);
        assert_eq!(s.no_burst_rates(now + Duration::from_secs(2)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_limiter_with_a_burst_shows_no_clean_gaps() {
        // Accepted two at once (a burst), refused later ones 5 ms apart.
        let now = Instant::now();
        let outcomes = [
            (0, true),
            (0, true),
            (5, false),
            (10, true),
            (10, true),
            (15, false),
            (20, true),
            (20, true),
            (25, false),
            (30, true),
            (35, false),
            (40, true),
        ];
        assert_eq!(
            run(now, &outcomes).no_burst_rates(now + Duration::from_secs(1)),
            None
        );
        // Answers out of order are put back in the order of their sends.
        let mut s = Spacing::new(now);
        for (ms, ok) in [(0, true), (20, true), (10, true), (30, true), (40, true)] {
            s.record(now + Duration::from_millis(ms), ok);
        }
        let order: Vec<f32> = s.sends.iter().map(|&(t, _)| t).collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn gaps_that_left_the_latest_sends_still_count_for_a_while() {
        // 500/s without a burst: the flood's second request refused 1 ms
        // after its first; a search 2 and 3 ms apart, more sends than
        // are kept; then one refused 1 ms after an acceptance.
        let now = Instant::now();
        let mut outcomes = vec![(0, true), (1, false)];
        let mut t = 1000;
        for i in 0..100 {
            outcomes.push((t, true));
            t += if i % 2 == 0 { 2 } else { 3 };
        }
        outcomes.push((t - 2, false));
        let s = run(now, &outcomes);
        let (low, top) = s
            .no_burst_rates(now + Duration::from_secs(2))
            .expect("the flood's refusal counts");
        assert!((low - 500.0).abs() < 1.0 && (top - 1000.0).abs() < 1.0, "{low}–{top}");
        // A burst the flood showed (two accepted at once) still rules a
        // limiter without one out.
        outcomes[1] = (0, true);
        outcomes.insert(2, (1, false));
        outcomes.insert(3, (1, false));
        assert_eq!(run(now, &outcomes).no_burst_rates(now + Duration::from_secs(2)), None);
        // Not after [`OLDER_FOR`].
        let late: Vec<(u64, bool)> = [(0, true), (1, false)]
            .into_iter()
            .chain(outcomes[4..].iter().map(|&(t, ok)| (t + 40_000, ok)))
            .collect();
        assert_eq!(run(now, &late).no_burst_rates(now + Duration::from_secs(50)), None);
    }
}
