//! The pacing queue of a host: send slots one interval apart, and one
//! waiting request at a time holding the next slot (the *lead*). The others
//! wait their turn on [`Pacer::paced`], so a rate change reaches the very
//! next send (reserving a slot per waiting request kept thousands of sends
//! at an old rate for seconds).

use std::time::Duration;

use tokio::time::Instant;

use crate::layer::signal::Signal;

/// How late a leader's wake-up for its promised slot may be and still take
/// it: a runtime sharing its cores wakes a few ticks late; later than that
/// is a stall, not a late timer.
const LATE_WAKE: Duration = Duration::from_millis(5);
/// tokio's timer granularity: how far a slot may lag `now`.
const TICK: Duration = Duration::from_millis(1);
/// How far a slot may lag `now` when the interval is shorter than a tick.
/// Such a pace sends in bunches of a tick anyway, and a runtime beside its
/// own load wakes a tick or two late: with one tick of catch-up a pace of
/// 2 000/s sent 94 % of its rate (`cargo bench --bench scenarios -- models`,
/// the 2 000/s cells).
const SUB_TICK_LATE: Duration = Duration::from_millis(2);

#[derive(Debug)]
pub(crate) struct Pacer {
    /// The latest send slot taken.
    last_slot: Instant,
    /// When the latest send went: at its slot or after it.
    last_sent: Instant,
    /// The slot the leader was told to wait for.
    promised: Option<Instant>,
    /// A leader woke late for its promised slot and the slots taken since
    /// are still behind `now`: the queue is catching up a late wake-up.
    catching_up: bool,
    /// The request that leads the queue, if one waits for a slot.
    leader: Option<u64>,
    next_lead: u64,
    /// Woken when the lead is passed on.
    pub(crate) paced: Signal,
}

impl Pacer {
    pub(crate) fn new(now: Instant) -> Self {
        let long_ago = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
        Self {
            last_slot: long_ago,
            last_sent: long_ago,
            promised: None,
            catching_up: false,
            leader: None,
            next_lead: 0,
            paced: Signal::default(),
        }
    }

    /// Whether some request leads the queue.
    #[inline]
    pub(crate) fn has_leader(&self) -> bool {
        self.leader.is_some()
    }

    /// Whether `lead` (from an earlier [`lead`](Self::lead)) still leads.
    pub(crate) fn is_leader(&self, lead: Option<u64>) -> bool {
        lead.is_some() && self.leader == lead
    }

    /// The next slot at `interval` after the last, not before `not_before`.
    /// After a stall the pace catches up by one timer tick (1 ms), never by
    /// a burst: a small-burst limiter refuses what a catch-up bunches
    /// together (nginx without `burst` refuses a second request sooner than
    /// one interval after the first). The leader woken late for the slot it
    /// was promised (a busy runtime wakes more than a tick late) still gets
    /// that slot, up to one interval or 5 ms late: the pace keeps its rate.
    /// A pace faster than one send a tick keeps slots up to two ticks late
    /// while it catches up a leader's late wake-up, slot by slot; a request
    /// that finds the queue idle (a concurrency limit held it, or nothing
    /// came) starts one tick back: such a pace sends in bunches of a tick
    /// anyway, and a bunch of two ticks' slots after a spell of waiting is
    /// refused by a one-request burst. A slower pace starts at `now` after
    /// a stall: a tick back, its second send came a tick short of the
    /// interval, which a limiter without a burst refuses when the pace is
    /// within a tick of its interval (at 100/s, the first two sends after
    /// every `Retry-After` pause; each refusal paused the host again).
    pub(crate) fn next_slot(&self, now: Instant, interval: Duration, not_before: Option<Instant>) -> Instant {
        let due = self.last_slot + interval;
        let late_wake = self.promised == Some(due) || self.catching_up;
        // Later than two ticks is a stall (a pause, a busy runtime), not a
        // late timer: one tick back, as after idling.
        let stalled = now.saturating_duration_since(due) > SUB_TICK_LATE;
        let behind = if interval < TICK && late_wake && !stalled {
            SUB_TICK_LATE
        } else if self.promised == Some(due) {
            interval.clamp(TICK, LATE_WAKE)
        } else if stalled && interval >= TICK {
            Duration::ZERO
        } else {
            TICK
        };
        let slot = due.max(now.checked_sub(behind).unwrap_or(now));
        not_before.map_or(slot, |at| slot.max(at))
    }

    /// `slot`, or later to keep `min_gap` after the latest send: a
    /// limiter without a burst refuses a request sent sooner than one
    /// interval of its rate after the last it accepted, so catching up a
    /// late wake-up by sending sooner is refused there.
    pub(crate) fn apart(&self, slot: Instant, min_gap: Option<Duration>) -> Instant {
        min_gap.map_or(slot, |gap| slot.max(self.last_sent + gap))
    }

    /// The leader is told to wait for `slot`.
    pub(crate) fn promise(&mut self, slot: Instant) {
        self.promised = Some(slot);
    }

