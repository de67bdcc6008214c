//! What one process learned about a host, shared with the others.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A host's estimated capacity as the fleet knows it: published by the
/// process that learned it, read by every process (a new one starts at
/// this rate instead of rediscovering it).
///
/// ```
/// use std::time::SystemTime;
/// use tower_snapshotter::fleet::Learned;
///
/// let learned = Learned { rate: 480.0, measured: true, last_loss: Some(SystemTime::now()) };
/// assert!(learned.rate > 0.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Learned {
    /// Requests per second the host is estimated to allow.
    pub rate: f64,
    /// Whether the rate was measured at the limit rather than being a lower
    /// bound still being searched.
    pub measured: bool,
    /// When a process last saw the host refuse (the latest loss epoch).
    pub last_loss: Option<SystemTime>,
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Microseconds since the Unix epoch (0 before it).
pub(crate) fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The time `ms` milliseconds after the Unix epoch.
pub(crate) fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// `Some(t)` for a time after the epoch, `None` for 0.
pub(crate) fn nonzero_time(ms: u64) -> Option<SystemTime> {
    (ms > 0).then(|| from_unix_ms(ms))
}
