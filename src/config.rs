//! Configuration of the [`Snapshotter`](crate::Snapshotter) and of
//! [`SystemStatus`](crate::SystemStatus): every parameter of Crawlee's, with
//! Crawlee's defaults, validated.
//!
//! | parameter | default | allowed | environment variable |
//! | --- | --- | --- | --- |
//! | `event_loop_snapshot_interval` | 500 ms | 1 ms ..= 1 h | `SNAPSHOTTER_EVENT_LOOP_SNAPSHOT_INTERVAL_MS` |
//! | `client_snapshot_interval` | 1 s | 1 ms ..= 1 h | `SNAPSHOTTER_CLIENT_SNAPSHOT_INTERVAL_MS` |
//! | `system_info_interval` | 1 s | 200 ms ..= 1 h | `SNAPSHOTTER_SYSTEM_INFO_INTERVAL_MS` |
//! | `snapshot_history` | 30 s | `max_snapshot_age` ..= 24 h | `SNAPSHOTTER_SNAPSHOT_HISTORY_MS` |
//! | `max_used_cpu_ratio` | 0.95 | (0, 1] | `SNAPSHOTTER_MAX_USED_CPU_RATIO` |
//! | `max_used_memory_ratio` | 0.9 | (0, 1] | `SNAPSHOTTER_MAX_USED_MEMORY_RATIO` |
//! | `max_memory_size` | unset | 1 ..= 2⁶³ bytes | `SNAPSHOTTER_MAX_MEMORY_SIZE` (bytes) |
//! | `available_memory_ratio` | 0.25 | (0, 1] | `SNAPSHOTTER_AVAILABLE_MEMORY_RATIO` |
//! | `reserve_memory_ratio` | 0.5 | [0, 1] | `SNAPSHOTTER_RESERVE_MEMORY_RATIO` |
//! | `memory_warning_cooldown_period` | 10 s | 0 ..= 24 h | `SNAPSHOTTER_MEMORY_WARNING_COOLDOWN_PERIOD_MS` |
//! | `max_event_loop_delay` | 50 ms | 0 ..= 1 h | `SNAPSHOTTER_MAX_EVENT_LOOP_DELAY_MS` |
//! | `max_client_errors` | 3 | 0 ..= 4294967295 | `SNAPSHOTTER_MAX_CLIENT_ERRORS` |
//! | `client_rate_limit_error_retry_count` | 2 | 0 ..= 1000 | `SNAPSHOTTER_CLIENT_RATE_LIMIT_ERROR_RETRY_COUNT` |
//! | `max_snapshot_age` | 5 s | 1 ms ..= `snapshot_history` | `SNAPSHOTTER_MAX_SNAPSHOT_AGE_MS` |
//! | `cpu_overload_threshold` | 0.4 | [0, 1] | `SNAPSHOTTER_CPU_OVERLOAD_THRESHOLD` |
//! | `memory_overload_threshold` | 0.2 | [0, 1] | `SNAPSHOTTER_MEMORY_OVERLOAD_THRESHOLD` |
//! | `event_loop_overload_threshold` | 0.6 | [0, 1] | `SNAPSHOTTER_EVENT_LOOP_OVERLOAD_THRESHOLD` |
//! | `client_overload_threshold` | 0.3 | [0, 1] | `SNAPSHOTTER_CLIENT_OVERLOAD_THRESHOLD` |
//!
//! Durations in the environment are whole milliseconds; ratios are decimal
//! numbers; sizes are whole bytes.
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

use std::fmt;
use std::time::Duration;

/// A configuration value outside its allowed range, or an environment
/// variable that could not be read.
///
/// ```
/// use tower_snapshotter::Config;
///
/// let err = Config::builder().max_used_cpu_ratio(1.5).build().unwrap_err();
/// assert_eq!(err.field(), "max_used_cpu_ratio");
/// assert_eq!(err.to_string(), "invalid `max_used_cpu_ratio` = 1.5: allowed (0, 1]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A parameter is outside its allowed range.
    Invalid {
        /// The parameter's name, as in the builder.
        field: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// The allowed range, in words.
        allowed: String,
    },
    /// An environment variable holds something that is not a value of the
    /// expected form, or a value outside the allowed range.
    Env {
        /// The variable's name.
        variable: &'static str,
        /// The parameter it sets.
        field: &'static str,
        /// What the variable held (lossy for non-UTF-8 bytes).
        value: String,
        /// What was expected.
        expected: String,
    },
}

