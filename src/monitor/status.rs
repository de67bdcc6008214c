//! Whether windows show overload, with Crawlee's time-weighted arithmetic:
//! [`overloaded_ratio`], the load ratios, [`SystemInfo`] and [`Resources`].
//!
//! Pure arithmetic over snapshots and windows; [`SystemStatus`](crate::SystemStatus),
//! which asks a [`Snapshotter`](crate::Snapshotter) for its windows and
//! judges them, joins it in the public `status` module (`lib.rs`).

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::history::{History, Windows};
use super::snapshot::Snapshot;
use crate::config::StatusConfig;

/// The time-weighted share of a sample during which it was overloaded.
///
/// Snapshots must be sorted by `created_at`. Each gap between consecutive
/// snapshots counts as overloaded when the *later* snapshot is; the first
/// snapshot's own flag adds no weight unless it is alone. An empty sample
/// gives 0.0, a single snapshot 1.0 or 0.0 from its flag, and a sample whose
/// snapshots all share one timestamp gives 0.0 (Crawlee Python, which dropped
/// the JavaScript edition's fake 1 ms weights in PR #692). The result is
/// rounded to 3 decimals.
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use tower_snapshotter::snapshot::CpuSnapshot;
/// use tower_snapshotter::status::overloaded_ratio;
///
/// let t0 = Instant::now();
/// let s: Vec<_> = [0.6, 0.7, 0.8, 0.9]
///     .iter()
///     .enumerate()
///     .map(|(i, &used_ratio)| CpuSnapshot {
///         used_ratio,
///         max_used_ratio: 0.75,
///         created_at: t0 + Duration::from_secs(60 * i as u64),
///     })
///     .collect();
/// assert_eq!(overloaded_ratio(&s), 0.667);
/// ```
pub fn overloaded_ratio<S: Snapshot>(sample: &[S]) -> f64 {
    ratio_of(sample.iter())
}

/// [`overloaded_ratio`] over any ordered sequence.
pub(crate) fn ratio_of<'a, S: Snapshot + 'a>(mut sample: impl Iterator<Item = &'a S>) -> f64 {
    let Some(first) = sample.next() else {
        return 0.0;
    };
    let mut prev = first.created_at();
    let (mut total, mut overloaded) = (Duration::ZERO, Duration::ZERO);
    let mut alone = true;
    for s in sample {
        alone = false;
        let at = s.created_at();
        let gap = at.saturating_duration_since(prev);
        total += gap;
        if s.is_overloaded() {
            overloaded += gap;
        }
        prev = at;
    }
    if alone {
        return if first.is_overloaded() { 1.0 } else { 0.0 };
    }
    if total.is_zero() {
        return 0.0;
    }
    // Integer nanoseconds: exact halves (0.4375) must round as the
    // definition says, which seconds as `f64` (1.4 / 3.2) do not.
    round3(overloaded.as_nanos() as f64 / total.as_nanos() as f64)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One resource's overloaded share against its threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LoadRatioInfo {
    /// The threshold: overloaded when `actual_ratio` is strictly above it.
    pub limit_ratio: f64,
    /// The time-weighted share of the window that was overloaded.
    pub actual_ratio: f64,
}

impl LoadRatioInfo {
    /// `actual_ratio > limit_ratio`.
    pub fn is_overloaded(&self) -> bool {
        self.actual_ratio > self.limit_ratio
    }
}

/// The four resources' load ratios over one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SystemInfo {
    /// CPU.
    pub cpu: LoadRatioInfo,
    /// Memory.
    pub memory: LoadRatioInfo,
    /// The tokio runtime's scheduling delay.
    pub event_loop: LoadRatioInfo,
    /// Rate-limit answers from the remote side.
    pub client: LoadRatioInfo,
    /// When this judgement was made.
    pub created_at: Instant,
}

impl SystemInfo {
    /// True when no resource is overloaded.
    pub fn is_system_idle(&self) -> bool {
        self.overloaded().is_empty()
    }

    /// The set of overloaded resources.
    pub fn overloaded(&self) -> Resources {
        let mut r = Resources::NONE;
        for (res, info) in [
            (Resources::CPU, self.cpu),
            (Resources::MEMORY, self.memory),
            (Resources::EVENT_LOOP, self.event_loop),
            (Resources::CLIENT, self.client),
        ] {
            if info.is_overloaded() {
                r = r | res;
            }
        }
        r
    }
}

