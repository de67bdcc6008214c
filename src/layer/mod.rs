//! The tower middleware: [`SnapshotLayer`] and [`SnapshotService`].
//!
//! The layer wraps an HTTP client service. Every answer goes to the
//! [`Snapshotter`](crate::Snapshotter)'s client window (429 by default; the
//! set is configurable), and new requests are gated while the windows show
//! overload, following a [`GatePolicy`]:
//!
//! * machine-wide overload (CPU, memory, event loop) gates every request in
//!   `poll_ready`, which registers a waker and never fails for a passing
//!   overload;
//! * a host's own trouble (its 429s, its `Retry-After`) pauses only that
//!   host, in the response future, before the inner call: the ready inner
//!   service moves into the future and a clone stays behind, so the inner
//!   service must be `Clone` (HTTP clients are).
//!
//! The hot path reads the verdict the snapshotter computed when it last took
//! a snapshot (one atomic load), hashes the request's host, and on the answer
//! compares its status: no window scan, no lock and no `Arc` clone per
//! request under `Wait` and `Reject`.

pub mod adaptive;
pub mod error;
pub mod future;
mod hosts;
mod http_parts;
#[allow(clippy::module_inception)]
mod layer;
mod limit;
mod policy;
mod report;
mod service;
mod settings;
mod shared;
mod stats;
mod wait;

pub use adaptive::AdaptiveConfig;
pub use http_parts::{HttpRequest, HttpResponse};
pub use layer::{SnapshotLayer, SnapshotLayerBuilder};
pub use policy::{AutoscaleConfig, GatePolicy, Limiter, OnBlocked};
pub use service::SnapshotService;
pub use stats::{AdaptiveHost, LayerStats, PausedHost};
