//! Tower middleware that gives HTTP clients backpressure from the machine
//! and from the remote side.
//!
//! # Quick start
//!
//! Wrap a client in a [`SnapshotLayer`] inside a `tower::ServiceBuilder`:
//!
//! ```
//! use std::time::Duration;
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_snapshotter::{Config, SnapshotLayer, Snapshotter};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower_snapshotter::BoxError> {
//! // One snapshotter per process: it samples in the background.
//! let snapshotter = Snapshotter::new(Config::default());
//! snapshotter.start()?;
//!
//! // Stands in for an HTTP client: a hyper-util `Client`, or a
//! // `reqwest::Client` with the `reqwest` feature.
//! let http_client = tower::service_fn(|_request: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(()))
//! });
//! let client = ServiceBuilder::new()
//!     .layer(SnapshotLayer::new(snapshotter.clone()))
//!     .timeout(Duration::from_secs(30))
//!     .service(http_client);
//!
//! let request = http::Request::get("http://example.com/").body(())?;
//! let response = client.oneshot(request).await?;
//! println!("{} ({})", response.status(), snapshotter.system_status().current()?);
//! # Ok(()) }
//! ```
//!
//! The wrapped client waits (or refuses, or adapts its concurrency and rate)
//! while the machine is overloaded, and pauses only the host that answered
//! 429 or `Retry-After`; see [`layer`] and [`GatePolicy`].
//!
//! A [`Snapshotter`] samples CPU (against the cgroup quota in containers),
//! memory (against the cgroup limit), the tokio runtime's scheduling delay
//! and the HTTP 429 answers a client gets, into short time windows. A
//! [`SystemStatus`] judges those windows with the time-weighted arithmetic of
//! Crawlee's `SystemStatus`, and the verdict is kept up to date as snapshots
//! are taken, so reading it costs one atomic load.
//!
//! # Without the layer
//!
//! A client that is not a tower service can use the [`Snapshotter`] alone:
//! report the answers it gets and ask for the verdict before sending.
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
//! | [`config`] (`config/`) | configuration: the parameter table and its defaults (`mod.rs`), the macro it expands through (`table.rs`), ranges (`range.rs`), environment variables (`env.rs`), [`ConfigError`] (`error.rs`) |
//! | `monitor` (`monitor/`) | the sensing side, in the order the data flows: probes → snapshots → windows → status → verdict; its public parts are re-exported as the modules below and at the crate root |
//! | [`probe`] (`monitor/probe/`) | where readings come from: cgroup parsing, sysinfo, tokio drift, the client recorder |
//! | [`snapshot`] (`monitor/snapshot.rs`) | the snapshot value types and their `is_overloaded` rules |
//! | [`history`] (`monitor/history.rs`) | the time-ordered window: insert, prune, sample |
//! | [`status`] (`monitor/status.rs`) | pure arithmetic over windows: [`overloaded_ratio`](status::overloaded_ratio), load ratios, [`SystemInfo`], [`Resources`] |
//! | `monitor/system_status.rs` | [`SystemStatus`] (public as `status::SystemStatus`, joined to the arithmetic in `lib.rs`): a snapshotter's windows judged on demand |
//! | `monitor/snapshotter.rs` | the [`Snapshotter`]: lifecycle, windows, samples, verdict (its unit tests in `snapshotter_tests.rs`) |
//! | `monitor/sampler.rs` | the snapshotter's one background task: reads every probe when due |
//! | `monitor/clock.rs` | the coarse clock the hot path reads instead of `Instant::now()` |
//! | [`retry_after`] (`layer/retry_after.rs`, `layer/quota_headers.rs`) | the hints servers send: `Retry-After` in both forms, the IETF `RateLimit` fields and the older quota headers, a rate named outright (`X-RateLimit-Replenish-Rate`); on the acting side, public at the crate root |
//! | [`retry`] (`retry.rs`) | [`RetryThrottled`], the `tower::retry::Policy` that retries 429s and 503s and lets the layer do the waiting |
//! | [`integrations`] (`integrations/`) | the layer in other ecosystems, each behind its feature: `reqwest_middleware.rs` (`SnapshotMiddleware`, feature `reqwest-middleware`), `metrics.rs` (counters and gauges through the `metrics` facade, feature `metrics`) |
//! | [`layer`] (`layer/`) | the acting side: [`SnapshotLayer`], [`SnapshotService`], what a blocked request does ([`OnBlocked`]), which limiter moves ([`Limiter`]), per-host partitions, the link to a fleet; its own table maps its files |
//! | `layer/adaptive/` | the adaptive limiter by concern: settings, controller, concurrency, rate estimate, fits (one process's, a fleet's), meter, delay signal, pacer, quotas, recovery, send spacing; its own table maps its files |
//! | `fleet` (`fleet/`, feature `redis`) | per-host pauses, send budget, learned rates, sending cycles and answers shared by many processes through Redis |
//! | `setters` (`setters.rs`) | the `setters!` macro the builders' chained setters are written with |
//! | `tally` (`tally.rs`) | answers counted per 100 ms of Unix time: what a host's rate control counts for a fleet and the fleet reports with a lease |

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub
)]

pub mod config;
#[cfg(feature = "redis")]
pub mod fleet;
pub mod integrations;
pub mod layer;
mod monitor;
pub mod retry;
mod setters;
mod tally;

#[doc(inline)]
pub use layer::retry_after;
pub use monitor::{history, probe, snapshot};

/// Whether windows show overload, with Crawlee's time-weighted arithmetic:
/// [`overloaded_ratio`](status::overloaded_ratio), the load ratios,
/// [`SystemInfo`] and [`Resources`]; and [`SystemStatus`], which asks a
/// [`Snapshotter`] for its windows and judges them with that arithmetic.
///
/// The arithmetic knows nothing of the snapshotter (`monitor/status.rs`);
/// `SystemStatus` sits on the snapshotter's side (`monitor/system_status.rs`)
/// and joins it here, so the arithmetic imports nothing of the
/// snapshotter's side.
pub mod status {
    pub use crate::monitor::status::*;
    pub use crate::monitor::system_status::SystemStatus;
}
// The paths `layer/` uses for the sensing side's crate-private parts.
pub(crate) use monitor::clock;

pub use config::{Config, ConfigBuilder, ConfigError, StatusConfig, StatusConfigBuilder};
pub use layer::{GatePolicy, Limiter, OnBlocked, SnapshotLayer, SnapshotService};
pub use monitor::snapshotter::{NotActive, Snapshotter, StartError, Verdict};
pub use probe::ClientRecorder;
pub use retry::RetryThrottled;
pub use status::{LoadRatioInfo, Resources, SystemInfo, SystemStatus};

/// The boxed error the layer's services return, as tower's `BoxError`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
