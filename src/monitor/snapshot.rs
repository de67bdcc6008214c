//! Snapshot value types: one reading of one resource at one instant.
//!
//! Each type mirrors the snapshot of the same name in Crawlee and carries the
//! limit it was judged against, so a recorded window can be replayed later
//! with [`overloaded_ratio`](crate::status::overloaded_ratio).

use std::time::Duration;

use tokio::time::Instant;

/// Share of system-wide memory in use above which memory counts as
/// overloaded, whatever this process uses (Crawlee Python's failsafe).
pub const SYSTEM_WIDE_MEMORY_OVERLOAD_THRESHOLD: f64 = 0.97;

/// What every snapshot has: a creation time and an overload flag.
///
/// Implemented by the four snapshot types; implement it for your own type to
/// feed [`overloaded_ratio`](crate::status::overloaded_ratio).
///
/// ```
/// use tower_snapshotter::snapshot::{CpuSnapshot, Snapshot};
/// use tokio::time::Instant;
///
/// let s = CpuSnapshot { used_ratio: 0.97, max_used_ratio: 0.95, created_at: Instant::now() };
/// assert!(s.is_overloaded());
/// ```
pub trait Snapshot {
    /// When the reading was taken.
    fn created_at(&self) -> Instant;
    /// Whether this one reading is over its limit.
    fn is_overloaded(&self) -> bool;
}

/// CPU use as a share of what this process may use (the cgroup quota when
/// one applies, all host cores otherwise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSnapshot {
    /// CPU in use, 0.0 to 1.0 (may exceed 1.0 briefly under a cgroup quota).
    pub used_ratio: f64,
    /// The ratio above which this snapshot is overloaded.
    pub max_used_ratio: f64,
    /// When the reading was taken.
    pub created_at: Instant,
}

/// [`Snapshot`] for a type with a `created_at` field that is overloaded
/// when its `$value` field is strictly above its `$limit` field.
macro_rules! overloaded_above {
    ($ty:ident: $value:ident > $limit:ident) => {
        impl Snapshot for $ty {
            fn created_at(&self) -> Instant {
                self.created_at
            }

            #[doc = concat!("`", stringify!($value), " > ", stringify!($limit), "`.")]
            fn is_overloaded(&self) -> bool {
                self.$value > self.$limit
            }
        }
    };
}

overloaded_above!(CpuSnapshot: used_ratio > max_used_ratio);

/// Memory used by this process against its budget, plus the system-wide
/// figures for the 97 % failsafe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemorySnapshot {
    /// Bytes this process uses (PSS where readable, RSS otherwise).
    pub current_size: u64,
    /// Bytes in use system-wide (or in this cgroup, when it has a limit).
    pub system_wide_used_size: Option<u64>,
    /// The process's memory budget in bytes.
    pub max_memory_size: u64,
    /// Total bytes system-wide (or this cgroup's limit, when it has one).
    pub system_wide_memory_size: Option<u64>,
    /// Share of `max_memory_size` above which this snapshot is overloaded.
    pub max_used_memory_ratio: f64,
    /// When the reading was taken.
    pub created_at: Instant,
}

impl MemorySnapshot {
    /// Share of the system-wide memory in use, when both figures are known
    /// and the total is not zero.
    pub fn system_wide_used_ratio(&self) -> Option<f64> {
        match (self.system_wide_used_size, self.system_wide_memory_size) {
            (Some(used), Some(total)) if total > 0 => Some(used as f64 / total as f64),
            _ => None,
        }
    }
}

impl Snapshot for MemorySnapshot {
    fn created_at(&self) -> Instant {
        self.created_at
    }

    /// Over `max_used_memory_ratio` of `max_memory_size`, or system-wide use
    /// above [`SYSTEM_WIDE_MEMORY_OVERLOAD_THRESHOLD`]. A zero budget with
    /// any use counts as overloaded.
    fn is_overloaded(&self) -> bool {
        let wide = self
            .system_wide_used_ratio()
            .is_some_and(|r| r > SYSTEM_WIDE_MEMORY_OVERLOAD_THRESHOLD);
        let own = if self.max_memory_size == 0 {
            self.current_size > 0
        } else {
            self.current_size as f64 / self.max_memory_size as f64 > self.max_used_memory_ratio
        };
        wide || own
    }
}

