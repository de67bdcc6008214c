//! The [`Snapshotter`]: samples every resource in the background and keeps
//! their windows.
//!
//! Just over 400 lines: the lifecycle (start, stop, drop) and the verdict's
//! publication share the inner state and its lock; the sampler task and the
//! tests are in files of their own.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::clock::CoarseClock;
use super::history::Windows;
use super::probe::{
    ClientRecorder, CpuProbe, MemoryProbe, MemoryReading, ProbeError, SystemCpuProbe, SystemMemoryProbe,
};
use super::snapshot::{ClientSnapshot, CpuSnapshot, EventLoopSnapshot, MemorySnapshot};
use super::status::{judge, Resources, SystemInfo};
use crate::config::{Config, ConfigError};
use crate::integrations::metrics::Publishers;

/// The snapshotter is not sampling: it was never started, or was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotActive;

impl fmt::Display for NotActive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the snapshotter is not active: call start() first")
    }
}

impl std::error::Error for NotActive {}

/// Why [`Snapshotter::start`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// It is sampling already.
    AlreadyActive,
    /// `start` was called outside a tokio runtime, where the sampler task
    /// cannot run.
    NoRuntime,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AlreadyActive => "the snapshotter is already active",
            Self::NoRuntime => "start() must be called from within a tokio runtime",
        })
    }
}

impl std::error::Error for StartError {}

/// The latest judgement of the current window
/// ([`SystemStatus::current`](crate::SystemStatus::current)),
/// recomputed each time a snapshot is taken.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Verdict {
    /// The resources overloaded now; empty when idle or not active.
    pub overloaded: Resources,
    /// The load ratios behind it; `None` before the first snapshot.
    pub info: Option<SystemInfo>,
}

/// Samples CPU, memory, the tokio runtime's timer drift and client
/// rate-limit errors into time windows, and keeps a verdict on whether the
/// recent windows show overload.
///
/// Cheap to clone: clones share one state, so one snapshotter can back any
/// number of layers and the whole process shares one budget. Sampling runs in
/// one task on the runtime that called [`start`](Self::start), which wakes
/// only when some reading is due. Nothing needs polling by the caller, and
/// dropping the last clone stops the task.
///
/// ```
/// use tower_snapshotter::{Config, Snapshotter};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let snapshotter = Snapshotter::new(Config::default());
/// snapshotter.start()?;
/// tokio::time::sleep(std::time::Duration::from_millis(10)).await;
/// assert_eq!(snapshotter.event_loop_sample(None)?.len(), 1); // the first one, at start
/// snapshotter.stop()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Snapshotter {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    windows: Mutex<Windows>,
    active: AtomicBool,
    tasks: Mutex<Vec<AbortHandle>>,
    client: ClientRecorder,
    system: Arc<Mutex<SystemProbes>>,
    overloaded: AtomicU8,
    verdict: watch::Sender<Verdict>,
    memory_warning: Mutex<MemoryWarning>,
    unavailable: AtomicU8,
    /// Woken whenever the set of overloaded resources changes (and by layers
    /// when a request admitted under overload finishes).
    gate: Arc<Notify>,
    clock: Arc<CoarseClock>,
    /// The layers whose metrics follow this snapshotter's verdict.
    metrics: Publishers,
}

struct SystemProbes {
    cpu: Box<dyn CpuProbe>,
    memory: Box<dyn MemoryProbe>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data (every
    // critical section is a plain insert or read), so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshotter")
            .field("active", &self.is_active())
            .field("overloaded", &self.overloaded())
            .finish_non_exhaustive()
    }
}

impl Snapshotter {
    /// A snapshotter reading the real machine, not yet started.
    pub fn new(config: Config) -> Self {
        Self::with_probes(config, SystemCpuProbe::new(), SystemMemoryProbe::new())
    }

