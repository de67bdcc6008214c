//! Tower middleware that gives HTTP clients backpressure from the machine
//! and from the remote side.
//!
//! Wrap a client in a [`SnapshotLayer`] and it waits (or refuses, or adapts
//! its concurrency and rate) while the machine is overloaded, and pauses
//! only the host that answered 429 or `Retry-After`; see [`layer`] and
//! [`GatePolicy`].
//!
//! A [`Snapshotter`] samples CPU (against the cgroup quota in containers),
//! memory (against the cgroup limit), the tokio runtime's scheduling delay
//! and the HTTP 429 answers a client gets, into short time windows. A
//! [`SystemStatus`] judges those windows with the time-weighted arithmetic of
//! Crawlee's `SystemStatus`, and the verdict is kept up to date as snapshots
//! are taken, so reading it costs one atomic load.
//!
//! # Quick start
//!
//! ```
//! use tower_snapshotter::{Config, Snapshotter};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let snapshotter = Snapshotter::new(Config::default());
//! snapshotter.start()?;
//!
//! // Report what the remote side answered...
//! snapshotter.client_recorder().record_status(http::StatusCode::TOO_MANY_REQUESTS);
//! // ...and ask whether to slow down.
//! if !snapshotter.overloaded().is_empty() {
//!     println!("back off: {}", snapshotter.system_status().current()?);
//! }
//! # Ok(()) }
//! ```
//!
//! # Module map
//!
//! | module | holds |
//! | --- | --- |
//! | [`config`] | configuration, defaults, validation, environment variables |
//! | [`snapshot`] | the snapshot value types and their `is_overloaded` rules |
//! | [`history`] | the time-ordered window: insert, prune, sample |
//! | [`status`] | [`SystemStatus`], load ratios, [`SystemInfo`], [`overloaded_ratio`](status::overloaded_ratio) |
//! | [`probe`] | where readings come from: cgroup parsing, sysinfo, tokio drift, the client recorder |
//! | `snapshotter` | the [`Snapshotter`]: lifecycle, sampling tasks, samples, verdict |
//! | `clock` | the coarse clock the hot path reads instead of `Instant::now()` |
//! | [`retry_after`] | `Retry-After` in both forms and the IETF `RateLimit` fields |
//! | [`retry`] | [`RetryThrottled`], the `tower::retry::Policy` that retries 429s and 503s and lets the layer do the waiting |
//! | [`layer`] | [`SnapshotLayer`], [`SnapshotService`], [`GatePolicy`], the adaptive controller, per-host partitions |

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

mod clock;
pub mod config;
pub mod history;
pub mod layer;
pub mod probe;
pub mod retry;
pub mod retry_after;
pub mod snapshot;
mod snapshotter;
pub mod status;

pub use config::{Config, ConfigBuilder, ConfigError, StatusConfig};
pub use layer::{GatePolicy, SnapshotLayer, SnapshotService};
pub use probe::ClientRecorder;
pub use retry::RetryThrottled;
pub use snapshotter::{NotActive, Snapshotter, StartError, Verdict};
pub use status::{LoadRatioInfo, Resources, SystemInfo, SystemStatus};

/// The boxed error the layer's services return, as tower's `BoxError`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
