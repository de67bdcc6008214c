//! What a host accepted lately: answers and losses counted in eight slots
//! of 125 ms over the last second.

use std::time::Duration;

use tokio::time::Instant;

/// The window the meter covers.
const WINDOW: Duration = Duration::from_secs(1);
const SLOTS: usize = 8;

/// Accepted and refused answers per slot over the last [`WINDOW`].
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    accepted: [u32; SLOTS],
    refused: [u32; SLOTS],
    slot_start: Instant,
    head: usize,
}

impl Meter {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            accepted: [0; SLOTS],
            refused: [0; SLOTS],
            slot_start: now,
            head: 0,
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
    }

    /// Counts one answer: `accepted` (2xx, 3xx) or refused (a loss).
    pub(crate) fn add(&mut self, now: Instant, accepted: bool) {
        self.advance(now);
        let slot = if accepted {
            &mut self.accepted[self.head]
        } else {
            &mut self.refused[self.head]
        };
        *slot = slot.saturating_add(1);
    }

    /// Accepted answers per second over the window.
    pub(crate) fn rate(&mut self, now: Instant) -> f64 {
        self.advance(now);
        f64::from(self.accepted.iter().sum::<u32>()) / WINDOW.as_secs_f64()
    }

    /// The host's capacity as the answers show it: the accepted rate of
    /// the latest complete slot in which the host both accepted and
    /// refused (it was at its limit then, so what it accepted is the
    /// limit), else the accepted rate of the whole window (an underestimate
    /// while the send rate was below the limit for part of it). 0 without
    /// answers.
    pub(crate) fn capacity(&mut self, now: Instant) -> f64 {
        self.advance(now);
        let latest = (1..SLOTS)
            .map(|back| (self.head + SLOTS - back) % SLOTS)
            .find(|&i| self.accepted[i] > 0 && self.refused[i] > 0);
        match latest {
            Some(i) => f64::from(self.accepted[i]) / Self::slot_len().as_secs_f64(),
            None => self.rate(now),
        }
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
        let whole = m.rate(t);
        assert!(whole < 350.0, "the window mixes both phases: {whole}");
        let cap = m.capacity(t);
        assert!((cap - 500.0).abs() < 20.0, "{cap}");
        // Without refusals it is the plain accepted rate.
        let mut calm = Meter::new(t0);
        for i in 0..100 {
            calm.add(t0 + Duration::from_millis(i * 10), true);
        }
        let at = t0 + Duration::from_millis(999);
        assert!((calm.capacity(at) - 100.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_silence_empties_the_window() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        m.add(t0, true);
        m.add(t0, false);
        assert_eq!(m.rate(t0 + Duration::from_secs(60)), 0.0);
        assert_eq!(m.capacity(t0 + Duration::from_secs(60)), 0.0);
    }
}