    /// A snapshotter configured from `SNAPSHOTTER_*` environment variables
    /// (see [`Config::from_env`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(Config::from_env()?))
    }

    /// A snapshotter reading CPU and memory through the given probes.
    pub fn with_probes(config: Config, cpu: impl CpuProbe, memory: impl MemoryProbe) -> Self {
        let retention = config.snapshot_history();
        let client = ClientRecorder::new(config.client_rate_limit_error_retry_count());
        Self {
            inner: Arc::new(Inner {
                windows: Mutex::new(Windows::new(retention)),
                active: AtomicBool::new(false),
                tasks: Mutex::new(Vec::new()),
                client,
                system: Arc::new(Mutex::new(SystemProbes {
                    cpu: Box::new(cpu),
                    memory: Box::new(memory),
                })),
                overloaded: AtomicU8::new(0),
                verdict: watch::Sender::new(Verdict {
                    overloaded: Resources::NONE,
                    info: None,
                }),
                memory_warning: Mutex::new(MemoryWarning::default()),
                unavailable: AtomicU8::new(0),
                gate: Arc::new(Notify::new()),
                clock: Arc::new(CoarseClock::new()),
                metrics: Publishers::new(),
                config,
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Begins sampling on the current tokio runtime, with empty windows.
    ///
    /// # Errors
    /// [`StartError::AlreadyActive`] if it is sampling already,
    /// [`StartError::NoRuntime`] outside a tokio runtime.
    pub fn start(&self) -> Result<(), StartError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| StartError::NoRuntime)?;
        let mut tasks = lock(&self.inner.tasks);
        if self.inner.active.swap(true, Ordering::AcqRel) {
            return Err(StartError::AlreadyActive);
        }
        lock(&self.inner.windows).clear();
        let weak = Arc::downgrade(&self.inner);
        tasks.push(handle.spawn(sampler::run(weak)).abort_handle());
        Ok(())
    }

    /// Ends sampling and clears the verdict (a stopped snapshotter gates
    /// nothing). The windows are kept until the next start but cannot be read.
    ///
    /// # Errors
    /// [`NotActive`] if it was not sampling.
    pub fn stop(&self) -> Result<(), NotActive> {
        let mut tasks = lock(&self.inner.tasks);
        if !self.inner.active.swap(false, Ordering::AcqRel) {
            return Err(NotActive);
        }
        for task in tasks.drain(..) {
            task.abort();
        }
        self.inner.clock.set_ticking(false);
        self.inner.overloaded.store(0, Ordering::Release);
        self.inner.verdict.send_replace(Verdict {
            overloaded: Resources::NONE,
            info: None,
        });
        self.inner.gate.notify_waiters();
        self.inner.metrics.verdict(Resources::NONE);
        Ok(())
    }

    /// Whether it is sampling.
    pub fn is_active(&self) -> bool {
        self.inner.active.load(Ordering::Acquire)
    }

    /// Where callers report rate-limit answers (see [`ClientRecorder`]).
    pub fn client_recorder(&self) -> ClientRecorder {
        self.inner.client.clone()
    }

    /// CPU snapshots within `duration` of the newest one (`None`: all).
    ///
    /// # Errors
    /// [`NotActive`] while not sampling, as in Crawlee.
    pub fn cpu_sample(&self, duration: Option<Duration>) -> Result<Vec<CpuSnapshot>, NotActive> {
        self.with_windows(|w| w.cpu.sample(duration))
    }

    /// Memory snapshots within `duration` of the newest one (`None`: all).
    ///
    /// # Errors
    /// [`NotActive`] while not sampling.
    pub fn memory_sample(&self, duration: Option<Duration>) -> Result<Vec<MemorySnapshot>, NotActive> {
        self.with_windows(|w| w.memory.sample(duration))
    }

    /// Event-loop snapshots within `duration` of the newest one (`None`: all).
    ///
    /// # Errors
    /// [`NotActive`] while not sampling.
    pub fn event_loop_sample(&self, duration: Option<Duration>) -> Result<Vec<EventLoopSnapshot>, NotActive> {
        self.with_windows(|w| w.event_loop.sample(duration))
    }

    /// Client snapshots within `duration` of the newest one (`None`: all).
    ///
    /// # Errors
    /// [`NotActive`] while not sampling.
    pub fn client_sample(&self, duration: Option<Duration>) -> Result<Vec<ClientSnapshot>, NotActive> {
        self.with_windows(|w| w.client.sample(duration))
    }

    pub(crate) fn with_windows<R>(&self, f: impl FnOnce(&Windows) -> R) -> Result<R, NotActive> {
        if !self.is_active() {
            return Err(NotActive);
        }
        Ok(f(&lock(&self.inner.windows)))
    }

    /// The resources the current window finds overloaded: one atomic load,
    /// kept up to date as snapshots are taken. Empty while not active.
    #[inline]
    pub fn overloaded(&self) -> Resources {
        Resources::from_bits(self.inner.overloaded.load(Ordering::Acquire))
    }

    /// The latest verdict with its load ratios.
    pub fn verdict(&self) -> Verdict {
        *self.inner.verdict.borrow()
    }

    /// A receiver that is notified each time the set of overloaded resources
    /// changes (not on every snapshot).
    pub fn subscribe(&self) -> watch::Receiver<Verdict> {
        self.inner.verdict.subscribe()
    }

    /// Resources whose probe cannot currently read the machine.
    pub fn unavailable(&self) -> Resources {
        Resources::from_bits(self.inner.unavailable.load(Ordering::Relaxed))
    }

    pub(crate) fn gate(&self) -> &Arc<Notify> {
        &self.inner.gate
    }

    pub(crate) fn clock(&self) -> &Arc<CoarseClock> {
        &self.inner.clock
    }

    /// Where a layer registers for the verdict and the periodic reads of
    /// its metrics.
    pub(crate) fn metrics(&self) -> &Publishers {
        &self.inner.metrics
    }

    /// Whether `self` and `other` share one state.
    pub fn same_as(&self, other: &Snapshotter) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Inner {
    /// Inserts into one window and re-judges the current window.
    fn record(&self, insert: impl FnOnce(&mut Windows)) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let info = {
            let mut w = lock(&self.windows);
            insert(&mut w);
            judge(
                &w,
                Some(self.config.status().max_snapshot_age()),
                &self.config.status(),
            )
        };
        let over = info.overloaded();
        let prev = self.overloaded.swap(over.bits(), Ordering::AcqRel);
        self.verdict.send_if_modified(|v| {
            let changed = v.overloaded != over;
            if changed {
                if over.is_empty() {
                    tracing::info!(status = %info, "system is idle again");
                } else {
                    tracing::warn!(overloaded = %over, status = %info, "system is overloaded");
                }
            }
            *v = Verdict {
                overloaded: over,
                info: Some(info),
            };
            changed
        });
        if prev != over.bits() {
            self.gate.notify_waiters();
        }
        self.metrics.verdict(over);
    }

    /// Logs a probe failure once, until it recovers.
    fn availability(&self, resource: Resources, result: Result<(), &ProbeError>) {
        let bit = resource.bits();
        match result {
            Err(e) => {
                if self.unavailable.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
                    tracing::warn!(resource = %resource, error = %e, "probe unavailable; no snapshots until it recovers");
                }
            }
            Ok(()) => {
                if self.unavailable.fetch_and(!bit, Ordering::Relaxed) & bit != 0 {
                    tracing::info!(resource = %resource, "probe available again");
                }
            }
        }
    }

    fn memory_snapshot(&self, reading: MemoryReading, created_at: Instant) -> MemorySnapshot {
        let c = &self.config;
        let max_memory_size = c
            .max_memory_size()
            .unwrap_or_else(|| (reading.limit as f64 * c.available_memory_ratio()) as u64);
        let snapshot = MemorySnapshot {
            current_size: reading.current_size,
            system_wide_used_size: reading.system_wide_used_size,
            max_memory_size,
            system_wide_memory_size: reading.system_wide_memory_size,
            max_used_memory_ratio: c.max_used_memory_ratio(),
            created_at,
        };
        let warn = lock(&self.memory_warning).check(
            &snapshot,
            c.reserve_memory_ratio(),
            c.memory_warning_cooldown_period(),
        );
        if warn {
            tracing::warn!(
                used_bytes = snapshot.current_size,
                limit_bytes = snapshot.max_memory_size,
                percent =
                    (100.0 * snapshot.current_size as f64 / snapshot.max_memory_size.max(1) as f64).round(),
                "memory is critically overloaded"
            );
        }
        snapshot
    }
}

/// Crawlee's "memory is critically overloaded" warning, at most once per
/// cooldown.
#[derive(Debug, Default, Clone)]
pub(crate) struct MemoryWarning {
    last: Option<Instant>,
}

impl MemoryWarning {
    /// Whether to warn for `s`: its use is above
    /// `r·M + M·(1−r)·reserve_ratio` and the last warning is at least
    /// `cooldown` old. Records the warning when it says yes.
    pub(crate) fn check(&mut self, s: &MemorySnapshot, reserve_ratio: f64, cooldown: Duration) -> bool {
        if self.last.is_some_and(|last| s.created_at < last + cooldown) {
            return false;
        }
        let m = s.max_memory_size as f64;
        let r = s.max_used_memory_ratio;
        let threshold = r * m + m * (1.0 - r) * reserve_ratio;
        if s.current_size as f64 > threshold {
            self.last = Some(s.created_at);
            true
        } else {
            false
        }
    }
}

#[path = "sampler.rs"]
mod sampler;

#[cfg(test)]
#[path = "snapshotter_tests.rs"]
mod tests;
