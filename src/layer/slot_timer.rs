//! The sleep of a waiting request: to its host's pause's end, or to its
//! send slot, to the microsecond when its host needs that.
//!
//! tokio's timer rounds each deadline up to its next millisecond tick. A
//! slot kept a gap after the last send (a limiter without a burst, see
//! `Controller::slots_to_the_microsecond`) lies just past a tick, since that
//! send went just past one, so a sleep to the slot itself wakes 1.1 ms late
//! (measured here, 2 000 sleeps 5 ms apart: the median and the mean). Each
//! late wake widens a gap that such a limiter needs kept: at 200/s, gaps of
//! 6-8 ms instead of 5 held nginx without `burst=` at 69-82 % of its rate.
//! A precise sleep ends a tick early and yields to the runtime until the
//! slot instead, 0.1 ms late. The yielding is CPU spent: about 0.2 ms a
//! send on average (a crawl of 6 000 such sends used 1 s more), only for
//! the leader of a host's pacing queue, and only for hosts that need it.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// How long before a precise slot the sleep ends and the yielding begins:
/// one tick of tokio's timer.
const YIELD_FOR: Duration = Duration::from_millis(1);

/// A waiting request's timer.
#[derive(Debug)]
pub(crate) struct SlotTimer {
    sleep: Pin<Box<Sleep>>,
    /// The slot a precise sleep yields until, and the time it last saw
    /// while yielding.
    precise: Option<(Instant, Option<Instant>)>,
}

impl SlotTimer {
    /// A timer that has fired.
    pub(crate) fn new() -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            precise: None,
        }
    }

    /// Fires at `at`, within the timer's tick.
    pub(crate) fn reset(&mut self, at: Instant) {
        self.precise = None;
        self.sleep.as_mut().reset(at);
    }

    /// Fires at `at` to the microsecond, or a little after.
    pub(crate) fn reset_precise(&mut self, at: Instant) {
        self.precise = Some((at, None));
        self.sleep.as_mut().reset(at.checked_sub(YIELD_FOR).unwrap_or(at));
    }

    /// Ready once the instant has come. A precise wait yields (wakes
    /// itself at once) for its last tick. Under a paused clock, which
    /// cannot move while a task keeps yielding, the time read twice in a
    /// row is the same: it sleeps the rest instead.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        ready!(self.sleep.as_mut().poll(cx));
        let Some((slot, seen)) = self.precise else {
            return Poll::Ready(());
        };
        let now = Instant::now();
        if now >= slot {
            self.precise = None;
            return Poll::Ready(());
        }
        if seen == Some(now) {
            self.reset(slot);
            return self.sleep.as_mut().poll(cx);
        }
        self.precise = Some((slot, Some(now)));
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    async fn fired(timer: &mut SlotTimer) -> Instant {
        std::future::poll_fn(|cx| timer.poll(cx)).await;
        Instant::now()
    }

    #[tokio::test(start_paused = true)]
    async fn a_precise_timer_under_a_paused_clock_sleeps_its_last_tick() {
        let t0 = Instant::now();
        let mut timer = SlotTimer::new();
        timer.reset_precise(t0 + ms(5));
        assert_eq!(fired(&mut timer).await, t0 + ms(5));
        // Between ticks: the paused clock moves by whole ticks, and the
        // timer fires at the first past the instant, never before it.
        let slot = t0 + ms(5) + Duration::from_micros(300);
        timer.reset_precise(slot);
        let at = fired(&mut timer).await;
        assert!(at >= slot && at <= slot + ms(1), "{:?} after", at - slot);
        timer.reset(t0 + ms(9));
        assert_eq!(fired(&mut timer).await, t0 + ms(9));
    }

    /// Counts its wake-ups.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn within_its_last_tick_a_precise_timer_yields_and_never_fires_early() {
        let woken = |timer: &mut SlotTimer| {
            let count = Arc::new(Count(AtomicUsize::new(0)));
            let waker = Waker::from(Arc::clone(&count));
            assert!(timer.poll(&mut Context::from_waker(&waker)).is_pending());
            count.0.load(Ordering::Relaxed)
        };
        // More than a tick off: it sleeps, and nothing wakes it yet.
        let mut timer = SlotTimer::new();
        timer.reset_precise(Instant::now() + ms(50));
        assert_eq!(woken(&mut timer), 0);
        // Within the last tick: it wakes itself at once, to look again.
        let mut timer = SlotTimer::new();
        let slot = Instant::now() + Duration::from_micros(500);
        timer.reset_precise(slot);
        assert_eq!(woken(&mut timer), 1);
        assert!(fired(&mut timer).await >= slot);
        // A plain timer within its tick sleeps.
        let mut timer = SlotTimer::new();
        timer.reset(Instant::now() + Duration::from_micros(500));
        assert_eq!(woken(&mut timer), 0);
    }
}
