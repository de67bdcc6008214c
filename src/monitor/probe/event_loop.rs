//! The event-loop probe's arithmetic: how late a periodic timer woke.

use std::time::Duration;

use tokio::time::Instant;

use crate::monitor::snapshot::EventLoopSnapshot;

/// Turns the wake-ups of a timer that sleeps `interval` into
/// [`EventLoopSnapshot`]s: the delay is the time past `interval` since the
/// previous snapshot; the first snapshot has delay 0.
///
/// The snapshotter runs one on the caller's tokio runtime; it is public so
/// recorded wake-ups can be replayed.
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use tower_snapshotter::probe::EventLoopClock;
/// use tower_snapshotter::snapshot::Snapshot;
///
/// let ms = Duration::from_millis;
/// let mut clock = EventLoopClock::new(ms(500), ms(50));
/// let t0 = Instant::now();
/// assert_eq!(clock.wake(t0).delay, ms(0));
/// assert_eq!(clock.wake(t0 + ms(530)).delay, ms(30));
/// assert!(clock.wake(t0 + ms(1100)).is_overloaded()); // 70 ms late
/// ```
#[derive(Debug, Clone)]
pub struct EventLoopClock {
    interval: Duration,
    max_delay: Duration,
    previous: Option<Instant>,
}

impl EventLoopClock {
    /// A clock for a timer of `interval`, judged against `max_delay`.
    pub fn new(interval: Duration, max_delay: Duration) -> Self {
        Self {
            interval,
            max_delay,
            previous: None,
        }
    }

    /// The snapshot for a wake-up at `now`.
    pub fn wake(&mut self, now: Instant) -> EventLoopSnapshot {
        let delay = match self.previous {
            None => Duration::ZERO,
            Some(prev) => now.saturating_duration_since(prev).saturating_sub(self.interval),
        };
        self.previous = Some(now);
        EventLoopSnapshot {
            delay,
            max_delay: self.max_delay,
            created_at: now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::snapshot::Snapshot;

    #[test]
    fn made_up_wake_ups_under_and_over_the_limit() {
        // Crawlee JS: max 5 ms, interval 0, advances of 1, 2, 7, 3 ms: only the 7 ms gap is over.
        let ms = Duration::from_millis;
        let mut clock = EventLoopClock::new(Duration::ZERO, ms(5));
        let mut t = Instant::now();
        let mut flags = vec![clock.wake(t).is_overloaded()];
        for step in [1, 2, 7, 3] {
            t += ms(step);
            flags.push(clock.wake(t).is_overloaded());
        }
        assert_eq!(flags, [false, false, false, true, false]);
    }

    #[test]
    fn an_early_wake_up_is_no_delay() {
        let ms = Duration::from_millis;
        let mut clock = EventLoopClock::new(ms(500), ms(50));
        let t = Instant::now();
        clock.wake(t);
        assert_eq!(clock.wake(t + ms(100)).delay, Duration::ZERO);
    }
}
