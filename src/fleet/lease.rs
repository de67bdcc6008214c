//! The local side of a lease: the send slots this process holds for one
//! host, each with the time it is due, spent on the hot path without Redis.
//!
//! A lease is a run of slots `T` apart starting at a given instant (the
//! fleet's schedule mapped onto this process's clock). A slot may be spent
//! from one interval before its due time: slots come at the caller's own
//! pace, and a pacer on a millisecond timer that met them only at their due
//! times would lose a little of its pace at every slot. One whose due time
//! passed more than a little grace ago is dropped (counted as wasted), so a
//! process that fell behind does not send its missed slots in a burst.

use std::time::Duration;

use tokio::time::Instant;

/// Leases a process holds at once for one host.
const MAX_RUNS: usize = 4;

/// Slots `interval` apart, the first due at `next`.
#[derive(Debug, Clone, Copy)]
struct Run {
    next: Instant,
    left: u32,
    interval: Duration,
}

impl Run {
    /// How early a slot may be spent: one interval.
    fn early(&self) -> Duration {
        self.interval
            .clamp(Duration::from_millis(1), Duration::from_millis(50))
    }

    /// How late a slot may be spent: two intervals.
    fn grace(&self) -> Duration {
        (self.interval * 2).clamp(Duration::from_millis(2), Duration::from_millis(50))
    }

    /// Drops the slots due more than the grace before `now`; returns how
    /// many.
    fn expire(&mut self, now: Instant) -> u32 {
        let Some(late) = now.checked_duration_since(self.next + self.grace()) else {
            return 0;
        };
        let step = self.interval.as_nanos().max(1);
        let k = late.as_nanos().div_ceil(step);
        let k = u32::try_from(k).unwrap_or(u32::MAX).min(self.left);
        self.left -= k;
        self.next += self.interval * k;
        k
    }
}

/// What the held slots allow at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// A slot was due and is now spent.
    Granted,
    /// The next held slot is due then.
    Wait(Instant),
    /// No slot is held.
    Empty,
}

/// The slots held for one host.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    runs: [Option<Run>; MAX_RUNS],
    /// Slots spent since the last lease.
    pub(crate) spent: u32,
    /// Slots dropped unspent since the last lease.
    pub(crate) wasted: u32,
}

impl Slots {
    /// Spends the earliest due slot at `now`, or says when one will be due.
    pub(crate) fn take(&mut self, now: Instant) -> Take {
        let mut best: Option<(usize, Instant)> = None;
        for i in 0..MAX_RUNS {
            let Some(run) = &mut self.runs[i] else { continue };
            self.wasted = self.wasted.saturating_add(run.expire(now));
            if run.left == 0 {
                self.runs[i] = None;
                continue;
            }
            if best.is_none_or(|(_, next)| run.next < next) {
                best = Some((i, run.next));
            }
        }
        let Some((i, _)) = best else { return Take::Empty };
        let Some(run) = &mut self.runs[i] else {
            return Take::Empty;
        };
        let early = run.early();
        if run.next > now + early {
            return Take::Wait(run.next - early);
        }
        run.left -= 1;
        run.next += run.interval;
        if run.left == 0 {
            self.runs[i] = None;
        }
        self.spent = self.spent.saturating_add(1);
        Take::Granted
    }

    /// Adds `count` slots `interval` apart, the first due at `start`, or
    /// after the last slot held if that is later: the runs follow one
    /// another at the pace, as one, instead of overlapping (where the pace
    /// spends one run's slots while the other's fall due and are wasted).
    /// Returns false (and adds nothing) when all places are taken.
    pub(crate) fn add(&mut self, start: Instant, count: u32, interval: Duration) -> bool {
        if count == 0 {
            return true;
        }
        let after_held = self
            .runs
            .iter()
            .flatten()
            .filter_map(|r| r.next.checked_add(r.interval.checked_mul(r.left)?))
            .max();
        let start = after_held.map_or(start, |end| start.max(end));
        match self.runs.iter_mut().find(|r| r.is_none()) {
            Some(place) => {
                *place = Some(Run {
                    next: start,
                    left: count,
                    interval,
                });
                true
            }
            None => false,
        }
    }

    /// Whether another lease would find a place.
    pub(crate) fn has_room(&self) -> bool {
        self.runs.iter().any(Option::is_none)
    }

