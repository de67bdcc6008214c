//! A wake-up that costs a read while nobody waits.
//!
//! Every answer gives a permit or a slot back, and most of the time no
//! request waits for one. `Notify::notify_one` writes the notifier's state
//! even then (it stores a permit for the next waiter), so every answer on
//! every core rewrote one shared cache line. A [`Signal`] counts the
//! waiters registered on it and notifies only when there is one.
//!
//! A waiter registers (counted) before it looks at what it waits for
//! again, and a releaser gives the resource back before it reads the
//! count; with both sides sequentially consistent (or under one lock),
//! either the releaser sees the waiter or the waiter sees the resource.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;

/// A notifier that knows whether anybody waits on it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Signal {
    notify: Arc<Notify>,
    waiting: Arc<AtomicUsize>,
}

impl Signal {
    /// Wakes one registered waiter, if any.
    #[inline]
    pub(crate) fn notify_one(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.notify.notify_one();
        }
    }

    /// Wakes every registered waiter.
    pub(crate) fn notify_waiters(&self) {
        self.notify.notify_waiters();
    }

    /// A waiter, counted and registered now: a notification between this
    /// call and its first poll is not lost.
    pub(crate) fn register(&self) -> Registration {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut notified = Box::pin(Arc::clone(&self.notify).notified_owned());
        notified.as_mut().enable();
        Registration {
            notified,
            waiting: Some(Arc::clone(&self.waiting)),
        }
    }

    /// Waiters registered now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

/// One waiter of a [`Signal`]; uncounted on drop.
#[derive(Debug)]
pub(crate) struct Registration {
    notified: Pin<Box<OwnedNotified>>,
    /// The count it is in (`None` for a plain `Notify`).
    waiting: Option<Arc<AtomicUsize>>,
}

impl Registration {
    /// A waiter of a plain `Notify`, registered now: for one notified only
    /// with `notify_waiters`, which stores nothing and needs no count.
    pub(crate) fn uncounted(notify: &Arc<Notify>) -> Self {
        let mut notified = Box::pin(Arc::clone(notify).notified_owned());
        notified.as_mut().enable();
        Self {
            notified,
            waiting: None,
        }
    }

    /// Ready once notified.
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.notified.as_mut().poll(cx)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(waiting) = &self.waiting {
            waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_registered_waiter_is_woken_and_an_absent_one_costs_nothing() {
        let signal = Signal::default();
        // Nobody waits: nothing is stored for a later waiter either.
        signal.notify_one();
        let mut w = signal.register();
        assert_eq!(signal.waiting(), 1);
        let waker = futures_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(w.poll(&mut cx).is_pending(), "no notification was stored");
        signal.notify_one();
        assert!(w.poll(&mut cx).is_ready());
        drop(w);
        assert_eq!(signal.waiting(), 0);
        // A notification between registration and the first poll counts.
        let mut w = signal.register();
        signal.notify_one();
        assert!(w.poll(&mut cx).is_ready());
    }

    fn futures_waker() -> std::task::Waker {
        std::task::Waker::noop().clone()
    }
}
