//! What the fleet is doing: a snapshot for dashboards, and the counters it
//! is read from.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A snapshot of a [`Fleet`](super::Fleet)'s connection to the shared state.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct FleetStats {
    /// Whether Redis answers: leases are granted from the fleet's budget.
    /// When false, [`Fleet::try_send`](super::Fleet::try_send) answers
    /// [`Slot::Local`](super::Slot::Local).
    pub connected: bool,
    /// Whether pauses, learned rates and loss epochs of other processes
    /// arrive as pushed events (otherwise they are polled every refresh).
    pub subscribed: bool,
    /// Send slots per second this process leased over the last second or
    /// so.
    pub lease_rate: f64,
    /// Time since the last successful Redis command; `None` before the
    /// first.
    pub last_sync_age: Option<Duration>,
    /// How long the process has been working locally; `None` while
    /// connected.
    pub local_since: Option<Duration>,
    /// All the time spent working locally since the fleet started, the
    /// current stretch included.
    pub local_total: Duration,
    /// Redis commands sent since the fleet started (scripts, retries after
    /// `NOSCRIPT`, pings, subscriptions).
    pub commands: u64,
    /// Send slots leased since the fleet started.
    pub leased: u64,
    /// Leased slots that fell due and were dropped unspent (counted when
    /// the next lease is asked for): budget this process took from the
    /// fleet's schedule and did not use.
    pub wasted: u64,
    /// The fleet's sending cycles this process merged: each ended by a
    /// pause some process's refusal began, each process's sends in it
    /// read from Redis and fitted as one limiter's (see the module docs).
    pub cycles_merged: u64,
    /// Of those, merges of a cycle merged before, again, with the records
    /// of processes that published theirs late (see the module docs).
    pub cycles_remerged: u64,
    /// Hosts in the local cache.
    pub hosts: usize,
}

/// The counters behind [`FleetStats`], written by the background task.
#[derive(Debug)]
pub(crate) struct Counters {
    base: Instant,
    pub(crate) connected: AtomicBool,
    pub(crate) subscribed: AtomicBool,
    pub(crate) commands: AtomicU64,
    pub(crate) leased: AtomicU64,
    pub(crate) wasted: AtomicU64,
    pub(crate) cycles_merged: AtomicU64,
    pub(crate) cycles_remerged: AtomicU64,
    /// ms since `base` of the last success, plus one; 0 for never.
    last_ok: AtomicU64,
    /// ms since `base` when the current local stretch began.
    local_since: AtomicU64,
    /// ms of local stretches that ended.
    local_total: AtomicU64,
    /// Bits of an `f64`.
    lease_rate: AtomicU64,
    /// Smoothed round-trip time of a command, µs.
    rtt_us: AtomicU64,
}

impl Counters {
    pub(crate) fn new(base: Instant) -> Self {
        Self {
            base,
            connected: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            commands: AtomicU64::new(0),
            leased: AtomicU64::new(0),
            wasted: AtomicU64::new(0),
            cycles_merged: AtomicU64::new(0),
            cycles_remerged: AtomicU64::new(0),
            last_ok: AtomicU64::new(0),
            local_since: AtomicU64::new(0),
            local_total: AtomicU64::new(0),
            lease_rate: AtomicU64::new(0f64.to_bits()),
            rtt_us: AtomicU64::new(1_000),
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// A command succeeded at `at` after `rtt`.
    pub(crate) fn ok(&self, at: Instant, rtt: Duration) {
        self.last_ok.store(self.ms(at) + 1, Ordering::Relaxed);
        let sample = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        let old = self.rtt_us.load(Ordering::Relaxed);
        self.rtt_us.store((old * 7 + sample) / 8, Ordering::Relaxed);
    }

    /// Time since the last success.
    pub(crate) fn since_ok(&self, now: Instant) -> Option<Duration> {
        match self.last_ok.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(self.ms(now).saturating_sub(ms - 1))),
        }
    }

    /// The smoothed round-trip time.
    pub(crate) fn rtt(&self) -> Duration {
        Duration::from_micros(self.rtt_us.load(Ordering::Relaxed))
    }

    /// Connected from `at` on; returns whether that is a change.
    pub(crate) fn set_connected(&self, at: Instant) -> bool {
        if self.connected.swap(true, Ordering::AcqRel) {
            return false;
        }
        let since = self.local_since.load(Ordering::Relaxed);
        self.local_total
            .fetch_add(self.ms(at).saturating_sub(since), Ordering::Relaxed);
        true
    }

    /// Local from `at` on; returns whether that is a change.
    pub(crate) fn set_local(&self, at: Instant) -> bool {
        self.subscribed.store(false, Ordering::Relaxed);
        if !self.connected.load(Ordering::Acquire) {
            return false;
        }
        self.local_since.store(self.ms(at), Ordering::Relaxed);
        self.connected.store(false, Ordering::Release);
        true
    }

    pub(crate) fn set_lease_rate(&self, rate: f64) {
        self.lease_rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, now: Instant, hosts: usize) -> FleetStats {
        let connected = self.is_connected();
        let local_since = (!connected).then(|| {
            Duration::from_millis(
                self.ms(now)
                    .saturating_sub(self.local_since.load(Ordering::Relaxed)),
            )
        });
        let local_total =
            Duration::from_millis(self.local_total.load(Ordering::Relaxed)) + local_since.unwrap_or_default();
        FleetStats {
            connected,
            subscribed: self.subscribed.load(Ordering::Relaxed),
            lease_rate: f64::from_bits(self.lease_rate.load(Ordering::Relaxed)),
            last_sync_age: self.since_ok(now),
            local_since,
            local_total,
            commands: self.commands.load(Ordering::Relaxed),
            leased: self.leased.load(Ordering::Relaxed),
            wasted: self.wasted.load(Ordering::Relaxed),
            cycles_merged: self.cycles_merged.load(Ordering::Relaxed),
            cycles_remerged: self.cycles_remerged.load(Ordering::Relaxed),
            hosts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn local_time_is_counted() {
        let c = Counters::new(Instant::now());
        tokio::time::advance(Duration::from_millis(300)).await;
        let s = c.snapshot(Instant::now(), 0);
        assert!(!s.connected);
        assert_eq!(s.local_since, Some(Duration::from_millis(300)));
        assert_eq!(s.last_sync_age, None);
        assert!(c.set_connected(Instant::now()));
        assert!(!c.set_connected(Instant::now()));
        c.ok(Instant::now(), Duration::from_micros(200));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(c.set_local(Instant::now()));
        assert!(!c.set_local(Instant::now()));
        tokio::time::advance(Duration::from_millis(50)).await;
        let s = c.snapshot(Instant::now(), 3);
        assert_eq!(s.local_since, Some(Duration::from_millis(50)));
        assert_eq!(s.local_total, Duration::from_millis(350));
        assert_eq!(s.last_sync_age, Some(Duration::from_millis(150)));
        assert_eq!(s.hosts, 3);
    }
}
