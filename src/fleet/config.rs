//! The fleet's settings: where Redis is, the namespace every key lives
//! under, and the timing of refreshes, leases and keys.
//!
//! | parameter | default | allowed |
//! | --- | --- | --- |
//! | `redis_url` | required | a URL `redis::Client::open` accepts (`redis://`, `unix://`) |
//! | `namespace` | required | 1 ..= 128 bytes, no `{`, `}` or whitespace |
//! | `refresh` | 100 ms | 10 ms ..= 10 s |
//! | `lease` | 250 ms | 50 ms ..= 2 s |
//! | `key_ttl` | 60 s | 1 s ..= 7 days |
//! | `command_timeout` | 50 ms | 1 ms ..= 10 s |
//! | `max_hosts` | 10 000 | 1 ..= 10 000 000 |

use std::fmt;
use std::time::Duration;

use crate::config::ConfigError;

const DEFAULT_REFRESH: Duration = Duration::from_millis(100);
const MIN_REFRESH: Duration = Duration::from_millis(10);
const MAX_REFRESH: Duration = Duration::from_secs(10);
const DEFAULT_LEASE: Duration = Duration::from_millis(250);
const MIN_LEASE: Duration = Duration::from_millis(50);
const MAX_LEASE: Duration = Duration::from_secs(2);
const DEFAULT_KEY_TTL: Duration = Duration::from_secs(60);
const MIN_KEY_TTL: Duration = Duration::from_secs(1);
const MAX_KEY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(50);
const MIN_COMMAND_TIMEOUT: Duration = Duration::from_millis(1);
const MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_HOSTS: usize = 10_000;
const MAX_MAX_HOSTS: usize = 10_000_000;
const MAX_NAMESPACE_LEN: usize = 128;

/// Validated settings of a [`Fleet`](super::Fleet); made with
/// [`FleetConfig::builder`].
///
/// Every process of one crawl (or one tenant) uses the same Redis and the
/// same namespace; processes with different namespaces share nothing.
///
/// ```
/// use std::time::Duration;
/// use tower_snapshotter::fleet::FleetConfig;
///
/// let config = FleetConfig::builder("redis://127.0.0.1:6379/", "crawl-42")
///     .refresh(Duration::from_millis(50))
///     .build()?;
/// assert_eq!(config.namespace(), "crawl-42");
/// assert_eq!(config.lease(), Duration::from_millis(250));
///
/// let err = FleetConfig::builder("redis://127.0.0.1/", "a{b}").build().unwrap_err();
/// assert_eq!(err.field(), "namespace");
/// # Ok::<(), tower_snapshotter::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct FleetConfig {
    redis_url: String,
    namespace: String,
    refresh: Duration,
    lease: Duration,
    key_ttl: Duration,
    command_timeout: Duration,
    max_hosts: usize,
}

impl fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetConfig")
            .field("redis_url", &redacted(&self.redis_url))
            .field("namespace", &self.namespace)
            .field("refresh", &self.refresh)
            .field("lease", &self.lease)
            .field("key_ttl", &self.key_ttl)
            .field("command_timeout", &self.command_timeout)
            .field("max_hosts", &self.max_hosts)
            .finish()
    }
}

impl FleetConfig {
    /// A builder with the two required settings and every other at its
    /// default.
    pub fn builder(redis_url: impl Into<String>, namespace: impl Into<String>) -> FleetConfigBuilder {
        FleetConfigBuilder {
            config: FleetConfig {
                redis_url: redis_url.into(),
                namespace: namespace.into(),
                refresh: DEFAULT_REFRESH,
                lease: DEFAULT_LEASE,
                key_ttl: DEFAULT_KEY_TTL,
                command_timeout: DEFAULT_COMMAND_TIMEOUT,
                max_hosts: DEFAULT_MAX_HOSTS,
            },
        }
    }

    /// The Redis server, as a URL (`redis://[user:password@]host:port/db`).
    pub fn redis_url(&self) -> &str {
        &self.redis_url
    }

    /// The prefix of every key and of the event channel.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// How often the background task wakes: to lease, to publish, to read
    /// the state of recently used hosts when events are not pushed, and to
    /// retry Redis while it is away.
    pub fn refresh(&self) -> Duration {
        self.refresh
    }

    /// How much of its share of a host's rate one lease gives a process:
    /// a lease of `lease × rate / processes` send slots.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// How long a key lives after its last write, so that the state of
    /// dead processes and forgotten hosts goes away.
    pub fn key_ttl(&self) -> Duration {
        self.key_ttl
    }

    /// How long one Redis command may take before the process works
    /// locally.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// How many hosts the local cache holds; the least recently used goes
    /// first.
    pub fn max_hosts(&self) -> usize {
        self.max_hosts
    }

