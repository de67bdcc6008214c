//! Per-host partitions: each host's pause (from `Retry-After` or back-off)
//! and adaptive controller, in a bounded, least-recently-used map.
//!
//! A host is its full authority (`host[:port]`, ASCII case folded), never a
//! hash of it: two sites can never share a partition, whatever names a
//! crawl meets. The map hashes names with a per-process random seed, so
//! chosen names cannot steer lookups into one chain either.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use compact_str::CompactString;
use lru::LruCache;

use super::adaptive::{AdaptiveConfig, Controller};

/// A host's identity: its authority, ASCII lowercase. Names up to 24 bytes
/// (most `host:port` pairs) are stored inline, so carrying one in every
/// response future costs a copy, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct HostName(CompactString);

impl HostName {
    /// The name of `authority` (the empty name when partitions are off).
    #[inline]
    pub(crate) fn new(authority: &str) -> Self {
        let mut name = CompactString::new(authority);
        // A fold without early exit: fewer branches than `any`.
        if authority
            .bytes()
            .fold(false, |upper, b| upper | b.is_ascii_uppercase())
        {
            name.make_ascii_lowercase();
        }
        Self(name)
    }

    #[inline]
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// One host's state.
#[derive(Debug, Default)]
pub(crate) struct HostState {
    /// Coarse-clock ms until which new requests wait; 0 when never paused.
    pub(crate) paused_until_ms: AtomicU64,
    /// When the current or latest pause began.
    pub(crate) pause_started_ms: AtomicU64,
    /// Milliseconds this host has been paused in all, ended pauses and the
    /// one under way counted to its end.
    pub(crate) paused_total_ms: AtomicU64,
    /// Consecutive back-off steps without `Retry-After`.
    pub(crate) backoff_level: AtomicU32,
    /// Runs of bare 403s (see `forbidden.rs`): the current run's length
    /// since the host last accepted, the length at which it is a block's,
    /// the coarse-clock ms of its latest 403, and the answers counted
    /// before it and the bare 403s among them.
    pub(crate) forbidden_run: AtomicU32,
    pub(crate) forbidden_needed: AtomicU32,
    pub(crate) forbidden_last_ms: AtomicU64,
    pub(crate) answers_counted: AtomicU32,
    pub(crate) forbidden_counted: AtomicU32,
    /// What its bare 403s are, as a trial of the pace found, and the
    /// trial under way: when its pace was set (coarse-clock ms, 0 for
    /// none), the share of 403s before it (parts per million), and the
    /// answers to sends since and the 403s among them
    /// (`forbidden_trial.rs`).
    pub(crate) forbidden_kind: AtomicU8,
    pub(crate) trial_from_ms: AtomicU64,
    pub(crate) trial_share_before: AtomicU32,
    pub(crate) trial_answers: AtomicU32,
    pub(crate) trial_forbidden: AtomicU32,
    pub(crate) trial_steps: AtomicU8,
    /// Counted errors from this host.
    pub(crate) errors: AtomicU64,
    /// Dropped from the map: a service clone's copy is no longer current.
    pub(crate) evicted: AtomicBool,
    /// Coarse-clock ms when a service clone last looked it up in the map
    /// (which marks it recently used).
    pub(crate) looked_up_ms: AtomicU64,
    /// The adaptive controller, made on first use (boxed: hosts without one
    /// carry a pointer, not its ~650 bytes).
    adaptive: OnceLock<Box<Mutex<Controller>>>,
    /// When this process last told the fleet the host's rate, and which.
    #[cfg(feature = "redis")]
    published: Mutex<Option<(tokio::time::Instant, f64)>>,
}

impl HostState {
    /// Extends the pause to `until_ms` (never shortens it). Returns by how
    /// many milliseconds the host's paused time grew, if the pause grew.
    pub(crate) fn pause_until(&self, now_ms: u64, until_ms: u64) -> Option<u64> {
        let prev = self.paused_until_ms.fetch_max(until_ms, Ordering::AcqRel);
        if prev < until_ms {
            if prev <= now_ms {
                self.pause_started_ms.store(now_ms, Ordering::Release);
            }
            let added = until_ms.saturating_sub(prev.max(now_ms));
            self.paused_total_ms.fetch_add(added, Ordering::Relaxed);
            Some(added)
        } else {
            None
        }
    }

    /// How long this host has been paused in all (the pause under way
    /// counted to its end).
    pub(crate) fn paused_total(&self) -> u64 {
        self.paused_total_ms.load(Ordering::Relaxed)
    }

    /// This host's adaptive controller, locked; made at `now` if the host
    /// has none yet. `now` is the caller's reading, taken before the lock:
    /// a controller made later than the send it admits counted that send
    /// before its own start, so the first acceptance was not counted, and
    /// refusals without `Retry-After` that found nothing accepted set no
    /// pace (a client sending one request at a time had 24 % of its
    /// requests refused by nginx without `burst=` at 100/s, in real time).
    pub(crate) fn controller(
        &self,
        cfg: &AdaptiveConfig,
        now: tokio::time::Instant,
    ) -> MutexGuard<'_, Controller> {
        self.adaptive
            .get_or_init(|| Box::new(Mutex::new(Controller::new(*cfg, now))))
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// This host's adaptive controller, locked, if it has one.
    pub(crate) fn existing_controller(&self) -> Option<MutexGuard<'_, Controller>> {
        self.adaptive
            .get()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether to tell the fleet `rate` now: the first time, or a second
    /// after the last time if the rate moved more than 5 % since.
    #[cfg(feature = "redis")]
    pub(crate) fn should_publish(&self, now: tokio::time::Instant, rate: f64) -> bool {
        let mut last = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|(at, was)| {
            now.saturating_duration_since(at) >= std::time::Duration::from_secs(1)
                && (rate - was).abs() > 0.05 * was
        });
        if due {
            *last = Some((now, rate));
        }
        due
    }

