//! The delay signal of the adaptive controller: is the host queueing?
//!
//! Judged once per round trip on a *cohort*: the requests sent during one
//! smoothed round trip. An answer is late when its round trip exceeds
//! `tolerance ×` the windowed minimum (and the minimum by more than 1 ms).
//! Once the tolerance has passed for the cohort's last request, every
//! member is known to be on time or late, so the verdict counts the slow
//! answers too, not only the fast ones that came back first. A standing
//! queue makes many members late; scheduler noise on a busy machine makes a
//! few late, so the verdict is "queueing" only when more than one in
//! [`LATE_SHARE`] is late (a smoothed average of a noisy 2-core machine
//! crossed any threshold now and then, and each false alarm cost a cut).
//! A cohort starts afresh when the limit changes, so it judges the limit it
//! ran at.

use std::time::Duration;

use tokio::time::Instant;

/// Queueing below this much extra delay is ignored: loopback round trips
/// of 0.1 ms jitter by more than any tolerance, and a busy client's own
/// scheduling adds a few milliseconds that no server queue caused (at 1 ms
/// the limit fell to one request in flight under load and capped a
/// 2 000/s host at about 450/s).
const FLOOR: Duration = Duration::from_millis(3);
/// A cohort is sent over one smoothed round trip, at least this long.
const MIN_ROUND: Duration = Duration::from_millis(1);
/// The minimum is the best of the current and the previous window of this
/// length, so a route that got slower is relearned within two windows.
const MIN_WINDOW: Duration = Duration::from_secs(10);
/// A cohort with more than one late answer in this many is queueing.
const LATE_SHARE: u32 = 8;

/// What a cohort said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// No cohort is complete.
    Pending,
    /// Round trips stayed near the minimum.
    Clear,
    /// Many answers were late: a queue. `good_depth` is the largest number
    /// in flight (at send) answered on time in this cohort or the one
    /// before, 0 if none.
    Queueing { good_depth: usize },
}

/// Round-trip bookkeeping of one host.
#[derive(Debug, Clone)]
pub(crate) struct DelaySignal {
    tolerance: f64,
    min_now: Option<Duration>,
    min_prev: Option<Duration>,
    window_end: Instant,
    srtt: Option<Duration>,
    cohort_start: Instant,
    cohort_end: Instant,
    /// Round trips longer than this are late (cached from the minimum).
    late: Duration,
    sent: u32,
    on_time: u32,
    good_depth: usize,
    prev_good_depth: usize,
}

impl DelaySignal {
    pub(crate) fn new(tolerance: f64, now: Instant) -> Self {
        Self {
            tolerance,
            min_now: None,
            min_prev: None,
            window_end: now + MIN_WINDOW,
            srtt: None,
            cohort_start: now,
            cohort_end: now + MIN_ROUND,
            late: Duration::MAX,
            sent: 0,
            on_time: 0,
            good_depth: 0,
            prev_good_depth: 0,
        }
    }

