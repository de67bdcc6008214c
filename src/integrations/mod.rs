//! The layer where other ecosystems expect it, each behind its feature.
//!
//! | module | holds |
//! | --- | --- |
//! | [`metrics`] | counters and gauges through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`) |
//! | `reqwest_middleware` | `SnapshotMiddleware`: the layer as a `reqwest_middleware::Middleware` (feature `reqwest-middleware`) |

pub mod metrics;
#[cfg(feature = "reqwest-middleware")]
pub mod reqwest_middleware;
