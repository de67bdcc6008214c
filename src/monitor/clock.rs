//! A coarse clock kept by the snapshotter, so the hot path reads the time
//! with one atomic load instead of `Instant::now()` (about 20 ns here).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How often the snapshotter's sampler task advances the coarse time.
pub(crate) const RESOLUTION: Duration = Duration::from_millis(250);

/// Milliseconds since a fixed base instant, advanced by the sampler task
/// every [`RESOLUTION`] while the snapshotter is active and read precisely
/// otherwise. It may lag real time by up to one resolution, never lead it.
#[derive(Debug)]
pub(crate) struct CoarseClock {
    base: Instant,
    now_ms: AtomicU64,
    ticking: AtomicBool,
}

impl CoarseClock {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            now_ms: AtomicU64::new(0),
            ticking: AtomicBool::new(false),
        }
    }

    /// Coarse milliseconds since the base.
    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        if self.ticking.load(Ordering::Relaxed) {
            self.now_ms.load(Ordering::Relaxed)
        } else {
            self.precise_ms()
        }
    }

    /// Exact milliseconds since the base (an `Instant::now()`).
    pub(crate) fn precise_ms(&self) -> u64 {
        self.ms_of(Instant::now())
    }

    /// Milliseconds from the base to `at` (0 before the base).
    pub(crate) fn ms_of(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// The instant `ms` milliseconds after the base.
    pub(crate) fn instant_of(&self, ms: u64) -> Instant {
        // Capped at about 30 years so adding to an Instant cannot overflow.
        self.base + Duration::from_millis(ms.min(1 << 40))
    }

    pub(crate) fn tick(&self) {
        self.now_ms.store(self.precise_ms(), Ordering::Relaxed);
    }

    pub(crate) fn set_ticking(&self, on: bool) {
        if on {
            self.tick();
        }
        self.ticking.store(on, Ordering::Relaxed);
    }
}