    /// The smallest round trip of the last 10–20 s.
    pub(crate) fn min_rtt(&self) -> Option<Duration> {
        match (self.min_now, self.min_prev) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Round trips longer than this are late; `None` before the first
    /// answer.
    fn late_after(&self) -> Option<Duration> {
        self.min_rtt().map(|m| m.mul_f64(self.tolerance).max(m + FLOOR))
    }

    /// Round trips longer than this are late (`Duration::MAX` before the
    /// first answer).
    pub(crate) fn late_threshold(&self) -> Duration {
        self.late
    }

    fn in_cohort(&self, sent_at: Instant) -> bool {
        sent_at >= self.cohort_start && sent_at < self.cohort_end
    }

    /// A new cohort from `now`.
    fn restart(&mut self, now: Instant) {
        self.cohort_start = now;
        self.cohort_end = now + self.srtt.unwrap_or(MIN_ROUND).max(MIN_ROUND);
        self.sent = 0;
        self.on_time = 0;
        self.good_depth = 0;
    }

    /// The limit changed at `now`: the next verdict judges only requests
    /// sent from now on.
    pub(crate) fn limit_changed(&mut self, now: Instant) {
        self.prev_good_depth = 0;
        self.restart(now);
    }

    /// A request was sent at `now`.
    pub(crate) fn on_send(&mut self, now: Instant) {
        if self.in_cohort(now) {
            self.sent += 1;
        }
    }

    /// A request sent at `sent_at` ended without a round trip to judge
    /// (an error, an answer that says nothing about load, a cancel).
    pub(crate) fn forget(&mut self, sent_at: Instant) {
        if self.in_cohort(sent_at) {
            self.sent = self.sent.saturating_sub(1);
        }
    }

    /// Takes one answer: its round trip `rtt`, sent at `sent_at` with
    /// `depth` requests in flight (itself included). Returns whether this
    /// answer was on time, and the verdict if a cohort is complete.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        sent_at: Instant,
        rtt: Duration,
        depth: usize,
    ) -> (bool, Verdict) {
        let mut new_min = false;
        if now >= self.window_end {
            self.min_prev = self.min_now.take();
            self.window_end = now + MIN_WINDOW;
            new_min = true;
        }
        if self.min_now.is_none_or(|m| rtt < m) {
            self.min_now = Some(rtt);
            new_min = true;
        }
        if new_min {
            self.late = self.late_after().unwrap_or(Duration::MAX);
        }
        self.srtt = Some(match self.srtt {
            None => rtt,
            // In nanoseconds: a Duration's own `* 7 / 8` normalizes twice.
            Some(s) => {
                let (s, r) = (s.as_nanos() as u64, rtt.as_nanos() as u64);
                Duration::from_nanos(s.saturating_mul(7).saturating_add(r) / 8)
            }
        });
        let late_after = self.late;
        let on_time = rtt <= late_after;
        if on_time && self.in_cohort(sent_at) {
            self.on_time += 1;
            self.good_depth = self.good_depth.max(depth);
        }
        // Complete once its last member is past the tolerance.
        if now < self.cohort_end + late_after.min(Duration::from_secs(3600)) {
            return (on_time, Verdict::Pending);
        }
        if self.sent == 0 {
            self.restart(now);
            return (on_time, Verdict::Pending);
        }
        let late = self.sent.saturating_sub(self.on_time);
        let verdict = if late * LATE_SHARE > self.sent {
            Verdict::Queueing {
                good_depth: self.good_depth.max(self.prev_good_depth),
            }
        } else {
            Verdict::Clear
        };
        self.prev_good_depth = self.good_depth;
        self.restart(now);
        (on_time, verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Sends one request per ms for `n` ms, each answered after `rtt(i)`;
    /// returns every verdict that was not pending.
    fn run(d: &mut DelaySignal, now: &mut Instant, n: u64, rtt: impl Fn(u64) -> Duration) -> Vec<Verdict> {
        let mut answers: Vec<(Instant, Instant)> = Vec::new();
        let mut verdicts = Vec::new();
        let end = *now + ms(n);
        while *now < end || !answers.is_empty() {
            if *now < end {
                d.on_send(*now);
                answers.push((*now + rtt(answers.len() as u64), *now));
            }
            answers.sort();
            while answers.first().is_some_and(|(at, _)| *at <= *now) {
                let (at, sent) = answers.remove(0);
                let (_, v) = d.observe(at, sent, at - sent, 8);
                if v != Verdict::Pending {
                    verdicts.push(v);
                }
            }
            *now += ms(1);
        }
        verdicts
    }

    #[tokio::test(start_paused = true)]
    async fn a_few_slow_answers_are_noise_many_are_a_queue() {
        let t0 = Instant::now();
        let mut d = DelaySignal::new(1.5, t0);
        let mut now = t0;
        let clear = run(&mut d, &mut now, 200, |_| ms(5));
        assert!(
            !clear.is_empty() && clear.iter().all(|v| *v == Verdict::Clear),
            "{clear:?}"
        );
        // One answer in 20 at 20 ms: noise.
        let noisy = run(
            &mut d,
            &mut now,
            200,
            |i| if i % 20 == 7 { ms(20) } else { ms(5) },
        );
        assert!(noisy.iter().all(|v| *v == Verdict::Clear), "{noisy:?}");
        // Half the answers at 10 ms: a queue, and depth 8 was still on time.
        let queued = run(&mut d, &mut now, 100, |i| if i % 2 == 0 { ms(10) } else { ms(5) });
        assert!(
            queued.contains(&Verdict::Queueing { good_depth: 8 }),
            "{queued:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_answers_count_even_before_they_arrive() {
        let t0 = Instant::now();
        let mut d = DelaySignal::new(1.5, t0);
        let mut now = t0;
        run(&mut d, &mut now, 50, |_| ms(5));
        d.limit_changed(now);
        // Every request of the cohort is slow; the verdict must not be
        // taken from the fast answers alone.
        let v = run(&mut d, &mut now, 50, |_| ms(40));
        assert_eq!(v.first(), Some(&Verdict::Queueing { good_depth: 0 }), "{v:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn answers_sent_before_a_change_are_not_judged() {
        let t0 = Instant::now();
        let mut d = DelaySignal::new(1.5, t0);
        let mut now = t0;
        run(&mut d, &mut now, 50, |_| ms(5));
        let before = now - ms(1);
        d.limit_changed(now);
        // Late answers of requests sent before the change: no verdict.
        for _ in 0..50 {
            now += ms(1);
            assert_eq!(d.observe(now, before, now - before, 4).1, Verdict::Pending);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_minimum_is_relearned_after_two_windows() {
        let t0 = Instant::now();
        let mut d = DelaySignal::new(1.5, t0);
        d.observe(t0, t0, ms(5), 1);
        assert_eq!(d.min_rtt(), Some(ms(5)));
        let mut now = t0;
        while now < t0 + MIN_WINDOW * 2 + ms(10) {
            now += ms(100);
            d.observe(now, now - ms(20), ms(20), 1);
        }
        assert_eq!(d.min_rtt(), Some(ms(20)), "the route got slower");
    }
}