/// How late a timer on the tokio runtime woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLoopSnapshot {
    /// Time past the intended wake-up.
    pub delay: Duration,
    /// Delay above which this snapshot is overloaded.
    pub max_delay: Duration,
    /// When the reading was taken.
    pub created_at: Instant,
}

impl EventLoopSnapshot {
    /// How far the delay went past `max_delay` (zero when it did not).
    pub fn max_delay_exceeded(&self) -> Duration {
        self.delay.saturating_sub(self.max_delay)
    }
}

overloaded_above!(EventLoopSnapshot: delay > max_delay);

/// Rate-limit errors (HTTP 429 by default) seen from the remote side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSnapshot {
    /// Errors counted since the snapshotter was created.
    pub error_count: u64,
    /// Errors counted since the previous client snapshot.
    pub new_error_count: u64,
    /// New errors per snapshot above which this snapshot is overloaded.
    pub max_error_count: u64,
    /// When the reading was taken.
    pub created_at: Instant,
}

overloaded_above!(ClientSnapshot: new_error_count > max_error_count);

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(current: u64, max: u64, wide: Option<(u64, u64)>) -> MemorySnapshot {
        MemorySnapshot {
            current_size: current,
            system_wide_used_size: wide.map(|w| w.0),
            max_memory_size: max,
            system_wide_memory_size: wide.map(|w| w.1),
            max_used_memory_ratio: 0.5,
            created_at: Instant::now(),
        }
    }

    #[test]
    fn cpu_is_overloaded_strictly_above_its_limit() {
        let at = Instant::now();
        let s = |used_ratio| CpuSnapshot {
            used_ratio,
            max_used_ratio: 0.5,
            created_at: at,
        };
        assert!(!s(0.5).is_overloaded());
        assert!(s(0.5001).is_overloaded());
    }

    #[test]
    fn memory_main_and_children_combinations_against_half_of_ten_thousand_mb() {
        // Crawlee JS's case: a 10000 MB budget at ratio 0.5.
        const MB: u64 = 1024 * 1024;
        let cases = [
            (1000, 1000, false),
            (2000, 2000, false),
            (3001, 2000, true),
            (3000, 2000, false),
        ];
        for (main, children, over) in cases {
            assert_eq!(
                mem((main + children) * MB, 10_000 * MB, None).is_overloaded(),
                over,
                "{main}+{children}"
            );
        }
    }

    #[test]
    fn memory_system_wide_failsafe_above_97_percent() {
        assert!(mem(1, 1000, Some((971, 1000))).is_overloaded());
        assert!(!mem(1, 1000, Some((970, 1000))).is_overloaded());
        assert!(
            !mem(1, 1000, Some((5, 0))).is_overloaded(),
            "a zero total is unknown"
        );
    }

    #[test]
    fn memory_with_zero_budget_is_overloaded_by_any_use() {
        assert!(mem(1, 0, None).is_overloaded());
        assert!(!mem(0, 0, None).is_overloaded());
    }

    #[test]
    fn event_loop_and_client_rules() {
        let at = Instant::now();
        let el = |ms| EventLoopSnapshot {
            delay: Duration::from_millis(ms),
            max_delay: Duration::from_millis(50),
            created_at: at,
        };
        assert!(!el(50).is_overloaded());
        assert!(el(51).is_overloaded());
        assert_eq!(el(70).max_delay_exceeded(), Duration::from_millis(20));
        assert_eq!(el(10).max_delay_exceeded(), Duration::ZERO);
        let c = |new| ClientSnapshot {
            error_count: 10,
            new_error_count: new,
            max_error_count: 1,
            created_at: at,
        };
        assert!(!c(1).is_overloaded());
        assert!(c(2).is_overloaded());
    }
}
