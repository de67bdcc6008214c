//! The layer where other ecosystems expect it, each behind its feature.

#[cfg(feature = "reqwest-middleware")]
pub mod reqwest_middleware;
