//! What a host accepted lately: answers and losses counted in eight slots
//! of 125 ms over the last second, and accepted answers in four slots of
//! one second over the last four.

use std::time::Duration;

use tokio::time::Instant;

/// The window the fine slots cover.
const WINDOW: Duration = Duration::from_secs(1);
const SLOTS: usize = 8;
/// The coarse slots: one second each, four of them.
const LONG_SLOT: Duration = Duration::from_secs(1);
const LONG_SLOTS: usize = 4;

/// Accepted and refused answers per slot over the last [`WINDOW`].
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    accepted: [u32; SLOTS],
    refused: [u32; SLOTS],
    slot_start: Instant,
    head: usize,
    long: [u32; LONG_SLOTS],
    long_start: Instant,
    long_head: usize,
    born: Instant,
    /// Accepted answers since the meter began.
    total: u64,
}

impl Meter {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            accepted: [0; SLOTS],
            refused: [0; SLOTS],
            slot_start: now,
            head: 0,
            long: [0; LONG_SLOTS],
            long_start: now,
            long_head: 0,
            born: now,
            total: 0,
        }
    }

    fn slot_len() -> Duration {
        WINDOW / SLOTS as u32
    }

    fn advance(&mut self, now: Instant) {
        let mut steps = 0;
        while now.saturating_duration_since(self.slot_start) >= Self::slot_len() && steps <= SLOTS {
            self.head = (self.head + 1) % SLOTS;
            self.accepted[self.head] = 0;
            self.refused[self.head] = 0;
            self.slot_start += Self::slot_len();
            steps += 1;
        }
        if steps > SLOTS {
            self.slot_start = now;
        }
        let mut steps = 0;
        while now.saturating_duration_since(self.long_start) >= LONG_SLOT && steps <= LONG_SLOTS {
            self.long_head = (self.long_head + 1) % LONG_SLOTS;
            self.long[self.long_head] = 0;
            self.long_start += LONG_SLOT;
            steps += 1;
        }
        if steps > LONG_SLOTS {
            self.long_start = now;
        }
    }

    /// Counts one answer: `accepted` (2xx, 3xx) or refused (a loss).
    pub(crate) fn add(&mut self, now: Instant, accepted: bool) {
        self.advance(now);
        let slot = if accepted {
            self.total += 1;
            self.long[self.long_head] = self.long[self.long_head].saturating_add(1);
            &mut self.accepted[self.head]
        } else {
            &mut self.refused[self.head]
        };
        *slot = slot.saturating_add(1);
    }

    /// Accepted answers since the meter began.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Accepted answers per second over the last second. A host younger
    /// than that counts as if it had been silent before: a burst allowance
    /// spent in the first 100 ms must not read as ten times itself.
    pub(crate) fn short_rate(&mut self, now: Instant) -> f64 {
        self.advance(now);
        f64::from(self.accepted.iter().sum::<u32>()) / WINDOW.as_secs_f64()
    }

    /// Accepted answers per second over the last four seconds (or since
    /// the meter began, at least one second): long enough to span a pause
    /// and the burst a token bucket allows after it.
    pub(crate) fn long_rate(&mut self, now: Instant) -> f64 {
        self.advance(now);
        let span = now
            .saturating_duration_since(self.born)
            .clamp(WINDOW, LONG_SLOT * LONG_SLOTS as u32);
        f64::from(self.long.iter().sum::<u32>()) / span.as_secs_f64()
    }

    /// The host's capacity as the answers show it: the accepted rate of
    /// the latest two complete slots in which the host both accepted and
    /// refused (it was at its limit then, so what it accepted is the
    /// limit), else a guess: the higher of the accepted rates of the last
    /// second and of the last four, or only the latter after a pause
    /// (`paused_lately`: the burst a token bucket allows after a pause
    /// inflates the short one). 0 without answers. The flag says whether
    /// it was measured at the limit.
    pub(crate) fn capacity(&mut self, now: Instant, paused_lately: bool) -> (f64, bool) {
        self.advance(now);
        // The latest two such slots, for less noise than one slot's count.
        let (mut sum, mut n) = (0u32, 0u32);
        for i in (1..SLOTS).map(|back| (self.head + SLOTS - back) % SLOTS) {
            if self.accepted[i] > 0 && self.refused[i] > 0 {
                sum += self.accepted[i];
                n += 1;
                if n == 2 {
                    break;
                }
            }
        }
        if n == 0 {
            let long = self.long_rate(now);
            let guess = if paused_lately {
                long
            } else {
                long.max(self.short_rate(now))
            };
            return (guess, false);
        }
        (
            f64::from(sum) / f64::from(n) / Self::slot_len().as_secs_f64(),
            true,
        )
    }
}

impl Meter {
    /// The share of answers accepted over the current and the previous
    /// slot (1 without answers).
    pub(crate) fn recent_accepted_share(&mut self, now: Instant) -> f64 {
        self.advance(now);
        let prev = (self.head + SLOTS - 1) % SLOTS;
        let a = self.accepted[self.head] + self.accepted[prev];
        let r = self.refused[self.head] + self.refused[prev];
        if a + r == 0 {
            1.0
        } else {
            f64::from(a) / f64::from(a + r)
        }
    }

    /// The accepted rate of the latest complete slots in which the host
    /// both accepted and refused (it was at its limit then, so what it
    /// accepted is its limit), once they hold `min_accepted` answers; none
    /// before.
    pub(crate) fn at_limit(&mut self, now: Instant, min_accepted: u32) -> Option<f64> {
        self.advance(now);
        let (mut sum, mut n) = (0u32, 0u32);
        for i in (1..SLOTS).map(|back| (self.head + SLOTS - back) % SLOTS) {
            if self.accepted[i] > 0 && self.refused[i] > 0 {
                sum += self.accepted[i];
                n += 1;
                if sum >= min_accepted && n >= 2 {
                    return Some(f64::from(sum) / f64::from(n) / Self::slot_len().as_secs_f64());
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn capacity_comes_from_slots_at_the_limit() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        // 375 ms at 200/s accepted, nothing refused; then 500 ms at the
        // host's limit of 500/s with refusals.
        let mut t = t0;
        for _ in 0..75 {
            t += Duration::from_millis(5);
            m.add(t, true);
        }
        for i in 0..250 {
            t += Duration::from_millis(2);
            m.add(t, true);
            if i % 2 == 0 {
                m.add(t, false);
            }
        }
        let whole = m.long_rate(t);
        assert!(whole < 400.0, "the window mixes both phases: {whole}");
        let (cap, measured) = m.capacity(t, false);
        assert!(measured);
        assert!((cap - 500.0).abs() < 20.0, "{cap}");
        // Without refusals it is the accepted rate of the last 4 s.
        let mut calm = Meter::new(t0);
        for i in 0..600 {
            calm.add(t0 + Duration::from_millis(i * 10), true);
        }
        let at = t0 + Duration::from_millis(5999);
        let (guess, measured) = calm.capacity(at, true);
        assert!(!measured);
        assert!((guess - 100.0).abs() < 1.0, "{guess}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_silence_empties_the_window() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        m.add(t0, true);
        m.add(t0, false);
        assert_eq!(m.long_rate(t0 + Duration::from_secs(60)), 0.0);
        assert_eq!(m.capacity(t0 + Duration::from_secs(60), false), (0.0, false));
    }
}
