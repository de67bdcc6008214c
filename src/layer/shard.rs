//! How a response future reaches its layer's state without every request
//! on every thread writing one shared reference count.
//!
//! A future needs the layer's state when its answer arrives, so it holds a
//! counted reference. Cloning one `Arc<Shared>` per request makes all
//! threads increment and decrement the same counter, whose cache line then
//! moves between cores on every request (two threads ran slower than one).
//! Instead a layer keeps a few [`Shard`]s, each an `Arc` of its own holding
//! the state, and a request clones the shard of its thread: threads count
//! on different lines.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::shared::Shared;

/// One counted way to the layer's state.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) shared: Arc<Shared>,
}

/// A layer's shards, one picked per thread.
#[derive(Debug)]
pub(crate) struct Shards(Box<[Arc<Shard>]>);

impl Shards {
    /// At least twice as many shards as the machine runs threads at once,
    /// a power of two (at least two, at most 64) so that picking one is a
    /// mask, not a division.
    pub(crate) fn new(shared: &Arc<Shared>) -> Arc<Self> {
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get() * 2)
            .clamp(2, 64)
            .next_power_of_two();
        Arc::new(Self(
            (0..n)
                .map(|_| {
                    Arc::new(Shard {
                        shared: Arc::clone(shared),
                    })
                })
                .collect(),
        ))
    }

    /// The calling thread's shard, counted once more.
    #[inline]
    pub(crate) fn pick(&self) -> Arc<Shard> {
        // The length is a power of two.
        let i = THREAD_INDEX.with(|i| *i) & (self.0.len() - 1);
        Arc::clone(&self.0[i])
    }
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's place among the shards, given out in turn.
    static THREAD_INDEX: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}