impl ConfigError {
    fn invalid(field: &'static str, value: impl fmt::Display, allowed: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    /// The parameter the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Invalid { field, .. } | Self::Env { field, .. } => field,
        }
    }

    /// The allowed range or form, in words.
    pub fn allowed(&self) -> &str {
        match self {
            Self::Invalid { allowed, .. } => allowed,
            Self::Env { expected, .. } => expected,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid {
                field,
                value,
                allowed,
            } => {
                write!(f, "invalid `{field}` = {value}: allowed {allowed}")
            }
            Self::Env {
                variable,
                field,
                value,
                expected,
            } => write!(
                f,
                "environment variable {variable}={value:?} (sets `{field}`): expected {expected}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The thresholds and window of [`SystemStatus`](crate::SystemStatus).
///
/// A resource is overloaded when the time-weighted share of overloaded
/// snapshots in its window is strictly above its threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StatusConfig {
    /// Window of the current status (Crawlee's `max_snapshot_age`, 5 s).
    pub max_snapshot_age: Duration,
    /// CPU threshold (0.4).
    pub cpu_overload_threshold: f64,
    /// Memory threshold (0.2).
    pub memory_overload_threshold: f64,
    /// Event-loop threshold (0.6).
    pub event_loop_overload_threshold: f64,
    /// Client-error threshold (0.3).
    pub client_overload_threshold: f64,
}

impl Default for StatusConfig {
    fn default() -> Self {
        Self {
            max_snapshot_age: Duration::from_secs(5),
            cpu_overload_threshold: 0.4,
            memory_overload_threshold: 0.2,
            event_loop_overload_threshold: 0.6,
            client_overload_threshold: 0.3,
        }
    }
}

impl StatusConfig {
    /// Checks every threshold is in [0, 1] and the window is 1 ms ..= 24 h.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_duration(
            "max_snapshot_age",
            self.max_snapshot_age,
            MIN_INTERVAL,
            MAX_HISTORY,
        )?;
        check_unit("cpu_overload_threshold", self.cpu_overload_threshold)?;
        check_unit("memory_overload_threshold", self.memory_overload_threshold)?;
        check_unit(
            "event_loop_overload_threshold",
            self.event_loop_overload_threshold,
        )?;
        check_unit("client_overload_threshold", self.client_overload_threshold)
    }
}

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
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Config {
    event_loop_snapshot_interval: Duration,
    client_snapshot_interval: Duration,
    system_info_interval: Duration,
    snapshot_history: Duration,
    max_used_cpu_ratio: f64,
    max_used_memory_ratio: f64,
    max_memory_size: Option<u64>,
    available_memory_ratio: f64,
    reserve_memory_ratio: f64,
    memory_warning_cooldown_period: Duration,
    max_event_loop_delay: Duration,
    max_client_errors: u64,
    client_rate_limit_error_retry_count: u32,
    status: StatusConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            event_loop_snapshot_interval: Duration::from_millis(500),
            client_snapshot_interval: Duration::from_secs(1),
            system_info_interval: Duration::from_secs(1),
            snapshot_history: Duration::from_secs(30),
            max_used_cpu_ratio: 0.95,
            max_used_memory_ratio: 0.9,
            max_memory_size: None,
            available_memory_ratio: 0.25,
            reserve_memory_ratio: 0.5,
            memory_warning_cooldown_period: Duration::from_secs(10),
            max_event_loop_delay: Duration::from_millis(50),
            max_client_errors: 3,
            client_rate_limit_error_retry_count: 2,
            status: StatusConfig::default(),
        }
    }
}

const MIN_INTERVAL: Duration = Duration::from_millis(1);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
const MAX_HISTORY: Duration = Duration::from_secs(24 * 3600);
const MAX_MEMORY_SIZE: u64 = 1 << 63;
const MAX_RETRY_COUNT: u32 = 1000;

