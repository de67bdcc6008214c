//! The local cache of per-host fleet state, in a bounded, least-recently
//! used map: what the hot path reads and writes without Redis, and what the
//! background task sends and fills in.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use compact_str::CompactString;
use lru::LruCache;
use tokio::time::Instant;

use super::answers::FleetLoad;
use super::cycle::{CycleRecord, FleetCycle};
use super::keys::HostKeys;
use super::learned::{nonzero_time, Learned};
use super::lease::{Slots, Take};
use super::Slot;
use crate::tally::Tally;

/// Highest rate leased, slots per second: the schedule is kept in server
/// microseconds, so a slot must be at least a few of them apart.
pub(crate) const MAX_RATE: f64 = 100_000.0;

/// A rate below this share of the leased one is a cut.
const CUT: f64 = 0.9;

/// One host: its name, its keys, and its state.
#[derive(Debug)]
pub(crate) struct HostEntry {
    pub(crate) name: CompactString,
    pub(crate) keys: HostKeys,
    state: Mutex<HostState>,
}

impl HostEntry {
    pub(crate) fn lock(&self) -> MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What this process knows and owes about one host.
#[derive(Debug)]
pub(crate) struct HostState {
    /// Last use by the hot path.
    pub(crate) touched: Option<Instant>,
    /// End of the fleet's pause, Unix ms (0 for none): the latest of this
    /// process's own pauses and those read or pushed from Redis.
    pub(crate) pause_ms: u64,
    /// A pause end still to publish (0 for none).
    pub(crate) pause_pending: u64,
    /// The fleet's learned values, once read or published.
    pub(crate) learned: Option<Learned>,
    /// Learned values still to publish.
    pub(crate) learned_pending: Option<Learned>,
    /// The latest loss known, Unix ms (0 for none).
    pub(crate) last_loss_ms: u64,
    /// Start of the latest loss epoch known, Unix ms (0 for none).
    pub(crate) epoch_ms: u64,
    /// This process started an epoch that is still to publish.
    pub(crate) epoch_pending: bool,
    /// Live processes leasing the host, as last read.
    pub(crate) procs: u32,
    /// How far the fleet's schedule may go over the caller's rate (see
    /// [`Fleet::try_send_with_room`](super::Fleet::try_send_with_room)).
    pub(crate) room: f64,
    /// Send slots held.
    pub(crate) slots: Slots,
    /// The rate the caller last asked slots for.
    pub(crate) rate: f64,
    /// The rate of the latest lease.
    pub(crate) leased_rate: f64,
    /// Slots were asked for since the last lease.
    pub(crate) demand: bool,
    /// Slots were asked for while none was held and no lease was on its
    /// way: lease a full batch now.
    pub(crate) hungry: bool,
    /// A script call for this host is on its way.
    pub(crate) in_flight: bool,
    /// The fleet's schedule is full until then.
    pub(crate) next_lease: Option<Instant>,
    /// Smoothed share of leased slots that were spent.
    pub(crate) utilization: f64,
    /// Last reply about this host.
    pub(crate) synced: Option<Instant>,
    /// Read the host's state at the next round (first use, use after a long
    /// idle, rejoin).
    pub(crate) needs_sync: bool,
    /// This process's latest cycle, still to publish.
    pub(crate) cycle_pending: Option<CycleRecord>,
    /// Read the fleet's cycles then, to merge those that ended near this
    /// end (Unix µs); reads left before merging what there is (0: the
    /// late read after the merge, see `CYCLE_LATE_READ`).
    pub(crate) cycle_read: Option<(Instant, u64, u8)>,
    /// The fleet's latest merged cycle.
    pub(crate) cycle: Option<Arc<FleetCycle>>,
    /// Fleet cycles merged so far.
    pub(crate) cycles_merged: u64,
    /// After a (re)join, until then the processes come back one lease at a
    /// time: the schedule is not in force and the count does not fall.
    pub(crate) forming_until: Option<Instant>,
    /// This process's answers from the host, still to report.
    pub(crate) tally: Tally,
    /// What the fleet's answers said at the latest lease.
    pub(crate) load: Option<FleetLoad>,
}

impl Default for HostState {
    fn default() -> Self {
        Self {
            touched: None,
            pause_ms: 0,
            pause_pending: 0,
            learned: None,
            learned_pending: None,
            last_loss_ms: 0,
            epoch_ms: 0,
            epoch_pending: false,
            procs: 0,
            room: 1.0,
            slots: Slots::default(),
            rate: 0.0,
            leased_rate: 0.0,
            demand: false,
            hungry: false,
            in_flight: false,
            next_lease: None,
            utilization: 1.0,
            synced: None,
            needs_sync: true,
            cycle_pending: None,
            cycle_read: None,
            cycle: None,
            cycles_merged: 0,
            forming_until: None,
            tally: Tally::default(),
            load: None,
        }
    }
}

impl HostState {
    /// Whether the fleet still re-forms after a (re)join at `now`.
    pub(crate) fn forming(&self, now: Instant) -> bool {
        self.forming_until.is_some_and(|t| now < t)
    }