    /// A request goes out at `now` in `slot`, a pace's `interval` after
    /// the last.
    pub(crate) fn take(&mut self, slot: Instant, now: Instant, interval: Duration) {
        let late_wake = self.promised == Some(slot) || self.catching_up;
        self.catching_up = late_wake && slot + interval < now;
        self.last_slot = slot;
        self.last_sent = now.max(slot);
        self.promised = None;
    }

    /// Makes the caller the leader (keeping `lead` if it already leads) and
    /// returns its lead.
    pub(crate) fn lead(&mut self, lead: Option<u64>) -> u64 {
        let id = match lead {
            Some(id) if self.is_leader(lead) => id,
            _ => {
                self.next_lead = self.next_lead.wrapping_add(1);
                self.next_lead
            }
        };
        self.leader = Some(id);
        id
    }

    /// The leader is done (sent, cancelled, or waiting for a permit): the
    /// next queued request takes the lead.
    pub(crate) fn pass_lead(&mut self) {
        self.leader = None;
        self.paced.notify_one();
    }

    /// Gives up the lead `id` if it still holds it (its request was
    /// dropped).
    pub(crate) fn abandon(&mut self, id: u64) {
        if self.leader == Some(id) {
            self.pass_lead();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn slots_follow_the_interval_and_catch_up_by_a_tick_or_two_at_most() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut p = Pacer::new(t0);
        let slot = p.next_slot(t0, ms(10), None);
        assert_eq!(slot, t0, "idle for long: from now");
        p.take(t0, t0, ms(10));
        assert_eq!(p.next_slot(t0, ms(10), None), t0 + ms(10));
        // After a 1 s stall: from now, not a burst of 100 slots, nor two
        // sends closer than the interval.
        assert_eq!(p.next_slot(t0 + ms(1000), ms(10), None), t0 + ms(1000));
        // A request a tick late keeps the pace's slot.
        assert_eq!(p.next_slot(t0 + ms(11), ms(10), None), t0 + ms(10));
        // Below the timer's tick, after a stall: one tick back.
        assert_eq!(
            p.next_slot(t0 + ms(1000), Duration::from_micros(100), None),
            t0 + ms(999)
        );
        assert_eq!(p.next_slot(t0, ms(10), Some(t0 + ms(50))), t0 + ms(50));
        // The leader promised a slot and woken 5 ms late still takes it.
        p.take(t0 + ms(1000), t0 + ms(1000), ms(10));
        p.promise(t0 + ms(1010));
        assert_eq!(p.next_slot(t0 + ms(1015), ms(10), None), t0 + ms(1010));
    }

    #[tokio::test(start_paused = true)]
    async fn below_a_tick_a_late_leader_and_the_slots_behind_it_keep_two_ticks() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let us = Duration::from_micros;
        let late = t0 + ms(2) + us(100);
        let mut p = Pacer::new(t0);
        p.take(t0, t0, us(100));
        // A request that finds the queue idle starts one tick back.
        assert_eq!(p.next_slot(late, us(100), None), late - ms(1));
        // The leader woken 2 ms late for its slot takes it, and the slots
        // after it, still behind, follow one interval apart.
        p.promise(t0 + us(100));
        assert_eq!(p.next_slot(late, us(100), None), t0 + us(100));
        p.take(t0 + us(100), late, us(100));
        assert_eq!(p.next_slot(late, us(100), None), t0 + us(200));
        p.take(t0 + us(200), late, us(100));
        // Caught up: one tick back again after a stall.
        p.take(late, late, us(100));
        assert_eq!(p.next_slot(t0 + ms(6), us(100), None), t0 + ms(5));
    }

    #[tokio::test(start_paused = true)]
    async fn one_leader_at_a_time_and_an_abandoned_lead_passes_on() {
        let mut p = Pacer::new(Instant::now());
        assert!(!p.has_leader());
        let a = p.lead(None);
        assert!(p.is_leader(Some(a)));
        assert_eq!(p.lead(Some(a)), a, "the leader keeps its lead");
        p.abandon(a + 1);
        assert!(p.is_leader(Some(a)), "another id abandons nothing");
        let mut woken = p.paced.register();
        p.abandon(a);
        assert!(!p.has_leader());
        tokio::time::timeout(ms(1), std::future::poll_fn(|cx| woken.poll(cx)))
            .await
            .expect("the next in the queue is woken");
    }

    #[tokio::test(start_paused = true)]
    async fn slots_kept_apart_come_a_gap_after_the_latest_send() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut p = Pacer::new(t0);
        p.take(t0, t0 + ms(3), ms(10));
        let slot = p.next_slot(t0 + ms(12), ms(10), None);
        assert_eq!(slot, t0 + ms(11), "caught up a tick");
        assert_eq!(p.apart(slot, None), slot);
        assert_eq!(
            p.apart(slot, Some(ms(10))),
            t0 + ms(13),
            "10 ms after the send at 3 ms"
        );
    }
}
