//! The adaptive limiter's settings, with their defaults and ranges.

use crate::config::ConfigError;

/// Settings of [`Limiter::Adaptive`](crate::layer::Limiter::Adaptive), each
/// with its default and allowed range; [`validate`](Self::validate) checks
/// them, and so does the layer's builder.
///
/// ```
/// use tower_snapshotter::layer::{AdaptiveConfig, Limiter};
///
/// // A host that must never see more than 8 requests at once, nor fewer
/// // than one every two seconds once throttled.
/// let adaptive = AdaptiveConfig::default().max_concurrency(8).min_rate(0.5);
/// assert!(adaptive.validate().is_ok());
/// let limiter = Limiter::Adaptive(adaptive);
/// # let _ = limiter;
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct AdaptiveConfig {
    /// Concurrency limit of a new host (4).
    pub initial_concurrency: usize,
    /// Highest concurrency limit per host (500).
    pub max_concurrency: usize,
    /// Factor applied to the concurrency limit on loss, and to the rate when
    /// the loss gives only a guess of the host's capacity (0.8). A capacity
    /// measured at the limit cuts the rate to 95 % of it, or to this factor
    /// if it is higher.
    pub decrease_ratio: f64,
    /// Round-trip time, as a multiple of the recent minimum, above which an
    /// answer counts as late (1.5); a round trip with more than one late
    /// answer in eight counts as queueing.
    pub rtt_tolerance: f64,
    /// Lowest paced rate, requests per second (1.0).
    pub min_rate: f64,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            initial_concurrency: 4,
            max_concurrency: 500,
            decrease_ratio: 0.8,
            rtt_tolerance: 1.5,
            min_rate: 1.0,
        }
    }
}

impl AdaptiveConfig {
    crate::setters::setters!(fields: initial_concurrency: usize, max_concurrency: usize, decrease_ratio: f64, rtt_tolerance: f64, min_rate: f64);

    /// Checks each value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, value: String, allowed: &str| ConfigError::Invalid {
            field,
            value,
            allowed: allowed.to_owned(),
        };
        if self.max_concurrency == 0 || self.max_concurrency > 1_000_000 {
            return Err(invalid(
                "max_concurrency",
                self.max_concurrency.to_string(),
                "1 ..= 1000000",
            ));
        }
        if self.initial_concurrency == 0 || self.initial_concurrency > self.max_concurrency {
            return Err(invalid(
                "initial_concurrency",
                self.initial_concurrency.to_string(),
                "1 ..= max_concurrency",
            ));
        }
        if !(self.decrease_ratio > 0.0 && self.decrease_ratio < 1.0) {
            return Err(invalid(
                "decrease_ratio",
                self.decrease_ratio.to_string(),
                "(0, 1)",
            ));
        }
        if !(self.rtt_tolerance >= 1.0 && self.rtt_tolerance <= 100.0) {
            return Err(invalid(
                "rtt_tolerance",
                self.rtt_tolerance.to_string(),
                "1 ..= 100",
            ));
        }
        if !(self.min_rate > 0.0 && self.min_rate <= 1e6) {
            return Err(invalid("min_rate", self.min_rate.to_string(), "(0, 1000000]"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rules() {
        assert!(AdaptiveConfig::default().validate().is_ok());
        let bad = AdaptiveConfig::default().decrease_ratio(1.0);
        assert_eq!(bad.validate().unwrap_err().field(), "decrease_ratio");
    }
}