    /// This process's share of the host: one over the live processes.
    pub(crate) fn share(&self) -> f64 {
        1.0 / f64::from(self.procs.max(1))
    }

    /// The fleet's learned values with the latest loss known.
    pub(crate) fn learned(&self) -> Option<Learned> {
        self.learned.map(|l| Learned {
            last_loss: nonzero_time(self.last_loss_ms).or(l.last_loss),
            ..l
        })
    }

    /// Spends a held slot at `now`, or says when to ask again (at most
    /// `max_wait` ahead, so a caller notices a change of state); the `bool`
    /// asks the background task to lease now.
    ///
    /// A rate cut (below 90 % of the rate the slots were leased at) drops
    /// the slots held: spending them would keep the old rate for up to the
    /// lookahead.
    pub(crate) fn try_send(
        &mut self,
        rate: f64,
        now: Instant,
        rtt: Duration,
        max_wait: Duration,
    ) -> (Slot, bool) {
        self.rate = rate;
        self.demand = true;
        if rate < self.leased_rate * CUT {
            self.slots.clear();
            self.leased_rate = rate;
        }
        let soon = now + (rtt * 2).max(Duration::from_millis(1));
        let (at, wake) = match self.slots.take(now) {
            Take::Granted => return (Slot::Granted, false),
            Take::Wait(at) => (at, false),
            Take::Empty if self.in_flight => (soon, false),
            Take::Empty => match self.next_lease {
                Some(at) if at > now => (at, false),
                _ => {
                    let wake = !self.hungry;
                    self.hungry = true;
                    (soon, wake)
                }
            },
        };
        (Slot::WaitUntil(at.min(now + max_wait)), wake)
    }

    /// Slots to lease now, if any: a full batch (`lease × rate / procs`)
    /// when starving, else a batch scaled by how much of the last ones was
    /// spent, when the slots held fall below half a batch plus what the
    /// pace spends before the next look, a `refresh` from now. (Looked at
    /// only every `refresh`, the half batch ran out before the next look
    /// as often as not, and the pace waited for the lease.)
    pub(crate) fn lease_wanted(&mut self, now: Instant, lease: Duration, refresh: Duration) -> Option<u32> {
        let rate = self.rate;
        if !(rate.is_finite() && rate > 0.0) || !(self.demand || self.hungry) || !self.slots.has_room() {
            return None;
        }
        let rate = rate.min(MAX_RATE);
        if self.next_lease.is_some_and(|at| now < at) {
            return None;
        }
        let full = (lease.as_secs_f64() * rate / f64::from(self.procs.max(1)))
            .ceil()
            .max(1.0);
        if self.hungry {
            return Some(full as u32);
        }
        let batch = (full * self.utilization.clamp(0.125, 1.0)).ceil().max(1.0);
        let till_next_look = refresh.as_secs_f64() * rate / f64::from(self.procs.max(1));
        (f64::from(self.slots.remaining(now)) < batch / 2.0 + till_next_look).then_some(batch as u32)
    }