    /// How far ahead of now the fleet's schedule of a host may be leased:
    /// two lease lengths.
    pub(crate) fn lookahead(&self) -> Duration {
        self.lease * 2
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let ns = &self.namespace;
        if ns.is_empty()
            || ns.len() > MAX_NAMESPACE_LEN
            || ns
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                "namespace",
                format!("{ns:?}"),
                "1 ..= 128 bytes without `{`, `}` or whitespace",
            ));
        }
        if redis::Client::open(self.redis_url.as_str()).is_err() {
            return Err(invalid(
                "redis_url",
                redacted(&self.redis_url),
                "a Redis URL such as redis://127.0.0.1:6379/",
            ));
        }
        duration("refresh", self.refresh, MIN_REFRESH, MAX_REFRESH)?;
        duration("lease", self.lease, MIN_LEASE, MAX_LEASE)?;
        duration("key_ttl", self.key_ttl, MIN_KEY_TTL, MAX_KEY_TTL)?;
        duration(
            "command_timeout",
            self.command_timeout,
            MIN_COMMAND_TIMEOUT,
            MAX_COMMAND_TIMEOUT,
        )?;
        if self.max_hosts == 0 || self.max_hosts > MAX_MAX_HOSTS {
            return Err(invalid("max_hosts", self.max_hosts, "1 ..= 10000000"));
        }
        Ok(())
    }
}

/// Builds a [`FleetConfig`]; [`build`](Self::build) validates it.
#[derive(Debug, Clone)]
pub struct FleetConfigBuilder {
    config: FleetConfig,
}

impl FleetConfigBuilder {
    /// See [`FleetConfig::refresh`] (100 ms; 10 ms ..= 10 s).
    pub fn refresh(mut self, refresh: Duration) -> Self {
        self.config.refresh = refresh;
        self
    }

    /// See [`FleetConfig::lease`] (250 ms; 50 ms ..= 2 s).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// See [`FleetConfig::key_ttl`] (60 s; 1 s ..= 7 days).
    pub fn key_ttl(mut self, ttl: Duration) -> Self {
        self.config.key_ttl = ttl;
        self
    }

    /// See [`FleetConfig::command_timeout`] (50 ms; 1 ms ..= 10 s).
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.config.command_timeout = timeout;
        self
    }

    /// See [`FleetConfig::max_hosts`] (10 000; 1 ..= 10 000 000).
    pub fn max_hosts(mut self, n: usize) -> Self {
        self.config.max_hosts = n;
        self
    }

    /// The configuration, or the first setting outside its range.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field, its value (a URL with a
    /// password is not shown) and the allowed range.
    pub fn build(self) -> Result<FleetConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

fn invalid(field: &'static str, value: impl fmt::Display, allowed: &str) -> ConfigError {
    ConfigError::Invalid {
        field,
        value: value.to_string(),
        allowed: allowed.to_owned(),
    }
}

fn duration(field: &'static str, v: Duration, min: Duration, max: Duration) -> Result<(), ConfigError> {
    if v < min || v > max {
        return Err(invalid(field, format!("{v:?}"), &format!("{min:?} ..= {max:?}")));
    }
    Ok(())
}

/// The URL, or a placeholder when it may carry credentials.
fn redacted(url: &str) -> String {
    if url.contains('@') {
        "<a URL with credentials, not shown>".to_owned()
    } else {
        format!("{url:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> FleetConfigBuilder {
        FleetConfig::builder("redis://127.0.0.1:6379/", "ns")
    }

    #[test]
    fn defaults() {
        let c = builder().build().unwrap();
        assert_eq!(c.refresh(), Duration::from_millis(100));
        assert_eq!(c.lease(), Duration::from_millis(250));
        assert_eq!(c.key_ttl(), Duration::from_secs(60));
        assert_eq!(c.command_timeout(), Duration::from_millis(50));
        assert_eq!(c.max_hosts(), 10_000);
        assert_eq!(c.lookahead(), Duration::from_millis(500));
    }

    #[test]
    fn namespace_rules() {
        for bad in ["", "a{b", "a}b", "a b", "a\nb", &"x".repeat(129)] {
            let err = FleetConfig::builder("redis://127.0.0.1/", bad)
                .build()
                .unwrap_err();
            assert_eq!(err.field(), "namespace", "{bad:?}");
        }
        for good in ["a", "crawl:42", "tenant-7/crawl", &"x".repeat(128)] {
            FleetConfig::builder("redis://127.0.0.1/", good).build().unwrap();
        }
    }

    #[test]
    fn url_rules_and_redaction() {
        let err = FleetConfig::builder("http://example.com/", "ns")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "redis_url");
        let err = FleetConfig::builder("nope://user:secret@host/", "ns")
            .build()
            .unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let c = FleetConfig::builder("redis://:secret@127.0.0.1/", "ns")
            .build()
            .unwrap();
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn ranges() {
        let cases: [(FleetConfigBuilder, &str); 9] = [
            (builder().refresh(Duration::from_millis(9)), "refresh"),
            (builder().refresh(Duration::from_secs(11)), "refresh"),
            (builder().lease(Duration::from_millis(49)), "lease"),
            (builder().lease(Duration::from_millis(2001)), "lease"),
            (builder().key_ttl(Duration::from_millis(999)), "key_ttl"),
            (builder().key_ttl(Duration::from_secs(8 * 24 * 3600)), "key_ttl"),
            (builder().command_timeout(Duration::ZERO), "command_timeout"),
            (builder().max_hosts(0), "max_hosts"),
            (builder().max_hosts(10_000_001), "max_hosts"),
        ];
        for (b, field) in cases {
            let err = b.build().unwrap_err();
            assert_eq!(err.field(), field);
            assert!(matches!(err, ConfigError::Invalid { .. }));
        }
        builder()
            .refresh(Duration::from_millis(10))
            .lease(Duration::from_secs(2))
            .key_ttl(Duration::from_secs(1))
            .command_timeout(Duration::from_secs(10))
            .max_hosts(1)
            .build()
            .unwrap();
    }
}
