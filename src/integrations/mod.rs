//! What the crate reports to other libraries.
//!
//! | module | holds |
//! | --- | --- |
//! | [`metrics`] | counters and gauges through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`) |

pub mod metrics;
