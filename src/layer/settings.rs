//! The layer's validated settings.

use std::time::Duration;

use http::StatusCode;

use super::adaptive::AdaptiveConfig;
use super::policy::{AutoscaleConfig, GatePolicy};
use crate::config::ConfigError;

/// Everything a [`SnapshotLayer`](crate::SnapshotLayer) is configured with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LayerSettings {
    pub(crate) policy: GatePolicy,
    pub(crate) min_concurrency: usize,
    pub(crate) counted: Vec<StatusCode>,
    pub(crate) max_retry_after: Duration,
    pub(crate) per_host: bool,
    pub(crate) max_hosts: usize,
    pub(crate) host_backoff: Duration,
    pub(crate) autoscale: AutoscaleConfig,
    pub(crate) adaptive: AdaptiveConfig,
}

impl Default for LayerSettings {
    fn default() -> Self {
        Self {
            policy: GatePolicy::default(),
            min_concurrency: 1,
            counted: vec![StatusCode::TOO_MANY_REQUESTS],
            max_retry_after: Duration::from_secs(60),
            per_host: true,
            max_hosts: 10_000,
            host_backoff: Duration::from_millis(500),
            autoscale: AutoscaleConfig::default(),
            adaptive: AdaptiveConfig::default(),
        }
    }
}

pub(crate) const MAX_HOSTS: usize = 10_000_000;
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
        if self.host_backoff > MAX_WAIT {
            return Err(invalid(
                "host_backoff",
                format!("{:?}", self.host_backoff),
                "0s ..= 86400s",
            ));
        }
        if self.max_hosts == 0 || self.max_hosts > MAX_HOSTS {
            return Err(invalid("max_hosts", self.max_hosts.to_string(), "1 ..= 10000000"));
        }
        if let Some(s) = self.counted.iter().find(|s| s.as_u16() < 400) {
            return Err(invalid("counted_statuses", s.as_u16().to_string(), "400 ..= 599"));
        }
        match self.policy {
            GatePolicy::Autoscale => self.autoscale.validate(self.min_concurrency)?,
            GatePolicy::Adaptive => self.adaptive.validate()?,
            GatePolicy::Wait | GatePolicy::Reject => {}
        }
        Ok(())
    }
}