/// Shortest allowed `system_info_interval`: sysinfo skips CPU refreshes that
/// come sooner than this after the previous one.
pub const MIN_SYSTEM_INFO_INTERVAL: Duration = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;

fn range_text(min: Duration, max: Duration) -> String {
    format!("{min:?} ..= {max:?}")
}

fn check_duration(field: &'static str, v: Duration, min: Duration, max: Duration) -> Result<(), ConfigError> {
    if v < min || v > max {
        return Err(ConfigError::invalid(
            field,
            format!("{v:?}"),
            range_text(min, max),
        ));
    }
    Ok(())
}

/// (0, 1]
fn check_ratio(field: &'static str, v: f64) -> Result<(), ConfigError> {
    if !(v > 0.0 && v <= 1.0) {
        return Err(ConfigError::invalid(field, v, "(0, 1]"));
    }
    Ok(())
}

/// [0, 1]
fn check_unit(field: &'static str, v: f64) -> Result<(), ConfigError> {
    if !(0.0..=1.0).contains(&v) {
        return Err(ConfigError::invalid(field, v, "[0, 1]"));
    }
    Ok(())
}

macro_rules! getters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        impl Config {
            $($(#[$doc])* pub fn $name(&self) -> $ty { self.$name })*
        }
        impl ConfigBuilder {
            $($(#[$doc])* pub fn $name(mut self, value: $ty) -> Self { self.config.$name = value; self })*
        }
    };
}

getters! {
    /// How often the event-loop probe wakes (500 ms).
    event_loop_snapshot_interval: Duration;
    /// How often a client snapshot is taken (1 s).
    client_snapshot_interval: Duration;
    /// How often CPU and memory are sampled (1 s).
    system_info_interval: Duration;
    /// How much history each window keeps, back from its newest snapshot (30 s).
    snapshot_history: Duration;
    /// CPU share above which a CPU snapshot is overloaded (0.95).
    max_used_cpu_ratio: f64;
    /// Share of `max_memory_size` above which a memory snapshot is overloaded (0.9).
    max_used_memory_ratio: f64;
    /// A fixed memory budget in bytes; `None` (the default) derives it from the
    /// applicable memory limit on every sample.
    max_memory_size: Option<u64>;
    /// Share of the applicable memory limit used as the budget when
    /// `max_memory_size` is unset (0.25).
    available_memory_ratio: f64;
    /// Where between the overload line and the budget the "critically
    /// overloaded" warning fires: at `r·M + M·(1−r)·reserve_memory_ratio` (0.5).
    reserve_memory_ratio: f64;
    /// Least time between two "critically overloaded" memory warnings (10 s).
    memory_warning_cooldown_period: Duration;
    /// Event-loop delay above which a snapshot is overloaded (50 ms).
    max_event_loop_delay: Duration;
    /// New client errors per client snapshot above which it is overloaded (3).
    max_client_errors: u64;
    /// Retries a request must already have had before its 429 counts, when the
    /// caller reports attempts (2).
    client_rate_limit_error_retry_count: u32;
    /// Thresholds and window of the system status.
    status: StatusConfig;
}

impl ConfigBuilder {
    /// Window of the current status (5 s).
    pub fn max_snapshot_age(mut self, value: Duration) -> Self {
        self.config.status.max_snapshot_age = value;
        self
    }
    /// CPU overload threshold (0.4).
    pub fn cpu_overload_threshold(mut self, value: f64) -> Self {
        self.config.status.cpu_overload_threshold = value;
        self
    }
    /// Memory overload threshold (0.2).
    pub fn memory_overload_threshold(mut self, value: f64) -> Self {
        self.config.status.memory_overload_threshold = value;
        self
    }
    /// Event-loop overload threshold (0.6).
    pub fn event_loop_overload_threshold(mut self, value: f64) -> Self {
        self.config.status.event_loop_overload_threshold = value;
        self
    }
    /// Client overload threshold (0.3).
    pub fn client_overload_threshold(mut self, value: f64) -> Self {
        self.config.status.client_overload_threshold = value;
        self
    }

    /// Checks every rule and returns the configuration, or the first value
    /// that breaks one.
    pub fn build(self) -> Result<Config, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

/// Builds a [`Config`] from Crawlee's defaults; see the [module docs](self)
/// for every parameter.
#[derive(Debug, Clone, Default)]
pub struct ConfigBuilder {
    config: Config,
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Checks every rule of the [module table](self).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_duration(
            "event_loop_snapshot_interval",
            self.event_loop_snapshot_interval,
            MIN_INTERVAL,
            MAX_INTERVAL,
        )?;
        check_duration(
            "client_snapshot_interval",
            self.client_snapshot_interval,
            MIN_INTERVAL,
            MAX_INTERVAL,
        )?;
        check_duration(
            "system_info_interval",
            self.system_info_interval,
            MIN_SYSTEM_INFO_INTERVAL,
            MAX_INTERVAL,
        )?;
        check_duration(
            "snapshot_history",
            self.snapshot_history,
            MIN_INTERVAL,
            MAX_HISTORY,
        )?;
        check_ratio("max_used_cpu_ratio", self.max_used_cpu_ratio)?;
        check_ratio("max_used_memory_ratio", self.max_used_memory_ratio)?;
        if let Some(size) = self.max_memory_size {
            if size == 0 || size > MAX_MEMORY_SIZE {
                return Err(ConfigError::invalid(
                    "max_memory_size",
                    size,
                    format!("1 ..= {MAX_MEMORY_SIZE} bytes, or unset"),
                ));
            }
        }
        check_ratio("available_memory_ratio", self.available_memory_ratio)?;
        check_unit("reserve_memory_ratio", self.reserve_memory_ratio)?;
        check_duration(
            "memory_warning_cooldown_period",
            self.memory_warning_cooldown_period,
            Duration::ZERO,
            MAX_HISTORY,
        )?;
        check_duration(
            "max_event_loop_delay",
            self.max_event_loop_delay,
            Duration::ZERO,
            MAX_INTERVAL,
        )?;
        if self.client_rate_limit_error_retry_count > MAX_RETRY_COUNT {
            return Err(ConfigError::invalid(
                "client_rate_limit_error_retry_count",
                self.client_rate_limit_error_retry_count,
                format!("0 ..= {MAX_RETRY_COUNT}"),
            ));
        }
        if self.max_client_errors > u64::from(u32::MAX) {
            return Err(ConfigError::invalid(
                "max_client_errors",
                self.max_client_errors,
                format!("0 ..= {}", u32::MAX),
            ));
        }
        self.status.validate()?;
        if self.snapshot_history < self.status.max_snapshot_age {
            return Err(ConfigError::invalid(
                "snapshot_history",
                format!("{:?}", self.snapshot_history),
                format!(
                    "at least max_snapshot_age ({:?}) ..= {MAX_HISTORY:?}",
                    self.status.max_snapshot_age
                ),
            ));
        }
        Ok(())
    }

    /// The defaults, overridden by every `SNAPSHOTTER_*` variable that is set
    /// (see the [module table](self)), then validated.
    ///
    /// A variable that is set but malformed, or out of range, is an error
    /// naming it; it is never ignored.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// As [`from_env`](Self::from_env), reading variables through `lookup`
    /// (for tests and for callers with their own source of settings).
    ///
    /// ```
    /// use tower_snapshotter::Config;
    ///
    /// let err = Config::from_lookup(|name| {
    ///     (name == "SNAPSHOTTER_MAX_USED_CPU_RATIO").then(|| "lots".into())
    /// })
    /// .unwrap_err();
    /// assert!(err.to_string().contains("SNAPSHOTTER_MAX_USED_CPU_RATIO"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Config, ConfigError> {
        let mut b = Config::builder();
        let env = EnvReader { lookup: &lookup };
        macro_rules! read {
            ($var:literal, $field:literal, $parse:ident, $set:ident) => {
                if let Some(v) = env.$parse($var, $field)? {
                    b = b.$set(v);
                }
            };
        }
        read!(
            "SNAPSHOTTER_EVENT_LOOP_SNAPSHOT_INTERVAL_MS",
            "event_loop_snapshot_interval",
            millis,
            event_loop_snapshot_interval
        );
        read!(
            "SNAPSHOTTER_CLIENT_SNAPSHOT_INTERVAL_MS",
            "client_snapshot_interval",
            millis,
            client_snapshot_interval
        );
        read!(
            "SNAPSHOTTER_SYSTEM_INFO_INTERVAL_MS",
            "system_info_interval",
            millis,
            system_info_interval
        );
        read!(
            "SNAPSHOTTER_SNAPSHOT_HISTORY_MS",
            "snapshot_history",
            millis,
            snapshot_history
        );
        read!(
            "SNAPSHOTTER_MAX_USED_CPU_RATIO",
            "max_used_cpu_ratio",
            float,
            max_used_cpu_ratio
        );
        read!(
            "SNAPSHOTTER_MAX_USED_MEMORY_RATIO",
            "max_used_memory_ratio",
            float,
            max_used_memory_ratio
        );
        if let Some(v) = env.integer::<u64>("SNAPSHOTTER_MAX_MEMORY_SIZE", "max_memory_size")? {
            b = b.max_memory_size(Some(v));
        }
        read!(
            "SNAPSHOTTER_AVAILABLE_MEMORY_RATIO",
            "available_memory_ratio",
            float,
            available_memory_ratio
        );
        read!(
            "SNAPSHOTTER_RESERVE_MEMORY_RATIO",
            "reserve_memory_ratio",
            float,
            reserve_memory_ratio
        );
        read!(
            "SNAPSHOTTER_MEMORY_WARNING_COOLDOWN_PERIOD_MS",
            "memory_warning_cooldown_period",
            millis,
            memory_warning_cooldown_period
        );
        read!(
            "SNAPSHOTTER_MAX_EVENT_LOOP_DELAY_MS",
            "max_event_loop_delay",
            millis,
            max_event_loop_delay
        );
        read!(
            "SNAPSHOTTER_MAX_CLIENT_ERRORS",
            "max_client_errors",
            integer,
            max_client_errors
        );
        read!(
            "SNAPSHOTTER_CLIENT_RATE_LIMIT_ERROR_RETRY_COUNT",
            "client_rate_limit_error_retry_count",
            integer,
            client_rate_limit_error_retry_count
        );
        read!(
            "SNAPSHOTTER_MAX_SNAPSHOT_AGE_MS",
            "max_snapshot_age",
            millis,
            max_snapshot_age
        );
        read!(
            "SNAPSHOTTER_CPU_OVERLOAD_THRESHOLD",
            "cpu_overload_threshold",
            float,
            cpu_overload_threshold
        );
        read!(
            "SNAPSHOTTER_MEMORY_OVERLOAD_THRESHOLD",
            "memory_overload_threshold",
            float,
            memory_overload_threshold
        );
        read!(
            "SNAPSHOTTER_EVENT_LOOP_OVERLOAD_THRESHOLD",
            "event_loop_overload_threshold",
            float,
            event_loop_overload_threshold
        );
        read!(
            "SNAPSHOTTER_CLIENT_OVERLOAD_THRESHOLD",
            "client_overload_threshold",
            float,
            client_overload_threshold
        );
        b.build().map_err(|e| env.blame(e))
    }
}

/// Reads and parses variables, remembering which were set so that a range
/// error can name the variable that caused it.
struct EnvReader<'a, L> {
    lookup: &'a L,
}

