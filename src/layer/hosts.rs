//! Per-host partitions: each host's pause (from `Retry-After` or back-off)
//! in a bounded, least-recently-used map.

use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use lru::LruCache;

use super::adaptive::{AdaptiveConfig, Controller};

/// The key of a host: a hash of its `host[:port]`, ASCII case folded.
///
/// Hashing 8 bytes at a time keeps this to a few nanoseconds, so the hot
/// path can afford it on every request; two hosts that collide in 64 bits
/// would share one partition.
#[inline]
pub(crate) fn host_key(authority: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let bytes = authority.as_bytes();
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ (u64::from_le_bytes(w) | FOLD)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ (u64::from_le_bytes(w) | FOLD)).wrapping_mul(K);
    }
    // Never 0: 0 is the key of "all hosts" when partitions are off.
    h | 1
}

/// One host's state.
#[derive(Debug, Default)]
pub(crate) struct HostState {
    /// Filled by the first request that looks the host up by name.
    pub(crate) name: OnceLock<Box<str>>,
    /// Coarse-clock ms until which new requests wait; 0 when never paused.
    pub(crate) paused_until_ms: AtomicU64,
    /// When the current or latest pause began.
    pub(crate) pause_started_ms: AtomicU64,
    /// Consecutive back-off steps without `Retry-After`.
    pub(crate) backoff_level: AtomicU32,
    /// Counted errors from this host.
    pub(crate) errors: AtomicU64,
    /// The adaptive controller, made on first use under `Adaptive` (boxed:
    /// hosts under the other policies carry a pointer, not its ~650 bytes).
    adaptive: OnceLock<Box<Mutex<Controller>>>,
}

impl HostState {
    /// The host's name, or `#` and its key before a request named it.
    pub(crate) fn display_name(&self, key: u64) -> String {
        self.name
            .get()
            .map_or_else(|| format!("#{key:016x}"), |n| n.to_string())
    }

    /// Extends the pause to `until_ms` (never shortens it). Returns whether
    /// the pause grew.
    pub(crate) fn pause_until(&self, now_ms: u64, until_ms: u64) -> bool {
        let prev = self.paused_until_ms.fetch_max(until_ms, Ordering::AcqRel);
        if prev < until_ms {
            if prev <= now_ms {
                self.pause_started_ms.store(now_ms, Ordering::Release);
            }
            true
        } else {
            false
        }
    }

    /// This host's adaptive controller, locked.
    pub(crate) fn controller(&self, cfg: &AdaptiveConfig) -> MutexGuard<'_, Controller> {
        self.adaptive
            .get_or_init(|| Box::new(Mutex::new(Controller::new(*cfg, tokio::time::Instant::now()))))
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// This host's adaptive controller, locked, if it has one.
    pub(crate) fn existing_controller(&self) -> Option<MutexGuard<'_, Controller>> {
        self.adaptive
            .get()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Milliseconds left in the pause at `now_ms`.
    pub(crate) fn remaining_ms(&self, now_ms: u64) -> u64 {
        self.paused_until_ms
            .load(Ordering::Acquire)
            .saturating_sub(now_ms)
    }
}

/// Hashes a [`host_key`], which is a hash already: folds its well-mixed
/// high bits into the low ones the table indexes by, instead of running
/// SipHash over it again on every lookup.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key ^ (key >> 29) ^ (key >> 47);
    }
}

type Keyed = BuildHasherDefault<KeyHasher>;

/// Hosts by key, at most `cap` of them; the least recently used goes first.
#[derive(Debug)]
pub(crate) struct HostMap {
    map: Mutex<LruCache<u64, Arc<HostState>, Keyed>>,
}

impl HostMap {
    pub(crate) fn new(cap: NonZeroUsize) -> Self {
        Self {
            map: Mutex::new(LruCache::with_hasher(cap, Keyed::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<u64, Arc<HostState>, Keyed>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The host's state, if tracked (marks it recently used).
    pub(crate) fn get(&self, key: u64) -> Option<Arc<HostState>> {
        self.lock().get(&key).cloned()
    }

    /// The host's state, tracked from now on if it was not.
    pub(crate) fn get_or_insert(&self, key: u64) -> Arc<HostState> {
        let mut map = self.lock();
        if let Some(h) = map.get(&key) {
            return Arc::clone(h);
        }
        let h = Arc::new(HostState::default());
        map.push(key, Arc::clone(&h));
        h
    }

    /// Number of hosts tracked.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Every tracked host with its name (or key) and state, most recently
    /// used first, at most `n`.
    pub(crate) fn top(&self, n: usize) -> Vec<(String, Arc<HostState>)> {
        self.lock()
            .iter()
            .take(n)
            .map(|(key, h)| (h.display_name(*key), Arc::clone(h)))
            .collect()
    }

    /// Hosts paused at `now_ms`, with their names (or their keys in hex when
    /// no request has named them yet) and remaining milliseconds.
    pub(crate) fn paused(&self, now_ms: u64) -> Vec<(String, u64)> {
        self.lock()
            .iter()
            .filter_map(|(key, h)| {
                let left = h.remaining_ms(now_ms);
                (left > 0).then(|| (h.display_name(*key), left))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_case_and_differ_by_port() {
        assert_eq!(host_key("Example.COM:8080"), host_key("example.com:8080"));
        assert_ne!(host_key("example.com:8080"), host_key("example.com:8081"));
        assert_ne!(host_key("a.example"), host_key("b.example"));
        assert_ne!(host_key(""), 0);
    }

    #[test]
    fn map_stays_within_its_cap() {
        let m = HostMap::new(NonZeroUsize::new(3).unwrap());
        for i in 0..100 {
            m.get_or_insert(host_key(&format!("h{i}.example")));
        }
        assert_eq!(m.len(), 3);
        assert!(m.get(host_key("h99.example")).is_some());
        assert!(m.get(host_key("h0.example")).is_none());
    }

    #[test]
    fn pauses_only_grow() {
        let h = HostState::default();
        assert!(h.pause_until(100, 1100));
        assert!(!h.pause_until(200, 900));
        assert_eq!(h.remaining_ms(600), 500);
        assert_eq!(h.pause_started_ms.load(Ordering::Relaxed), 100);
        assert!(h.pause_until(2000, 3000), "a new pause after the old one ended");
        assert_eq!(h.pause_started_ms.load(Ordering::Relaxed), 2000);
    }
}
