//! The one background task of a started [`Snapshotter`](super::Snapshotter).
//!
//! Every reading has its own interval, but they share one timer: the task
//! sleeps until the earliest reading is due, takes every reading that is due
//! then, and sleeps again. With the default intervals the coarse clock's
//! ticks, the event-loop probe, the client snapshot and the CPU and memory
//! reads fall on the same instants, so the task wakes 4 times a second
//! instead of the 14 that one task per reading needed (each wake of a
//! multi-threaded runtime costs tens of microseconds of CPU on this VM;
//! see `benches/background.rs`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::{lock, Inner};
use crate::monitor::clock;
use crate::monitor::probe::EventLoopClock;
use crate::monitor::snapshot::{ClientSnapshot, CpuSnapshot};
use crate::monitor::status::Resources;

/// When each reading is due next.
#[derive(Debug, Clone, Copy)]
struct Due {
    clock: Instant,
    event_loop: Instant,
    client: Instant,
    system: Instant,
}

impl Due {
    fn earliest(&self) -> Instant {
        self.clock.min(self.event_loop).min(self.client).min(self.system)
    }
}

/// The next due time after `due` by `every`; when the task is behind, one
/// interval from now (tokio's `MissedTickBehavior::Delay`).
fn after(due: Instant, every: Duration, now: Instant) -> Instant {
    let next = due + every;
    if next <= now {
        now + every
    } else {
        next
    }
}

pub(super) async fn run(weak: Weak<Inner>) {
    let Some(inner) = weak.upgrade() else { return };
    let c = &inner.config;
    let (event_loop_every, client_every, system_every) = (
        c.event_loop_snapshot_interval(),
        c.client_snapshot_interval(),
        c.system_info_interval(),
    );
    let mut event_loop = EventLoopClock::new(event_loop_every, c.max_event_loop_delay());
    let coarse = Arc::clone(&inner.clock);
    let probes = Arc::clone(&inner.system);
    drop(inner);

    coarse.set_ticking(true);
    let start = Instant::now();
    let mut due = Due {
        clock: start,
        event_loop: start,
        client: start,
        // A CPU reading needs a baseline: the first comes one interval in.
        system: start + system_every,
    };
    let mut previous_errors: Option<u64> = None;
    loop {
        let Some(inner) = weak.upgrade() else {
            coarse.set_ticking(false);
            return;
        };
        let now = Instant::now();
        // First the event loop: how late this wake-up is, before any work.
        if now >= due.event_loop {
            let snapshot = event_loop.wake(now);
            inner.record(|w| w.event_loop.insert(snapshot));
            due.event_loop = now + event_loop_every;
        }
        if now >= due.clock {
            coarse.tick();
            due.clock = after(due.clock, clock::RESOLUTION, now);
        }
        if now >= due.client {
            let error_count = inner.client.error_count();
            let snapshot = ClientSnapshot {
                error_count,
                new_error_count: error_count - previous_errors.unwrap_or(0).min(error_count),
                max_error_count: inner.config.max_client_errors(),
                created_at: now,
            };
            previous_errors = Some(error_count);
            inner.record(|w| w.client.insert(snapshot));
            due.client = after(due.client, client_every, now);
            // The layers' gauges, read once per client snapshot.
            inner.metrics.tick();
        }
        if now >= due.system {
            sample_system(&inner, &probes);
            due.system = after(due.system, system_every, now);
        }
        drop(inner);
        tokio::time::sleep_until(due.earliest()).await;
    }
}

/// Reads CPU and memory and records what could be read.
///
/// The reads take about 0.2 ms of file I/O once a second. Handing them to
/// tokio's blocking pool cost more CPU than the reads themselves (a thread
/// wake-up and a hand-back per sample), so they run on this task; a probe
/// that panics is caught and its resources stay as they were.
fn sample_system(inner: &Inner, probes: &std::sync::Mutex<super::SystemProbes>) {
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut p = lock(probes);
        (p.cpu.used_ratio(), p.memory.read())
    }));
    let Ok((cpu, memory)) = read else { return };
    let created_at = Instant::now();
    inner.availability(Resources::CPU, cpu.as_ref().map(|_| ()));
    inner.availability(Resources::MEMORY, memory.as_ref().map(|_| ()));
    if let Ok(used_ratio) = cpu {
        let snapshot = CpuSnapshot {
            used_ratio,
            max_used_ratio: inner.config.max_used_cpu_ratio(),
            created_at,
        };
        inner.record(|w| w.cpu.insert(snapshot));
    }
    if let Ok(reading) = memory {
        let snapshot = inner.memory_snapshot(reading, created_at);
        inner.record(|w| w.memory.insert(snapshot));
    }
}
