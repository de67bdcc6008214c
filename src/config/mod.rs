//! Configuration of the [`Snapshotter`](crate::Snapshotter) and of
//! [`SystemStatus`](crate::SystemStatus): every parameter of Crawlee's, with
//! Crawlee's defaults, validated.
//!
//! Each parameter is declared once, as one row of the table in this module's
//! source (name, type, default, allowed range, environment variable, doc);
//! the struct fields, [`Default`], the getters, the builder setters, the range
//! checks, the environment variables and the [parameter table in
//! `Config`'s docs](Config#parameters) are all generated from it.
//!
//! Build a [`Config`] with [`Config::builder`], [`Config::from_env`] or
//! [`Config::default`]; a [`StatusConfig`] for a
//! [`SystemStatus`](crate::SystemStatus) of your own with
//! [`StatusConfig::builder`]. Both structs are `#[non_exhaustive]`: new
//! parameters are not breaking changes.
//!
//! # Choices where Crawlee's editions differ
//!
//! * **`max_client_errors` is 3**, as in Crawlee JavaScript (Python uses 1).
//!   Crawlee counted only its own storage API's third-attempt 429s; this crate
//!   counts the answers of the sites a client talks to, often hundreds a
//!   second, where one or two stray 429s in a second are noise rather than
//!   overload. Per-host back-off (see the layer) reacts to every single 429
//!   on its own host, so the global verdict can afford the higher bar.
//! * **`client_rate_limit_error_retry_count` is 2**, as in both editions.
//!   Crawlee counts a 429 only on a request's third attempt (its API client
//!   retries twice first). Here every 429 counts by default; a caller that
//!   retries can say which attempt an answer belongs to with
//!   [`ClientRecorder::record_attempt`](crate::ClientRecorder::record_attempt),
//!   and then a 429 counts only once the request has already been retried
//!   this many times.
//! * **`max_memory_size`**, when unset, is `available_memory_ratio` times the
//!   memory limit that applies to this process (the cgroup's, else the
//!   host's), recomputed on every sample, as Crawlee Python does since
//!   PR #1715.

use std::time::Duration;

#[macro_use]
mod table;
mod env;
mod error;
pub(crate) mod limiter_table;
mod range;

pub use error::ConfigError;

parameters! {
    /// The whole configuration of a [`Snapshotter`](crate::Snapshotter) and its
    /// [`SystemStatus`](crate::SystemStatus). Build one with [`Config::builder`]
    /// or [`Config::from_env`]; [`Config::default`] holds Crawlee's defaults.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_snapshotter::Config;
    ///
    /// let config = Config::builder()
    ///     .max_used_cpu_ratio(0.8)
    ///     .snapshot_history(Duration::from_secs(60))
    ///     .build()?;
    /// assert_eq!(config.max_used_cpu_ratio(), 0.8);
    /// # Ok::<(), tower_snapshotter::ConfigError>(())
    /// ```
    ///
    /// In the environment, durations are whole milliseconds, ratios are
    /// decimal numbers and sizes are whole bytes. Besides its range,
    /// `snapshot_history` must be at least `max_snapshot_age`.
    #[derive(Debug, Clone, PartialEq)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize))]
    pub struct Config {
        /// How often the event-loop probe wakes.
        event_loop_snapshot_interval: Duration = (500 ms) in (1 ms ..= 1 h)
            env "SNAPSHOTTER_EVENT_LOOP_SNAPSHOT_INTERVAL_MS";
        /// How often a client snapshot is taken.
        client_snapshot_interval: Duration = (1 s) in (1 ms ..= 1 h)
            env "SNAPSHOTTER_CLIENT_SNAPSHOT_INTERVAL_MS";
        /// How often CPU and memory are sampled.
        system_info_interval: Duration = (1 s) in (MIN_SYSTEM_INFO_INTERVAL ..= 1 h)
            env "SNAPSHOTTER_SYSTEM_INFO_INTERVAL_MS";
        /// How much history each window keeps, back from its newest snapshot;
        /// at least `max_snapshot_age`.
        snapshot_history: Duration = (30 s) in (1 ms ..= 24 h)
            env "SNAPSHOTTER_SNAPSHOT_HISTORY_MS";
        /// CPU share above which a CPU snapshot is overloaded.
        max_used_cpu_ratio: f64 = (0.95) in (0 < x <= 1)
            env "SNAPSHOTTER_MAX_USED_CPU_RATIO";
        /// Share of `max_memory_size` above which a memory snapshot is overloaded.
        max_used_memory_ratio: f64 = (0.9) in (0 < x <= 1)
            env "SNAPSHOTTER_MAX_USED_MEMORY_RATIO";
        /// A fixed memory budget in bytes; `None` (the default) derives it from the
        /// applicable memory limit on every sample.
        max_memory_size: Option<u64> = (unset) in (bytes 1 ..= 1 << 63, or unset)
            env "SNAPSHOTTER_MAX_MEMORY_SIZE";
        /// Share of the applicable memory limit used as the budget when
        /// `max_memory_size` is unset.
        available_memory_ratio: f64 = (0.25) in (0 < x <= 1)
            env "SNAPSHOTTER_AVAILABLE_MEMORY_RATIO";
        /// Where between the overload line and the budget the "critically
        /// overloaded" warning fires: at `r·M + M·(1−r)·reserve_memory_ratio`.
        reserve_memory_ratio: f64 = (0.5) in (0 <= x <= 1)
            env "SNAPSHOTTER_RESERVE_MEMORY_RATIO";
        /// Least time between two "critically overloaded" memory warnings.
        memory_warning_cooldown_period: Duration = (10 s) in (0 ms ..= 24 h)
            env "SNAPSHOTTER_MEMORY_WARNING_COOLDOWN_PERIOD_MS";
        /// Event-loop delay above which a snapshot is overloaded.
        max_event_loop_delay: Duration = (50 ms) in (0 ms ..= 1 h)
            env "SNAPSHOTTER_MAX_EVENT_LOOP_DELAY_MS";
        /// New client errors per client snapshot above which it is overloaded.
        max_client_errors: u64 = (3) in (0 ..= 4_294_967_295)
            env "SNAPSHOTTER_MAX_CLIENT_ERRORS";
        /// Retries a request must already have had before its 429 counts, when the
        /// caller reports attempts.
        client_rate_limit_error_retry_count: u32 = (2) in (0 ..= 1000)
            env "SNAPSHOTTER_CLIENT_RATE_LIMIT_ERROR_RETRY_COUNT";
    }

    /// The thresholds and window of [`SystemStatus`](crate::SystemStatus).
    ///
    /// A resource is overloaded when the time-weighted share of overloaded
    /// snapshots in its window is strictly above its threshold. A
    /// [`Config`] holds one ([`Config::status`]); build one of your own with
    /// [`StatusConfig::builder`].
    ///
    /// ```
    /// use tower_snapshotter::StatusConfig;
    ///
    /// let status = StatusConfig::builder().cpu_overload_threshold(0.5).build()?;
    /// assert_eq!(status.cpu_overload_threshold(), 0.5);
    /// assert!(StatusConfig::builder().client_overload_threshold(2.0).build().is_err());
    /// # Ok::<(), tower_snapshotter::ConfigError>(())
    /// ```
    #[derive(Debug, Clone, Copy, PartialEq)]
    #[cfg_attr(feature = "serde", derive(serde::Serialize))]
    pub struct StatusConfig {
        /// Window of the current status (Crawlee's `max_snapshot_age`); at most
        /// `snapshot_history`.
        max_snapshot_age: Duration = (5 s) in (1 ms ..= 24 h)
            env "SNAPSHOTTER_MAX_SNAPSHOT_AGE_MS";
        /// CPU overload threshold.
        cpu_overload_threshold: f64 = (0.4) in (0 <= x <= 1)
            env "SNAPSHOTTER_CPU_OVERLOAD_THRESHOLD";
        /// Memory overload threshold.
        memory_overload_threshold: f64 = (0.2) in (0 <= x <= 1)
            env "SNAPSHOTTER_MEMORY_OVERLOAD_THRESHOLD";
        /// Event-loop overload threshold.
        event_loop_overload_threshold: f64 = (0.6) in (0 <= x <= 1)
            env "SNAPSHOTTER_EVENT_LOOP_OVERLOAD_THRESHOLD";
        /// Client-error overload threshold.
        client_overload_threshold: f64 = (0.3) in (0 <= x <= 1)
            env "SNAPSHOTTER_CLIENT_OVERLOAD_THRESHOLD";
    }
}

