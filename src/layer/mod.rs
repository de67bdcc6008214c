//! The acting side: [`SnapshotLayer`] and [`SnapshotService`].
//!
//! The layer wraps an HTTP client service. Every answer goes to the
//! [`Snapshotter`](crate::Snapshotter)'s client window (429 by default; the
//! set is configurable), and new requests are held back while the windows
//! show overload, their host is paused, or the layer's [`Limiter`] says so.
//! What a held-back request does is the [`OnBlocked`] choice (wait, or fail
//! at once); [`GatePolicy`] names the usual pairs.
//!
//! * Machine-wide overload (CPU, memory, event loop) gates every request in
//!   `poll_ready`, which registers a waker and never fails for a passing
//!   overload.
//! * A host's own trouble (its `Retry-After`, its pace, its permits) holds
//!   only that host's requests, in the response future, before the inner
//!   call. A waiting request owns an *unready* clone of the inner service
//!   and drives it ready only when it may go, as tower's `Oneshot` does, so
//!   it holds nothing the inner `poll_ready` reserved (a `ConcurrencyLimit`
//!   permit, a `Buffer` slot). The inner service must be `Clone` (HTTP
//!   clients are).
//!
//! A request reads the verdict the snapshotter computed when it last took
//! a snapshot (one atomic load) and copies its host's name (inline up to
//! 24 bytes); its future carries the layer's state, so the answer reaches
//! it without any global table. A host is its full authority, compared
//! whole: two sites never share a pause.
//!
//! | file | holds |
//! | --- | --- |
//! | `mod.rs` | these docs, and the module's public re-exports |
//! | `layer.rs` | [`SnapshotLayer`] and its builder |
//! | `settings.rs` | everything a layer is built with: defaults, validation, and which limiter's settings apply |
//! | `service.rs` | [`SnapshotService`]: `poll_ready` (the gate) and `call` (send now, wait, or refuse) |
//! | `future.rs` | [`ResponseFuture`](future::ResponseFuture): waiting, called, rejected |
//! | `wait.rs` | a request that may not go yet: pause, admission, pace, then the inner readiness |
//! | `slot_timer.rs` | its sleep, to the microsecond for a host whose limiter has no burst |
//! | `report.rs` | what a request holds until its answer, and what the answer tells |
//! | `shared.rs` | the state every clone shares: admission, pauses, back-off |
//! | `shard.rs` | how a future reaches that state, counted per thread |
//! | `hosts.rs` | per-host state by full authority, LRU-capped |
//! | `host_cache.rs` | a service clone's last host, so its next request there skips the map's lock |
//! | `policy.rs` | [`OnBlocked`], [`Limiter`], [`GatePolicy`], [`AutoscaleConfig`] |
//! | `limit.rs` | the concurrency limit `Autoscale` moves |
//! | `retry_after.rs` | the hints servers send: `Retry-After`, and the quota headers' items below (public as `tower_snapshotter::retry_after`) |
//! | `quota_headers.rs` | quota headers (IETF `RateLimit`, `X-RateLimit-*`) and a rate named outright, public through `retry_after` |
//! | `forbidden.rs` | runs of bare 403s: a block's refusals (`mod_evasive`, firewalls' rate rules), counted as 429s |
//! | `forbidden_trial.rs` | a trial of the pace for a host answering half bare 403s or more: a rate limiter's refusals (nginx `limit_req_status 403`), or forbidden pages |
//! | `precise_wait.rs` | the exact waits some send beside `Retry-After`: milliseconds, Traefik's `X-Retry-In` |
//! | `permit.rs` | what a request holds from its host's adaptive controller: its permit, its pacing lead |
//! | `signal.rs` | the wake-up for a freed slot, which costs a read while nobody waits |
//! | `fleet_link.rs` | the link to a fleet (feature `redis`): pauses, one send budget per paced host and learned rates shared with other processes; no-ops without one |
//! | `http_parts.rs` | [`HttpRequest`], [`HttpResponse`]: the traits the layer reads requests and answers through (`http` types, and reqwest's with feature `reqwest`) |
//! | `stats.rs` | [`LayerStats`] and its per-host parts: a read-only view for dashboards |
//! | `error.rs` | [`Overloaded`](error::Overloaded): a request refused at once |
//! | `adaptive/` | the adaptive limiter, by concern ([`adaptive`] maps it): `config.rs`, `controller.rs`, `concurrency.rs`, `delay.rs`, `rate.rs` (and `rate/`, its rules), `fit.rs`, `fleet_fit.rs`, `meter.rs`, `named_slots.rs`, `pacer.rs`, `quota.rs`, `recovery.rs`, `spacing.rs` |

pub mod adaptive;
pub mod error;
mod fleet_link;
mod forbidden;
mod forbidden_trial;
pub mod future;
mod host_cache;
mod hosts;
mod http_parts;
#[allow(clippy::module_inception)]
mod layer;
mod limit;
mod permit;
mod policy;
mod precise_wait;
mod quota_headers;
mod report;
#[doc(hidden)] // public as `crate::retry_after`
pub mod retry_after;
mod service;
mod settings;
mod shard;
mod shared;
mod signal;
mod slot_timer;
mod stats;
mod wait;

pub use adaptive::AdaptiveConfig;
pub use http_parts::{HttpRequest, HttpResponse};
pub use layer::{SnapshotLayer, SnapshotLayerBuilder};
pub use policy::{AutoscaleConfig, GatePolicy, Limiter, OnBlocked};
pub use service::SnapshotService;
pub use stats::{AdaptiveHost, LayerStats, PausedHost, PausedTime};
