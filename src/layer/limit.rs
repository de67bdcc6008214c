//! A concurrency limit that can move while requests are in flight.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::signal::Signal;

/// In-flight count against a limit that a controller moves. Permits are
/// taken with a compare-and-swap and given back by [`release`](Self::release),
/// which wakes one waiter if any. The count's operations are sequentially
/// consistent, as the [`Signal`]'s are, so a waiter that registered is
/// either woken or sees the permit.
#[derive(Debug)]
pub(crate) struct DynamicLimit {
    in_flight: AtomicUsize,
    limit: AtomicUsize,
    pub(crate) notify: Signal,
}

impl DynamicLimit {
    /// A limit whose releases wake `notify`.
    pub(crate) fn with_notify(limit: usize, notify: Signal) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            notify,
        }
    }

    /// Takes a permit if one is free.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        let limit = self.limit.load(Ordering::Acquire);
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Takes a permit if fewer than `cap` are in flight, whatever the limit
    /// (for the `min_concurrency` floor under overload).
    pub(crate) fn try_acquire_below(&self, cap: usize) -> bool {
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < cap).then_some(n + 1))
            .is_ok()
    }

    /// Gives a permit back and wakes one waiter.
    #[inline]
    pub(crate) fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.notify.notify_one();
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Acquire)
    }

    /// Moves the limit; waiters are woken when it grows.
    pub(crate) fn set_limit(&self, limit: usize) {
        let old = self.limit.swap(limit, Ordering::AcqRel);
        if limit > old {
            self.notify.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_follow_the_limit() {
        let l = DynamicLimit::with_notify(2, Signal::default());
        assert!(l.try_acquire());
        assert!(l.try_acquire());
        assert!(!l.try_acquire());
        l.set_limit(1);
        l.release();
        assert!(!l.try_acquire(), "still one in flight at limit 1");
        l.release();
        assert!(l.try_acquire());
        assert_eq!(l.in_flight(), 1);
        assert!(!l.try_acquire_below(1));
        assert!(l.try_acquire_below(2));
    }
}
