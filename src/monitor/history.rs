//! The time-ordered window of snapshots kept for one resource.

use std::collections::VecDeque;
use std::time::Duration;

use super::snapshot::{ClientSnapshot, CpuSnapshot, EventLoopSnapshot, MemorySnapshot, Snapshot};

/// Snapshots of one resource, sorted by `created_at`, holding only those
/// within `retention` of the newest one.
///
/// Insertion keeps the order even when a snapshot arrives late, and pruning
/// happens after the insert, measured back from the newest snapshot, not from
/// the clock (Crawlee Python's fix for out-of-order events, PR #1735).
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use tower_snapshotter::history::History;
/// use tower_snapshotter::snapshot::CpuSnapshot;
///
/// let t0 = Instant::now();
/// let at = |s| CpuSnapshot { used_ratio: 0.1, max_used_ratio: 0.95, created_at: t0 + Duration::from_secs(s) };
/// let mut h = History::new(Duration::from_secs(10));
/// h.insert(at(20));
/// h.insert(at(5)); // late, and older than 10 s before the newest: pruned
/// h.insert(at(15));
/// assert_eq!(h.len(), 2);
/// assert_eq!(h.sample(Some(Duration::from_secs(1))).len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct History<S> {
    items: VecDeque<S>,
    retention: Duration,
}

impl<S: Snapshot + Clone> History<S> {
    /// An empty window that keeps `retention` worth of snapshots.
    pub fn new(retention: Duration) -> Self {
        Self {
            items: VecDeque::new(),
            retention,
        }
    }

    /// How far back from the newest snapshot the window reaches.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// Inserts in time order (after any snapshot with the same timestamp),
    /// then drops what is older than `retention` before the newest.
    pub fn insert(&mut self, snapshot: S) {
        let at = snapshot.created_at();
        let pos = self.items.partition_point(|s| s.created_at() <= at);
        self.items.insert(pos, snapshot);
        self.prune();
    }

    fn prune(&mut self) {
        let Some(newest) = self.items.back().map(Snapshot::created_at) else {
            return;
        };
        while let Some(oldest) = self.items.front() {
            if newest.saturating_duration_since(oldest.created_at()) > self.retention {
                self.items.pop_front();
            } else {
                break;
            }
        }
    }

    /// The snapshots within `duration` of the newest one, oldest first;
    /// `None` or a zero duration gives the whole window (as Crawlee's falsy
    /// duration does).
    pub fn sample(&self, duration: Option<Duration>) -> Vec<S> {
        let start = self.sample_start(duration);
        self.items.range(start..).cloned().collect()
    }

    /// Index of the first snapshot in `sample(duration)`.
    fn sample_start(&self, duration: Option<Duration>) -> usize {
        let (Some(d), Some(newest)) = (duration.filter(|d| !d.is_zero()), self.items.back()) else {
            return 0;
        };
        let newest = newest.created_at();
        self.items
            .partition_point(|s| newest.saturating_duration_since(s.created_at()) > d)
    }

    /// Calls `f` with the sample as one or two contiguous slices, without
    /// copying.
    pub(crate) fn with_sample<R>(&self, duration: Option<Duration>, f: impl FnOnce(&[S], &[S]) -> R) -> R {
        let start = self.sample_start(duration);
        let (a, b) = self.items.as_slices();
        if start >= a.len() {
            f(&b[start - a.len()..], &[])
        } else {
            f(&a[start..], b)
        }
    }

    /// The newest snapshot, if any.
    pub fn newest(&self) -> Option<&S> {
        self.items.back()
    }

    /// Number of snapshots held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the window holds nothing.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Removes every snapshot.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// Iterates oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &S> {
        self.items.iter()
    }
}

/// One window per resource: what a snapshotter keeps and `judge` reads.
#[derive(Debug)]
pub(crate) struct Windows {
    pub(crate) cpu: History<CpuSnapshot>,
    pub(crate) memory: History<MemorySnapshot>,
    pub(crate) event_loop: History<EventLoopSnapshot>,
    pub(crate) client: History<ClientSnapshot>,
}

impl Windows {
    /// Four empty windows keeping `retention` back from their newest snapshot.
    pub(crate) fn new(retention: Duration) -> Self {
        Self {
            cpu: History::new(retention),
            memory: History::new(retention),
            event_loop: History::new(retention),
            client: History::new(retention),
        }
    }

    /// Empties every window.
    pub(crate) fn clear(&mut self) {
        self.cpu.clear();
        self.memory.clear();
        self.event_loop.clear();
        self.client.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    const HOUR: u64 = 3600;

    fn cpu(at: Instant) -> CpuSnapshot {
        CpuSnapshot {
            used_ratio: 0.5,
            max_used_ratio: 0.95,
            created_at: at,
        }
    }

    fn times(h: &History<CpuSnapshot>) -> Vec<Instant> {
        h.iter().map(|s| s.created_at).collect()
    }

    #[test]
    fn out_of_order_inserts_are_pruned_from_the_newest() {
        // Crawlee Python: [now, -3 h, -2 h, -5 h] with a 2 h history keeps [-2 h, now].
        let now = Instant::now() + Duration::from_secs(10 * HOUR);
        let ago = |h: u64| now - Duration::from_secs(h * HOUR);
        let mut h = History::new(Duration::from_secs(2 * HOUR));
        for t in [now, ago(3), ago(2), ago(5)] {
            h.insert(cpu(t));
        }
        assert_eq!(times(&h), vec![ago(2), now]);
    }

    #[test]
    fn late_insert_ends_sorted() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut h = History::new(Duration::from_secs(100));
        for s in [5, 1, 9, 3, 7, 3] {
            h.insert(cpu(at(s)));
        }
        assert_eq!(times(&h), [1, 3, 3, 5, 7, 9].map(at).to_vec());
    }

    #[test]
    fn samples_of_several_durations_count_back_from_the_newest() {
        // Crawlee Python: events at -5..-1 h; 0.5 h -> 1, 2.5 h -> 3, 10 h -> all.
        let now = Instant::now() + Duration::from_secs(10 * HOUR);
        let mut h = History::new(Duration::from_secs(24 * HOUR));
        for ago in [5, 4, 3, 2, 1] {
            h.insert(cpu(now - Duration::from_secs(ago * HOUR)));
        }
        let secs = |h: f64| Some(Duration::from_secs_f64(h * HOUR as f64));
        assert_eq!(h.sample(secs(0.5)).len(), 1);
        assert_eq!(h.sample(secs(2.5)).len(), 3);
        assert_eq!(h.sample(secs(10.0)).len(), 5);
        assert_eq!(h.sample(None).len(), 5);
        assert_eq!(h.sample(Some(Duration::ZERO)).len(), 5);
        // Inclusive at the edge: exactly 1 h back is inside.
        assert_eq!(h.sample(secs(1.0)).len(), 2);
    }

    #[test]
    fn empty_window_samples_nothing() {
        let h: History<CpuSnapshot> = History::new(Duration::from_secs(1));
        assert!(h.sample(Some(Duration::from_secs(1))).is_empty());
        assert!(h.sample(None).is_empty());
        assert!(h.newest().is_none());
    }

    #[test]
    fn with_sample_sees_the_same_snapshots_across_a_wrapped_ring() {
        let t0 = Instant::now();
        let mut h = History::new(Duration::from_secs(3));
        for s in 0..20u64 {
            h.insert(cpu(t0 + Duration::from_secs(s)));
            let want = h.sample(Some(Duration::from_secs(2)));
            let got = h.with_sample(Some(Duration::from_secs(2)), |a, b| [a, b].concat());
            assert_eq!(got, want);
        }
    }
}
