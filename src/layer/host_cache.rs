//! The host a service clone sent to last, kept so that its next request
//! there skips the host map's lock and hash.
//!
//! A clone usually sends to one host many times in a row (a crawler's
//! worker, a client for one API), and the map is one lock for every
//! thread. The copy stays good while the map still holds the host (the
//! map marks what it evicts) and, so that a busy host is not evicted as
//! least recently used, it is looked up in the map again once a second.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::hosts::{HostMap, HostName, HostState};

/// How long a copy is used before the map is asked again (and marks the
/// host recently used).
const REFRESH_MS: u64 = 1_000;

/// A service clone's last host and its state.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostCache(Option<(HostName, Arc<HostState>)>);

impl HostCache {
    /// The state of `name`, from the copy if it is current at `now_ms`,
    /// otherwise from `map` (which then tracks the host if it did not).
    #[inline]
    pub(crate) fn get_or_insert(&mut self, map: &HostMap, name: &HostName, now_ms: u64) -> &Arc<HostState> {
        let current = matches!(&self.0, Some((n, s)) if n == name
            && !s.evicted.load(Ordering::Relaxed)
            && now_ms < s.looked_up_ms.load(Ordering::Relaxed).saturating_add(REFRESH_MS));
        if !current {
            self.0 = None;
        }
        &self
            .0
            .get_or_insert_with(|| {
                let state = map.get_or_insert(name);
                state.looked_up_ms.store(now_ms, Ordering::Relaxed);
                (name.clone(), state)
            })
            .1
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;

    #[test]
    fn a_copy_serves_until_its_host_is_evicted_or_a_second_passes() {
        let map = HostMap::new(NonZeroUsize::new(2).unwrap());
        let mut cache = HostCache::default();
        let a = HostName::new("a.example");
        let first = Arc::clone(cache.get_or_insert(&map, &a, 0));
        assert!(Arc::ptr_eq(&first, cache.get_or_insert(&map, &a, 999)));

        // Another host replaces the copy; the map still has both.
        let b = HostName::new("b.example");
        let other = Arc::clone(cache.get_or_insert(&map, &b, 1_000));
        assert!(!Arc::ptr_eq(&first, &other));
        assert!(Arc::ptr_eq(&first, cache.get_or_insert(&map, &a, 1_000)));

        // A third host evicts a.example (b.example was used later): the
        // copy of a.example must not be used, the map makes a new one.
        map.get_or_insert(&b);
        map.get_or_insert(&HostName::new("c.example"));
        let again = cache.get_or_insert(&map, &a, 1_001);
        assert!(!Arc::ptr_eq(&first, again), "an evicted host's copy is stale");
    }

    #[test]
    fn a_busy_copy_keeps_its_host_recently_used_in_the_map() {
        let map = HostMap::new(NonZeroUsize::new(2).unwrap());
        let mut cache = HostCache::default();
        let busy = HostName::new("busy.example");
        let state = Arc::clone(cache.get_or_insert(&map, &busy, 0));
        map.get_or_insert(&HostName::new("old.example"));
        // Two seconds of requests through the copy, then a new host: the
        // refresh at one second made busy.example the most recently used.
        for ms in (0..2_000).step_by(10) {
            cache.get_or_insert(&map, &busy, ms);
        }
        map.get_or_insert(&HostName::new("new.example"));
        assert!(!state.evicted.load(Ordering::Relaxed), "old.example went");
        assert!(map.get(&HostName::new("old.example")).is_none());
    }
}