    /// Books a lease request about to be sent. Returns the slots dropped
    /// unspent since the last one.
    pub(crate) fn leasing(&mut self) -> u32 {
        self.leased_rate = self.rate;
        let wasted = self.slots.wasted;
        if let Some(u) = self.slots.utilization() {
            self.utilization = 0.5 * self.utilization + 0.5 * u;
        }
        self.demand = false;
        self.in_flight = true;
        wasted
    }

    /// Records a pause end (Unix ms) seen elsewhere.
    pub(crate) fn merge_pause(&mut self, until_ms: u64) {
        self.pause_ms = self.pause_ms.max(until_ms);
    }

    /// Records the fleet's learned values, unless this process has newer
    /// ones still to publish.
    pub(crate) fn merge_learned(&mut self, rate: f64, measured: bool, last_loss_ms: u64) {
        self.last_loss_ms = self.last_loss_ms.max(last_loss_ms);
        if self.learned_pending.is_none() {
            self.learned = Some(Learned {
                rate,
                measured,
                last_loss: None,
            });
        }
    }
}

/// Hosts by name, at most `cap`; the least recently used goes first.
#[derive(Debug)]
pub(crate) struct Hosts {
    namespace: String,
    map: Mutex<LruCache<CompactString, Arc<HostEntry>>>,
}

impl Hosts {
    pub(crate) fn new(namespace: &str, cap: usize) -> Self {
        Self {
            namespace: namespace.to_owned(),
            map: Mutex::new(LruCache::new(NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<CompactString, Arc<HostEntry>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the host's state, tracking the host from now on if it
    /// was not (the only allocation) and marking it used at `now`. The
    /// `bool` says the host is new or was idle longer than `idle`: its
    /// state should be read from Redis soon.
    pub(crate) fn with<R>(
        &self,
        host: &str,
        now: Instant,
        idle: Duration,
        f: impl FnOnce(&mut HostState) -> R,
    ) -> (R, bool) {
        let lowered;
        let name = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            let mut s = CompactString::new(host);
            s.make_ascii_lowercase();
            lowered = s;
            lowered.as_str()
        } else {
            host
        };
        let mut map = self.lock();
        if let Some(entry) = map.get(name) {
            let mut st = entry.lock();
            let stale = st.touched.is_none_or(|t| now.saturating_duration_since(t) > idle);
            if stale {
                st.needs_sync = true;
            }
            if st.touched.is_none_or(|t| t < now) {
                st.touched = Some(now);
            }
            return (f(&mut st), stale);
        }
        let entry = Arc::new(HostEntry {
            name: CompactString::new(name),
            keys: HostKeys::new(&self.namespace, name),
            state: Mutex::new(HostState {
                touched: Some(now),
                ..HostState::default()
            }),
        });
        let r = f(&mut entry.lock());
        map.push(entry.name.clone(), entry);
        (r, true)
    }

    /// The host's entry, if tracked, without marking it used.
    pub(crate) fn peek(&self, host: &str) -> Option<Arc<HostEntry>> {
        self.lock().peek(host).cloned()
    }

    /// Entries used within `idle` of `now`, or with something to publish.
    pub(crate) fn active(&self, now: Instant, idle: Duration) -> Vec<Arc<HostEntry>> {
        self.lock()
            .iter()
            .filter(|(_, e)| {
                let st = e.lock();
                st.touched
                    .is_some_and(|t| now.saturating_duration_since(t) <= idle)
                    || st.pause_pending > 0
                    || st.learned_pending.is_some()
                    || st.epoch_pending
            })
            .map(|(_, e)| Arc::clone(e))
            .collect()
    }

    /// Every entry.
    pub(crate) fn all(&self) -> Vec<Arc<HostEntry>> {
        self.lock().iter().map(|(_, e)| Arc::clone(e)).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
