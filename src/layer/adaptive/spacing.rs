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

/// Recent sends in the order they were sent, with their outcome.
#[derive(Debug)]
pub(crate) struct Spacing {
    base: Instant,
    /// Seconds since `base` at send, accepted.
    sends: VecDeque<(f32, bool)>,
    /// Of the sends that went together first, how many the host accepted
    /// and whether it refused any, counted as the answers come: an
    /// opening of more sends than the log keeps (a fast host answers many
    /// within 5 ms) would leave only its latest there.
    opening: (u16, bool),
}

impl Spacing {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            base: now,
            sends: VecDeque::with_capacity(KEPT),
            opening: (0, false),
        }
    }

    /// The answer to a request sent at `sent_at`.
    pub(crate) fn record(&mut self, sent_at: Instant, accepted: bool) {
        let t = sent_at.saturating_duration_since(self.base).as_secs_f32();
        if self.sends.len() >= KEPT {
            self.sends.pop_front();
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
            let (taken, refused) = &mut self.opening;
            if accepted {
                *taken = taken.saturating_add(1);
            } else {
                *refused = true;
            }
        }
    }

    /// Whether the host accepted one of the sends that went together
    /// first and refused the others: a limiter without a burst (nginx
    /// `limit_req` without `burst=` at up to a few hundred a second).
    /// A limiter with a burst accepts two or more.
    pub(crate) fn opened_without_burst(&self) -> bool {
        self.opening == (1, true)
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
        let mut last_accepted: Option<f32> = None;
        let (mut shortest_accepted, mut longest_refused) = (f32::MAX, 0.0f32);
        let (mut accepted, mut refused) = (0, 0);
        for &(t, ok) in self.sends.iter().take_while(|&&(t, _)| t <= until) {
            let Some(last) = last_accepted else {
                if ok {
                    last_accepted = Some(t);
                }
                continue;
            };
            let gap = t - last;
            if ok {
                shortest_accepted = shortest_accepted.min(gap);
                accepted += 1;
                last_accepted = Some(t);
            } else {
                longest_refused = longest_refused.max(gap);
                refused += 1;
            }
        }
        (accepted >= MIN_ACCEPTED
            && refused >= MIN_REFUSED
            && longest_refused < shortest_accepted
            && longest_refused > 0.0)
            .then(|| {
                (
                    1.0 / f64::from(shortest_accepted),
                    1.0 / f64::from(longest_refused),
                )
            })
    }

    /// The refusals in a row since the latest accepted send, of the sends
    /// before `answered_before` (a later acceptance may be in flight), and
    /// the seconds from the first of them to the last. `None` without one.
    pub(crate) fn refused_in_a_row(&self, answered_before: Instant) -> Option<(usize, f64)> {
        let until = answered_before.saturating_duration_since(self.base).as_secs_f32();
        let mut answered = self.sends.iter().rev().skip_while(|&&(t, _)| t > until);
        let &(last, ok) = answered.next()?;
        if ok {
            return None;
        }
        let (n, first) = answered
            .take_while(|&&(_, ok)| !ok)
            .fold((1, last), |(n, _), &(t, _)| (n + 1, t));
        Some((n, f64::from(last - first)))
    }

    /// How a log of `window` seconds that counts every request, refused
    /// ones too, would have read the logged sends: the most requests it
    /// held before one it accepted and the fewest before one it refused,
    /// if the first is the fewer (the limit lies between them). Only sends
    /// whose window the log covers count.
    pub(crate) fn counted_in(&self, window: f32) -> Option<(u32, u32)> {
        let full = self.sends.len() >= KEPT;
        let oldest = self.sends.front()?.0;
        let (mut most_accepted, mut fewest_refused) = (None::<u32>, None::<u32>);
        let mut from = 0;
        for (i, &(t, ok)) in self.sends.iter().enumerate() {
            while self.sends[from].0 < t - window {
                from += 1;
            }
            if full && oldest > t - window {
                continue;
            }
            let held = (i - from) as u32;
            if ok {
                most_accepted = Some(most_accepted.map_or(held, |m| m.max(held)));
            } else {
                fewest_refused = Some(fewest_refused.map_or(held, |f| f.min(held)));
            }
        }
        let (most, fewest) = (most_accepted?, fewest_refused?);
        (most < fewest).then_some((most, fewest))
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
    async fn a_log_that_counts_refusals_is_read_from_what_it_held_before_each_send() {
        // Five per 10 s, refusals counted: a flood of ten (five taken),
        // a trickle refused a second apart, then two and four apart, and
        // the send at 21 s accepted: the log then held three.
        let now = Instant::now();
        let mut outcomes: Vec<(u64, bool)> = (0..10).map(|i| (i, i < 5)).collect();
        outcomes.extend((1..=9).map(|s| (s * 1000, false)));
        outcomes.extend([(11_000, false), (13_000, false), (17_000, false), (21_000, true)]);
        let s = run(now, &outcomes);
        assert_eq!(
            s.counted_in(10.0),
            Some((4, 5)),
            "at most four held before an acceptance, five before every refusal"
        );
        assert_eq!(s.counted_in(5.0), None, "the refusal at 17 s held one in 5 s");
        assert_eq!(s.counted_in(20.0), None, "the acceptance at 21 s held 12 in 20 s");
        // A flood of a hundred overfills the log, which keeps its last
        // 51 sends: those held more than the log shows, and do not count.
        let mut long: Vec<(u64, bool)> = (0..100).map(|i| (i, i < 5)).collect();
        long.extend(outcomes[10..].iter().copied());
        assert_eq!(run(now, &long).counted_in(10.0), Some((3, 5)));
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
    async fn refusals_in_a_row_are_counted_from_the_latest_acceptance() {
        let now = Instant::now();
        let s = run(
            now,
            &[(0, false), (10, true), (20, false), (520, false), (1020, false)],
        );
        let ms = |n| now + Duration::from_millis(n);
        let (n, secs) = s.refused_in_a_row(ms(2000)).expect("refused last");
        assert_eq!(n, 3);
        assert!((secs - 1.0).abs() < 1e-3, "{secs}");
        // The latest send unanswered yet: it may be accepted.
        assert_eq!(s.refused_in_a_row(ms(600)).map(|(n, _)| n), Some(2));
        assert_eq!(s.refused_in_a_row(ms(15)), None, "accepted last");
    }

    #[tokio::test(start_paused = true)]
    async fn an_opening_that_accepts_one_of_the_sends_together_has_no_burst() {
        // Four sent together; the refusals come back first, the
        // acceptances a round trip later.
        let now = Instant::now();
        let opened = |outcomes: &[(u64, bool)]| run(now, outcomes).opened_without_burst();
        assert!(opened(&[(1, false), (1, false), (1, false), (0, true)]));
        assert!(
            !opened(&[(1, false), (1, false), (1, true), (0, true)]),
            "a burst of one"
        );
        assert!(
            !opened(&[(0, true), (1, true), (1, true), (1, true)]),
            "none refused"
        );
        // Sent a request at a time, 10 ms apart: nothing went together.
        assert!(!opened(&[(0, true), (10, false), (20, true)]));
        // More answers within the opening than the log keeps: its one
        // acceptance is still counted.
        let mut long = vec![(0, true)];
        long.extend(std::iter::repeat_n((1, false), 2 * KEPT));
        assert!(opened(&long), "a long opening");
        long.push((2, true));
        assert!(!opened(&long), "two accepted, however far apart in the log");
    }
}
