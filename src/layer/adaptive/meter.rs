//! What a host accepted lately: answers and losses counted in slots of
//! 125 ms over the last two seconds, by when their requests were sent (the
//! reads cover the last second; the second before it is for reading, a
//! round trip late, a second that ended at a refusal), and accepted answers
//! in four slots of one second over the last four.

use std::time::Duration;

use tokio::time::Instant;

/// The window the fine slots cover.
const WINDOW: Duration = Duration::from_secs(1);
/// Fine slots per [`WINDOW`].
const PER_WINDOW: usize = 8;
/// Fine slots kept: two windows.
const SLOTS: usize = 2 * PER_WINDOW;
/// The coarse slots: one second each, four of them.
const LONG_SLOT: Duration = Duration::from_secs(1);
const LONG_SLOTS: usize = 4;

/// Accepted answers per slot over the last two [`WINDOW`]s, refused ones
/// over the last (slot `i` of the first is slot `i % PER_WINDOW` of the
/// second).
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    accepted: [u16; SLOTS],
    refused: [u16; PER_WINDOW],
    slot_start: Instant,
    head: u8,
    long: [u32; LONG_SLOTS],
    long_start: Instant,
    long_head: u8,
    /// When the next slot of either kind begins: until then an answer
    /// only counts (no clock arithmetic on the answer path).
    next_turn: Instant,
    /// Accepted answers since the meter began.
    total: u64,
}

impl Meter {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            accepted: [0; SLOTS],
            refused: [0; PER_WINDOW],
            slot_start: now,
            head: 0,
            long: [0; LONG_SLOTS],
            long_start: now,
            long_head: 0,
            next_turn: now + Self::slot_len().min(LONG_SLOT),
            total: 0,
        }
    }

    /// The fine slot answers are counted in now.
    fn head(&self) -> usize {
        usize::from(self.head)
    }

    /// The length of a fine slot: a second read from them starts up to
    /// one slot late.
    pub(crate) fn slot_len() -> Duration {
        WINDOW / PER_WINDOW as u32
    }

    fn advance(&mut self, now: Instant) {
        if now < self.next_turn {
            return;
        }
        let mut steps = 0;
        while now.saturating_duration_since(self.slot_start) >= Self::slot_len() && steps <= SLOTS {
            self.head = (self.head + 1) % SLOTS as u8;
            self.accepted[self.head()] = 0;
            self.refused[self.head() % PER_WINDOW] = 0;
            self.slot_start += Self::slot_len();
            steps += 1;
        }
        if steps > SLOTS {
            self.slot_start = now;
        }
        let mut steps = 0;
        while now.saturating_duration_since(self.long_start) >= LONG_SLOT && steps <= LONG_SLOTS {
            self.long_head = (self.long_head + 1) % LONG_SLOTS as u8;
            self.long[usize::from(self.long_head)] = 0;
            self.long_start += LONG_SLOT;
            steps += 1;
        }
        if steps > LONG_SLOTS {
            self.long_start = now;
        }
        self.next_turn = (self.slot_start + Self::slot_len()).min(self.long_start + LONG_SLOT);
    }

    /// How many fine slots back from the current one `at` falls in.
    fn slots_back(&self, at: Instant) -> usize {
        if at >= self.slot_start {
            0
        } else {
            let behind = self.slot_start.saturating_duration_since(at);
            (behind.as_nanos() / Self::slot_len().as_nanos()) as usize + 1
        }
    }

    /// Counts one answer, received `now`, to a request sent at `sent_at`:
    /// `accepted` (2xx, 3xx) or refused (a loss). The fine slots count by
    /// send time: a limiter refuses before the work and serves after it,
    /// so by answer time a far server's refusals and acceptances of one
    /// moment land in different slots.
    pub(crate) fn add(&mut self, now: Instant, sent_at: Instant, accepted: bool) {
        self.advance(now);
        if accepted {
            self.total += 1;
            let slot = &mut self.long[usize::from(self.long_head)];
            *slot = slot.saturating_add(1);
        }
        let back = self.slots_back(sent_at);
        if back >= if accepted { SLOTS } else { PER_WINDOW } {
            return;
        }
        let i = (self.head() + SLOTS - back) % SLOTS;
        let slot = if accepted {
            &mut self.accepted[i]
        } else {
            &mut self.refused[i % PER_WINDOW]
        };
        *slot = slot.saturating_add(1);
    }
}