    /// Slots held that are not yet too late to spend at `now`.
    pub(crate) fn remaining(&self, now: Instant) -> u32 {
        self.runs
            .iter()
            .flatten()
            .map(|r| {
                let mut r = *r;
                r.expire(now);
                r.left
            })
            .fold(0u32, u32::saturating_add)
    }

    /// Forgets every slot (the fleet's schedule may have been reset).
    pub(crate) fn clear(&mut self) {
        self.runs = [None; MAX_RUNS];
    }

    /// Share of the slots that were spent since the last lease, if any
    /// were handled; then starts counting again.
    pub(crate) fn utilization(&mut self) -> Option<f64> {
        let (spent, wasted) = (self.spent, self.wasted);
        self.spent = 0;
        self.wasted = 0;
        let total = spent.saturating_add(wasted);
        (total > 0).then(|| f64::from(spent) / f64::from(total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn slots_are_spent_on_schedule_from_one_interval_early() {
        let t0 = Instant::now();
        let mut s = Slots::default();
        assert_eq!(s.take(t0), Take::Empty);
        assert!(s.add(t0 + 100 * MS, 3, 10 * MS));
        assert_eq!(s.take(t0), Take::Wait(t0 + 90 * MS));
        assert_eq!(s.take(t0 + 90 * MS), Take::Granted, "the slot due at 100");
        assert_eq!(s.take(t0 + 90 * MS), Take::Wait(t0 + 100 * MS));
        assert_eq!(s.take(t0 + 101 * MS), Take::Granted, "the slot due at 110");
        assert_eq!(s.take(t0 + 135 * MS), Take::Granted, "the slot due at 120, late");
        assert_eq!(s.take(t0 + 135 * MS), Take::Empty);
        assert_eq!(s.utilization(), Some(1.0));
    }

    #[test]
    fn missed_slots_are_dropped_not_burst() {
        let t0 = Instant::now();
        let mut s = Slots::default();
        s.add(t0, 10, 10 * MS);
        // 55 ms late: slots due at 0..=30 ms are past the 20 ms grace;
        // those due at 40 and 50 are late but within it, the one at 60 is
        // one interval early.
        assert_eq!(s.remaining(t0 + 55 * MS), 6);
        for _ in 0..3 {
            assert_eq!(s.take(t0 + 55 * MS), Take::Granted);
        }
        assert_eq!(s.take(t0 + 55 * MS), Take::Wait(t0 + 60 * MS));
        assert_eq!(s.wasted, 4);
        assert_eq!(s.utilization(), Some(3.0 / 7.0));
    }

    #[test]
    fn a_new_run_follows_the_slots_held_instead_of_overlapping_them() {
        let t0 = Instant::now();
        let mut s = Slots::default();
        assert!(s.add(t0, 1, 10 * MS));
        // Granted from the same instant: it follows the slot held, at 10
        // and 20, so the pace is not offered two slots at once.
        assert!(s.add(t0, 2, 10 * MS));
        assert_eq!(s.take(t0), Take::Granted, "the slot due at 0");
        assert_eq!(
            s.take(t0),
            Take::Granted,
            "the slot due at 10, one interval early"
        );
        assert_eq!(s.take(t0), Take::Wait(t0 + 10 * MS), "the slot due at 20");
    }

    #[test]
    fn runs_follow_one_another_and_places_are_bounded() {
        let t0 = Instant::now();
        let mut s = Slots::default();
        assert!(s.add(t0 + 100 * MS, 1, MS));
        assert!(s.add(t0 + 50 * MS, 1, MS));
        assert_eq!(s.take(t0), Take::Wait(t0 + 99 * MS), "the first run first");
        assert_eq!(s.take(t0 + 99 * MS), Take::Granted);
        assert_eq!(
            s.take(t0 + 99 * MS),
            Take::Wait(t0 + 100 * MS),
            "then the second, after it"
        );
        for _ in 0..3 {
            assert!(s.add(t0, 1, MS));
        }
        assert!(!s.has_room());
        assert!(!s.add(t0, 1, MS));
        assert_eq!(s.remaining(t0), 4);
        s.clear();
        assert_eq!(s.take(t0), Take::Empty);
        assert!(s.has_room());
    }
}
