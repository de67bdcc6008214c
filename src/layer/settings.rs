//! The layer's validated settings.

use std::time::Duration;

use http::StatusCode;

use super::adaptive::AdaptiveConfig;
use super::policy::{AutoscaleConfig, Limiter, OnBlocked};
use crate::config::ConfigError;

/// Everything a [`SnapshotLayer`](crate::SnapshotLayer) is configured with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LayerSettings {
    pub(crate) on_blocked: OnBlocked,
    pub(crate) limiter: Limiter,
    pub(crate) min_concurrency: usize,
    pub(crate) counted: Vec<StatusCode>,
    pub(crate) max_retry_after: Duration,
    pub(crate) per_host: bool,
    pub(crate) max_hosts: usize,
    /// Set by the user (`None`: [`DEFAULT_HOST_BACKOFF`] where a back-off
    /// applies).
    pub(crate) host_backoff: Option<Duration>,
    /// A `host` label on the per-host metrics (feature `metrics`).
    pub(crate) metrics_per_host: bool,
}

impl Default for LayerSettings {
    fn default() -> Self {
        Self {
            on_blocked: OnBlocked::default(),
            limiter: Limiter::default(),
            min_concurrency: 1,
            counted: vec![StatusCode::TOO_MANY_REQUESTS],
            max_retry_after: Duration::from_secs(60),
            per_host: true,
            max_hosts: 10_000,
            host_backoff: None,
            metrics_per_host: false,
        }
    }
}

pub(crate) const MAX_HOSTS: usize = 10_000_000;
/// The first back-off pause when `host_backoff` is not set.
const DEFAULT_HOST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

impl LayerSettings {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, value: String, allowed: &str| ConfigError::Invalid {
            field,
            value,
            allowed: allowed.to_owned(),
        };
        if self.min_concurrency > 1_000_000 {
            return Err(invalid(
                "min_concurrency",
                self.min_concurrency.to_string(),
                "0 ..= 1000000",
            ));
        }
        if self.max_retry_after > MAX_WAIT {
            return Err(invalid(
                "max_retry_after",
                format!("{:?}", self.max_retry_after),
                "0s ..= 86400s",
            ));
        }
        match self.host_backoff {
            Some(b) if b > MAX_WAIT => {
                return Err(invalid("host_backoff", format!("{b:?}"), "0s ..= 86400s"));
            }
            // Never ignored in silence: the adaptive controller cuts the
            // host's rate on each refusal, and no pause is added to that.
            Some(b) if !b.is_zero() && self.adaptive().is_some() => {
                return Err(invalid(
                    "host_backoff",
                    format!("{b:?}"),
                    "0s with Limiter::Adaptive (its controller is the back-off); 0s ..= 86400s with Limiter::Autoscale or Limiter::None",
                ));
            }
            _ => {}
        }
        if self.max_hosts == 0 || self.max_hosts > MAX_HOSTS {
            return Err(invalid("max_hosts", self.max_hosts.to_string(), "1 ..= 10000000"));
        }
        if let Some(s) = self.counted.iter().find(|s| s.as_u16() < 400) {
            return Err(invalid("counted_statuses", s.as_u16().to_string(), "400 ..= 599"));
        }
        match &self.limiter {
            Limiter::Autoscale(c) => c.validate(self.min_concurrency)?,
            Limiter::Adaptive(c) => c.validate()?,
            Limiter::None => {}
        }
        Ok(())
    }

    /// The first back-off pause after a counted answer without
    /// `Retry-After`; zero when off, and always under the adaptive limiter.
    #[inline]
    pub(crate) fn host_backoff(&self) -> Duration {
        if self.adaptive().is_some() {
            return Duration::ZERO;
        }
        self.host_backoff.unwrap_or(DEFAULT_HOST_BACKOFF)
    }

    /// Whether a request that may not go fails at once.
    #[inline]
    pub(crate) fn rejects(&self) -> bool {
        self.on_blocked == OnBlocked::Reject
    }

    /// The adaptive limiter's settings, when it is the one in use.
    #[inline]
    pub(crate) fn adaptive(&self) -> Option<&AdaptiveConfig> {
        match &self.limiter {
            Limiter::Adaptive(c) => Some(c),
            _ => None,
        }
    }

    /// Crawlee's autoscaling settings, when it is the limiter in use.
    pub(crate) fn autoscale(&self) -> Option<&AutoscaleConfig> {
        match &self.limiter {
            Limiter::Autoscale(c) => Some(c),
            _ => None,
        }
    }
}