impl<L: Fn(&str) -> Option<std::ffi::OsString>> EnvReader<'_, L> {
    fn raw(
        &self,
        var: &'static str,
        field: &'static str,
        expected: &str,
    ) -> Result<Option<String>, ConfigError> {
        match (self.lookup)(var) {
            None => Ok(None),
            Some(os) => match os.into_string() {
                Ok(s) => Ok(Some(s.trim().to_owned())),
                Err(os) => Err(ConfigError::Env {
                    variable: var,
                    field,
                    value: os.to_string_lossy().into_owned(),
                    expected: format!("{expected} (in UTF-8)"),
                }),
            },
        }
    }

    fn parsed<T: std::str::FromStr>(
        &self,
        var: &'static str,
        field: &'static str,
        expected: &str,
    ) -> Result<Option<T>, ConfigError> {
        let Some(s) = self.raw(var, field, expected)? else {
            return Ok(None);
        };
        s.parse().map(Some).map_err(|_| ConfigError::Env {
            variable: var,
            field,
            value: s,
            expected: expected.to_owned(),
        })
    }

    fn millis(&self, var: &'static str, field: &'static str) -> Result<Option<Duration>, ConfigError> {
        Ok(self
            .parsed::<u64>(var, field, "a whole number of milliseconds")?
            .map(Duration::from_millis))
    }

    fn float(&self, var: &'static str, field: &'static str) -> Result<Option<f64>, ConfigError> {
        self.parsed(var, field, "a decimal number")
    }

    fn integer<T: std::str::FromStr>(
        &self,
        var: &'static str,
        field: &'static str,
    ) -> Result<Option<T>, ConfigError> {
        self.parsed(var, field, "a non-negative whole number")
    }

    /// Turns a range error on a field set from a variable into one naming
    /// the variable.
    fn blame(&self, err: ConfigError) -> ConfigError {
        let ConfigError::Invalid {
            field,
            value,
            allowed,
        } = &err
        else {
            return err;
        };
        let variable = ENV_VARS.iter().find(|(_, f)| f == field).map(|(v, _)| *v);
        match variable {
            Some(variable) if (self.lookup)(variable).is_some() => ConfigError::Env {
                variable,
                field,
                value: (self.lookup)(variable)
                    .map(|v| v.to_string_lossy().into_owned())
                    .unwrap_or_else(|| value.clone()),
                expected: allowed.clone(),
            },
            _ => err,
        }
    }
}