/// Shortest allowed `system_info_interval`: sysinfo's
/// [`MINIMUM_CPU_UPDATE_INTERVAL`](sysinfo::MINIMUM_CPU_UPDATE_INTERVAL)
/// (200 ms on Linux, macOS and Windows, 100 ms on FreeBSD), since sysinfo
/// skips CPU refreshes that come sooner than that after the previous one;
/// never under 1 ms.
pub const MIN_SYSTEM_INFO_INTERVAL: Duration = {
    let sysinfo = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
    if sysinfo.as_nanos() < range::ms(1).as_nanos() {
        range::ms(1)
    } else {
        sysinfo
    }
};

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Checks every rule of the [parameter table](Config#parameters), and
    /// that `snapshot_history` is at least `max_snapshot_age`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_own_ranges()?;
        self.status.validate()?;
        let (history, age) = (self.snapshot_history, self.status.max_snapshot_age);
        if history < age {
            return Err(ConfigError::invalid(
                "snapshot_history",
                format!("{history:?}"),
                format!(
                    "at least max_snapshot_age ({age:?}) ..= {:?}",
                    allowed::snapshot_history.max
                ),
            ));
        }
        Ok(())
    }
}

/// Builds a [`Config`] from Crawlee's defaults; every parameter of the
/// [table](Config#parameters) has a setter.
#[derive(Debug, Clone, Default)]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// Replaces the thresholds and window of the system status (the five
    /// parameters of [`StatusConfig`]) at once.
    pub fn status(mut self, value: StatusConfig) -> Self {
        self.config.status = value;
        self
    }

    /// Checks every rule and returns the configuration, or the first value
    /// that breaks one.
    pub fn build(self) -> Result<Config, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

impl StatusConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> StatusConfigBuilder {
        StatusConfigBuilder::default()
    }
}

/// Builds a [`StatusConfig`] from Crawlee's defaults.
#[derive(Debug, Clone, Default)]
pub struct StatusConfigBuilder {
    status: StatusConfig,
}

impl StatusConfigBuilder {
    /// Checks every range and returns the thresholds, or the first value
    /// out of its range.
    pub fn build(self) -> Result<StatusConfig, ConfigError> {
        self.status.validate()?;
        Ok(self.status)
    }
}

/// Items for this crate's own tests; not part of the public API, and may
/// change in any release.
#[doc(hidden)]
pub mod __private {
    /// Every environment variable and the parameter it sets.
    pub const ENV_VARS: &[(&str, &str)] = super::ENV_VARS;
}