impl fmt::Display for SystemInfo {
    /// `cpu = 0.1/0.4; mem = 0/0.2; event_loop = 0/0.6; client = 0.5/0.3 (overloaded: client)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let one = |f: &mut fmt::Formatter<'_>, name, i: LoadRatioInfo| {
            write!(f, "{name} = {:.3}/{}", i.actual_ratio, i.limit_ratio)
        };
        one(f, "cpu", self.cpu)?;
        f.write_str("; ")?;
        one(f, "mem", self.memory)?;
        f.write_str("; ")?;
        one(f, "event_loop", self.event_loop)?;
        f.write_str("; ")?;
        one(f, "client", self.client)?;
        let over = self.overloaded();
        if over.is_empty() {
            f.write_str(" (idle)")
        } else {
            write!(f, " (overloaded: {over})")
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for SystemInfo {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SystemInfo", 5)?;
        st.serialize_field("cpu", &self.cpu)?;
        st.serialize_field("memory", &self.memory)?;
        st.serialize_field("event_loop", &self.event_loop)?;
        st.serialize_field("client", &self.client)?;
        st.serialize_field("idle", &self.is_system_idle())?;
        st.end()
    }
}

/// A set of resources, as a bit set: which ones a verdict found overloaded.
///
/// ```
/// use tower_snapshotter::status::Resources;
///
/// let r = Resources::CPU | Resources::CLIENT;
/// assert!(r.contains(Resources::CPU));
/// assert_eq!(r.to_string(), "cpu, client");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Resources(u8);

impl Resources {
    /// No resource.
    pub const NONE: Resources = Resources(0);
    /// CPU.
    pub const CPU: Resources = Resources(1);
    /// Memory.
    pub const MEMORY: Resources = Resources(2);
    /// The tokio runtime's scheduling delay.
    pub const EVENT_LOOP: Resources = Resources(4);
    /// Rate-limit answers from the remote side.
    pub const CLIENT: Resources = Resources(8);
    /// CPU, memory and event loop: what this machine controls.
    pub const MACHINE: Resources = Resources(1 | 2 | 4);

    /// Whether every resource of `other` is in `self`.
    pub const fn contains(self, other: Resources) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The resources in both sets.
    pub const fn intersection(self, other: Resources) -> Resources {
        Resources(self.0 & other.0)
    }

    /// The raw bits (for atomics).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// From raw bits; unknown bits are dropped.
    pub const fn from_bits(bits: u8) -> Resources {
        Resources(bits & 15)
    }

    fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (Self::CPU, "cpu"),
            (Self::MEMORY, "memory"),
            (Self::EVENT_LOOP, "event_loop"),
            (Self::CLIENT, "client"),
        ]
        .into_iter()
        .filter(move |(r, _)| self.contains(*r))
        .map(|(_, n)| n)
    }
}

impl std::ops::BitOr for Resources {
    type Output = Resources;
    fn bitor(self, rhs: Resources) -> Resources {
        Resources(self.0 | rhs.0)
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, n) in self.names().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(n)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resources({self})")
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Resources {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        s.collect_seq(self.names())
    }
}

/// Judges every window over `duration` back from each one's newest snapshot.
pub(crate) fn judge(w: &Windows, duration: Option<Duration>, t: &StatusConfig) -> SystemInfo {
    fn info<S: Snapshot + Clone>(h: &History<S>, d: Option<Duration>, limit: f64) -> LoadRatioInfo {
        LoadRatioInfo {
            limit_ratio: limit,
            actual_ratio: h.with_sample(d, |a, b| ratio_of(a.iter().chain(b.iter()))),
        }
    }
    SystemInfo {
        cpu: info(&w.cpu, duration, t.cpu_overload_threshold()),
        memory: info(&w.memory, duration, t.memory_overload_threshold()),
        event_loop: info(&w.event_loop, duration, t.event_loop_overload_threshold()),
        client: info(&w.client, duration, t.client_overload_threshold()),
        created_at: Instant::now(),
    }
}
