//! The adaptive limiter's settings, with their defaults and ranges: one
//! row each in the table below (see `config/limiter_table.rs`).

use crate::config::ConfigError;

crate::config::limiter_table::limiter_settings! {
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
    pub struct AdaptiveConfig {
        /// Concurrency limit of a new host.
        initial_concurrency: usize = (4) in (1 ..= max_concurrency) by hand;
        /// Highest concurrency limit per host.
        max_concurrency: usize = (500) in (1 ..= 1_000_000);
        /// Factor applied to the concurrency limit on an inner error (a
        /// timeout, a reset): at most once per round trip. Refusals move the
        /// rate (429, 503 at depths that succeed) or go just below the depth
        /// refused (503 from deeper than successes), not by this factor.
        decrease_ratio: f64 = (0.8) in (0 < x < 1);
        /// Round-trip time, as a multiple of the recent minimum, above which an
        /// answer counts as late; a round trip with more than one late answer
        /// in eight counts as queueing.
        rtt_tolerance: f64 = (1.5) in (1.0 ..= 100.0);
        /// Lowest paced rate, requests per second: the pace never goes
        /// under it. A rate measured under one a second (nginx's
        /// `rate=30r/m`, a window of 30 a minute) is held down to it; a
        /// search (a guess, grown while it binds) starts at one a second
        /// at the least.
        min_rate: f64 = (0.01) in (0 < x <= 1e6);
    }

    /// Checks every setting against its range, in table order, then that
    /// `initial_concurrency` is at most `max_concurrency`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.initial_concurrency == 0 || self.initial_concurrency > self.max_concurrency {
            return Err(ConfigError::Invalid {
                field: "initial_concurrency",
                value: self.initial_concurrency.to_string(),
                allowed: "1 ..= max_concurrency".to_owned(),
            });
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
        // The table's ranges come first, then the rule `by hand`.
        let both = AdaptiveConfig::default().initial_concurrency(0).min_rate(0.0);
        assert_eq!(both.validate().unwrap_err().field(), "min_rate");
        let over = AdaptiveConfig::default()
            .max_concurrency(8)
            .initial_concurrency(9);
        assert_eq!(over.validate().unwrap_err().allowed(), "1 ..= max_concurrency");
        assert!(AdaptiveConfig::default()
            .rtt_tolerance(f64::NAN)
            .validate()
            .is_err());
    }

    #[test]
    fn defaults_as_before_the_table_but_min_rate() {
        let before = AdaptiveConfig {
            initial_concurrency: 4,
            max_concurrency: 500,
            decrease_ratio: 0.8,
            rtt_tolerance: 1.5,
            // 1.0 before rates per minute were read (`rate/slow.rs`).
            min_rate: 0.01,
        };
        assert_eq!(AdaptiveConfig::default(), before);
    }
}