impl Meter {
    /// Answers accepted since the meter began.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Answers accepted since `since` (to a slot's precision, 125 ms), at
    /// most over the last second, and the span they were counted over.
    pub(crate) fn accepted_since(&mut self, now: Instant, since: Instant) -> (u32, Duration) {
        self.advance(now);
        let mut sum = u32::from(self.accepted[self.head()]);
        let mut start = self.slot_start;
        for back in 1..PER_WINDOW {
            if start <= since {
                break;
            }
            let i = (self.head() + SLOTS - back) % SLOTS;
            sum += u32::from(self.accepted[i]);
            start = start.checked_sub(Self::slot_len()).unwrap_or(start);
        }
        (sum, now.saturating_duration_since(start.max(since)))
    }

    /// Requests sent in the second that ended with the slot `at` falls in,
    /// and accepted: read a round trip after `at`, every answer is in.
    /// `None` once that second is older than the slots kept.
    pub(crate) fn accepted_in_second_to(&mut self, now: Instant, at: Instant) -> Option<u32> {
        self.advance(now);
        let back = self.slots_back(at);
        if back + PER_WINDOW > SLOTS {
            return None;
        }
        Some(
            (back..back + PER_WINDOW)
                .map(|b| u32::from(self.accepted[(self.head() + SLOTS - b) % SLOTS]))
                .sum(),
        )
    }

    /// The accepted rate of the latest complete slots in which the host
    /// both accepted and refused (it was at its limit then, so what it
    /// accepted is its limit), once they hold `min_accepted` answers; none
    /// before. A slot is complete once `settle` (the round trip of a
    /// served request) has passed since its end: its sends are answered.
    pub(crate) fn at_limit(
        &mut self,
        now: Instant,
        min_accepted: u32,
        since: Instant,
        settle: Duration,
    ) -> Option<f64> {
        self.advance(now);
        let (mut sum, mut n) = (0u32, 0u32);
        let mut start = self.slot_start;
        for i in (1..PER_WINDOW).map(|back| (self.head() + SLOTS - back) % SLOTS) {
            let end = start;
            start = start.checked_sub(Self::slot_len()).unwrap_or(start);
            if start < since {
                break;
            }
            if now.saturating_duration_since(end) < settle {
                continue;
            }
            // At the limit for the whole slot: refusals throughout it, not
            // one at its end as the pace crossed the limit.
            let (accepted, refused) = (
                u32::from(self.accepted[i]),
                u32::from(self.refused[i % PER_WINDOW]),
            );
            if accepted > 0 && refused > 0 && refused * 20 >= accepted {
                sum += accepted;
                n += 1;
                if sum >= min_accepted && n >= 3 {
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
    async fn the_limit_is_read_where_the_host_both_accepted_and_refused() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        let mut t = t0;
        for _ in 0..75 {
            t += Duration::from_millis(5);
            m.add(t, t, true);
        }
        for i in 0..250 {
            t += Duration::from_millis(2);
            m.add(t, t, true);
            if i % 2 == 0 {
                m.add(t, t, false);
            }
        }
        let at = m.at_limit(t, 8, t0, Duration::ZERO).expect("slots at the limit");
        assert!((at - 500.0).abs() < 20.0, "{at}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_that_ended_at_a_refusal_is_read_a_round_trip_later() {
        // 50 accepted, sent evenly over a second, the first of them at
        // 200 ms; the refused request after them; all answered 200 ms later.
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        let sent = |i: u64| t0 + Duration::from_millis(200 + 20 * i);
        for i in 0..50 {
            m.add(sent(i) + Duration::from_millis(200), sent(i), true);
        }
        let refused = sent(50);
        m.add(refused, refused, false);
        let now = refused + Duration::from_millis(400);
        // Over the last second, by send time, the first fifth is missing.
        let (last_second, _) = m.accepted_since(now, t0);
        assert!(last_second < 45, "{last_second}");
        // The second that ended at the refusal has them all, to a slot.
        let window = m.accepted_in_second_to(now, refused).expect("kept");
        assert!((44..=50).contains(&window), "{window}");
        // Two seconds on, that second is no longer kept.
        assert_eq!(
            m.accepted_in_second_to(now + Duration::from_secs(2), refused),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_silence_empties_the_window() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        m.add(t0, t0, true);
        m.add(t0, t0, false);
        assert_eq!(m.accepted_since(t0 + Duration::from_secs(60), t0).0, 0);
        assert_eq!(
            m.at_limit(t0 + Duration::from_secs(60), 1, t0, Duration::ZERO),
            None
        );
    }
}