    /// Milliseconds left in the pause at `now_ms`.
    pub(crate) fn remaining_ms(&self, now_ms: u64) -> u64 {
        self.paused_until_ms
            .load(Ordering::Acquire)
            .saturating_sub(now_ms)
    }
}

/// Hosts by name, at most `cap` of them; the least recently used goes first.
#[derive(Debug)]
pub(crate) struct HostMap {
    map: Mutex<LruCache<HostName, Arc<HostState>>>,
}

impl HostMap {
    pub(crate) fn new(cap: NonZeroUsize) -> Self {
        Self {
            map: Mutex::new(LruCache::new(cap)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<HostName, Arc<HostState>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The host's state, if tracked (marks it recently used).
    pub(crate) fn get(&self, host: &HostName) -> Option<Arc<HostState>> {
        self.lock().get(host).cloned()
    }

    /// The host's state, tracked from now on if it was not.
    pub(crate) fn get_or_insert(&self, host: &HostName) -> Arc<HostState> {
        let mut map = self.lock();
        if let Some(h) = map.get(host) {
            return Arc::clone(h);
        }
        let h = Arc::new(HostState::default());
        if let Some((_, old)) = map.push(host.clone(), Arc::clone(&h)) {
            // The least recently used host made room.
            old.evicted.store(true, Ordering::Relaxed);
        }
        h
    }

    /// Number of hosts tracked.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Every tracked host with its name and state, most recently used
    /// first, at most `n`.
    pub(crate) fn top(&self, n: usize) -> Vec<(String, Arc<HostState>)> {
        self.lock()
            .iter()
            .take(n)
            .map(|(name, h)| (name.as_str().to_owned(), Arc::clone(h)))
            .collect()
    }

    /// Hosts that were ever paused, with their names and total paused
    /// milliseconds, most recently used first, `n` at most.
    pub(crate) fn paused_totals(&self, n: usize) -> Vec<(String, u64)> {
        self.lock()
            .iter()
            .filter_map(|(name, h)| {
                let total = h.paused_total();
                (total > 0).then(|| (name.as_str().to_owned(), total))
            })
            .take(n)
            .collect()
    }

    /// Hosts paused at `now_ms`, with their names and remaining
    /// milliseconds.
    pub(crate) fn paused(&self, now_ms: u64) -> Vec<(String, u64)> {
        self.lock()
            .iter()
            .filter_map(|(name, h)| {
                let left = h.remaining_ms(now_ms);
                (left > 0).then(|| (name.as_str().to_owned(), left))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> HostName {
        HostName::new(s)
    }

    #[test]
    fn names_fold_case_and_differ_by_port() {
        assert_eq!(name("Example.COM:8080"), name("example.com:8080"));
        assert_ne!(name("example.com:8080"), name("example.com:8081"));
        assert_eq!(name("Example.COM:8080").as_str(), "example.com:8080");
    }

    #[test]
    fn names_the_old_hash_confused_stay_apart() {
        // The old key ORed 0x20 into every byte before hashing, so these two
        // (`[` is 0x5b, `{` is 0x7b) had one key and shared one partition.
        let m = HostMap::new(NonZeroUsize::new(8).unwrap());
        let a = m.get_or_insert(&name("a[b.example"));
        let b = m.get_or_insert(&name("a{b.example"));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn map_stays_within_its_cap() {
        let m = HostMap::new(NonZeroUsize::new(3).unwrap());
        for i in 0..100 {
            m.get_or_insert(&name(&format!("h{i}.example")));
        }
        assert_eq!(m.len(), 3);
        assert!(m.get(&name("h99.example")).is_some());
        assert!(m.get(&name("h0.example")).is_none());
    }

    #[test]
    fn an_evicted_host_says_so() {
        let m = HostMap::new(NonZeroUsize::new(2).unwrap());
        let first = m.get_or_insert(&name("a.example"));
        m.get_or_insert(&name("b.example"));
        assert!(!first.evicted.load(Ordering::Relaxed));
        m.get_or_insert(&name("c.example"));
        assert!(first.evicted.load(Ordering::Relaxed), "a.example made room");
    }

    #[test]
    fn pauses_only_grow() {
        let h = HostState::default();
        assert_eq!(h.pause_until(100, 1100), Some(1000));
        assert_eq!(h.pause_until(200, 900), None);
        assert_eq!(h.pause_until(600, 1300), Some(200), "extended by 200 ms");
        assert_eq!(h.paused_total(), 1200);
        assert_eq!(h.remaining_ms(600), 700);
        assert_eq!(h.pause_started_ms.load(Ordering::Relaxed), 100);
        assert_eq!(
            h.pause_until(2000, 3000),
            Some(1000),
            "a new pause after the old one ended"
        );
        assert_eq!(h.paused_total(), 2200);
        assert_eq!(h.pause_started_ms.load(Ordering::Relaxed), 2000);
    }
}
