//! Where readings come from: the machine's CPU and memory (through `sysinfo`
//! and the cgroup files), the tokio runtime's timer drift, and the client
//! answers callers report.
//!
//! CPU and memory probes are traits so tests can inject readings; the
//! shipped defaults, [`SystemCpuProbe`] and [`SystemMemoryProbe`], read the
//! real machine. A probe that cannot read its source returns
//! [`ProbeError`]; the snapshotter then marks that resource unavailable,
//! logs once, takes no snapshot of it, and tries again next interval.

/// `new()` and `Default` for a probe built by `with_cgroup(CgroupFs)`:
/// both read the real machine.
macro_rules! real_machine {
    ($probe:ident) => {
        impl Default for $probe {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $probe {
            /// Reads the real machine.
            pub fn new() -> Self {
                Self::with_cgroup(CgroupFs::new())
            }
        }
    };
}

mod cgroup;
mod client;
mod cpu;
mod event_loop;
mod memory;

pub use cgroup::{CgroupFs, CpuQuota, REDISCOVER};

/// The pure parsers of cgroup and `/proc` files, for the property tests and
/// the fuzz targets: not part of the supported API.
#[doc(hidden)]
pub mod __private {
    pub use super::cgroup::parse;
}
pub use client::ClientRecorder;
pub use cpu::{quota_ratio, SystemCpuProbe};
pub use event_loop::EventLoopClock;
pub use memory::SystemMemoryProbe;

use std::fmt;

/// A probe could not read its source (a missing, unreadable or garbled
/// file, an unsupported platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError {
    source: String,
    reason: String,
}

impl ProbeError {
    /// An error about `source` (a path or a subsystem) for `reason`.
    pub fn new(source: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            reason: reason.into(),
        }
    }

    /// What could not be read.
    pub fn source_name(&self) -> &str {
        &self.source
    }
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

impl std::error::Error for ProbeError {}

/// Reads CPU use as a share of what this process may use.
///
/// Called on the snapshotter's one sampler task, on the tokio runtime, once
/// per `system_info_interval`. Short blocking I/O is fine (the shipped
/// probes read a few files, about 0.2 ms), but it holds a runtime thread
/// while it runs (on a current-thread runtime, every task), so a slow probe
/// delays the other readings and the caller's tasks. A probe that panics is
/// caught.
///
/// ```
/// use tower_snapshotter::probe::{CpuProbe, ProbeError};
///
/// struct Fixed(f64);
/// impl CpuProbe for Fixed {
///     fn used_ratio(&mut self) -> Result<f64, ProbeError> { Ok(self.0) }
/// }
/// assert_eq!(Fixed(0.5).used_ratio(), Ok(0.5));
/// ```
pub trait CpuProbe: Send + 'static {
    /// CPU in use since the previous call, 0.0 to 1.0 of the quota (or of
    /// all host cores when no quota applies).
    fn used_ratio(&mut self) -> Result<f64, ProbeError>;
}

/// One memory reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReading {
    /// Bytes this process uses (PSS where readable, RSS otherwise).
    pub current_size: u64,
    /// The memory limit that applies to this process: its cgroup's limit
    /// when one is set, the host's total memory otherwise.
    pub limit: u64,
    /// Bytes in use in the scope of `limit` (the cgroup's usage, or the
    /// host's total minus available), when known.
    pub system_wide_used_size: Option<u64>,
    /// The size of that scope (the cgroup limit, or the host total), when
    /// known.
    pub system_wide_memory_size: Option<u64>,
}

/// Reads this process's memory and the limit that applies to it.
///
/// Called on the snapshotter's one sampler task, beside the [`CpuProbe`],
/// with the same constraints: short blocking I/O is fine, a slow read holds
/// a runtime thread. The limit is re-read on every call, so a cgroup limit
/// that changes mid-run is followed.
pub trait MemoryProbe: Send + 'static {
    /// A fresh reading.
    fn read(&mut self) -> Result<MemoryReading, ProbeError>;
}

impl<P: CpuProbe + ?Sized> CpuProbe for Box<P> {
    fn used_ratio(&mut self) -> Result<f64, ProbeError> {
        (**self).used_ratio()
    }
}

impl<P: MemoryProbe + ?Sized> MemoryProbe for Box<P> {
    fn read(&mut self) -> Result<MemoryReading, ProbeError> {
        (**self).read()
    }
}