/// Every environment variable and the parameter it sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    (
        "SNAPSHOTTER_EVENT_LOOP_SNAPSHOT_INTERVAL_MS",
        "event_loop_snapshot_interval",
    ),
    (
        "SNAPSHOTTER_CLIENT_SNAPSHOT_INTERVAL_MS",
        "client_snapshot_interval",
    ),
    ("SNAPSHOTTER_SYSTEM_INFO_INTERVAL_MS", "system_info_interval"),
    ("SNAPSHOTTER_SNAPSHOT_HISTORY_MS", "snapshot_history"),
    ("SNAPSHOTTER_MAX_USED_CPU_RATIO", "max_used_cpu_ratio"),
    ("SNAPSHOTTER_MAX_USED_MEMORY_RATIO", "max_used_memory_ratio"),
    ("SNAPSHOTTER_MAX_MEMORY_SIZE", "max_memory_size"),
    ("SNAPSHOTTER_AVAILABLE_MEMORY_RATIO", "available_memory_ratio"),
    ("SNAPSHOTTER_RESERVE_MEMORY_RATIO", "reserve_memory_ratio"),
    (
        "SNAPSHOTTER_MEMORY_WARNING_COOLDOWN_PERIOD_MS",
        "memory_warning_cooldown_period",
    ),
    ("SNAPSHOTTER_MAX_EVENT_LOOP_DELAY_MS", "max_event_loop_delay"),
    ("SNAPSHOTTER_MAX_CLIENT_ERRORS", "max_client_errors"),
    (
        "SNAPSHOTTER_CLIENT_RATE_LIMIT_ERROR_RETRY_COUNT",
        "client_rate_limit_error_retry_count",
    ),
    ("SNAPSHOTTER_MAX_SNAPSHOT_AGE_MS", "max_snapshot_age"),
    ("SNAPSHOTTER_CPU_OVERLOAD_THRESHOLD", "cpu_overload_threshold"),
    (
        "SNAPSHOTTER_MEMORY_OVERLOAD_THRESHOLD",
        "memory_overload_threshold",
    ),
    (
        "SNAPSHOTTER_EVENT_LOOP_OVERLOAD_THRESHOLD",
        "event_loop_overload_threshold",
    ),
    (
        "SNAPSHOTTER_CLIENT_OVERLOAD_THRESHOLD",
        "client_overload_threshold",
    ),
];
