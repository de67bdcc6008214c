//! Reading the `SNAPSHOTTER_*` environment variables of the parameter table:
//! how each type is written in a variable, and errors that name the
//! variable.

use std::ffi::OsString;
use std::time::Duration;

use super::{Config, ConfigError, ENV_VARS};

/// How a parameter's type is written in an environment variable.
pub(super) trait EnvValue: Sized {
    /// The form, in words, for errors.
    const EXPECTED: &'static str;
    /// The value `text` (already trimmed) stands for, if it is of the form.
    fn parse_env(text: &str) -> Option<Self>;
}

/// Durations are whole milliseconds.
impl EnvValue for Duration {
    const EXPECTED: &'static str = "a whole number of milliseconds";
    fn parse_env(text: &str) -> Option<Self> {
        text.parse().ok().map(Duration::from_millis)
    }
}

/// Ratios and thresholds are decimal numbers.
impl EnvValue for f64 {
    const EXPECTED: &'static str = "a decimal number";
    fn parse_env(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

macro_rules! whole_numbers {
    ($($ty:ty),*) => {$(
        /// Counts and sizes are whole numbers.
        impl EnvValue for $ty {
            const EXPECTED: &'static str = "a non-negative whole number";
            fn parse_env(text: &str) -> Option<Self> {
                text.parse().ok()
            }
        }
    )*};
}
whole_numbers!(u32, u64);

/// A variable that is set sets the value; unset leaves the default.
impl<T: EnvValue> EnvValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;
    fn parse_env(text: &str) -> Option<Self> {
        T::parse_env(text).map(Some)
    }
}

/// Reads and parses variables through a lookup, and blames range errors on
/// the variable that caused them.
pub(super) struct EnvReader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<OsString>,
}

impl EnvReader<'_> {
    /// The value of `variable` (which sets `field`), `None` when unset.
    pub(super) fn read<T: EnvValue>(
        &self,
        variable: &'static str,
        field: &'static str,
    ) -> Result<Option<T>, ConfigError> {
        let Some(raw) = (self.lookup)(variable) else {
            return Ok(None);
        };
        let text = raw.into_string().map_err(|raw| ConfigError::Env {
            variable,
            field,
            value: raw.to_string_lossy().into_owned(),
            expected: format!("{} (in UTF-8)", T::EXPECTED),
        })?;
        let text = text.trim();
        match T::parse_env(text) {
            Some(value) => Ok(Some(value)),
            None => Err(ConfigError::Env {
                variable,
                field,
                value: text.to_owned(),
                expected: T::EXPECTED.to_owned(),
            }),
        }
    }

    /// Turns a range error on a field set from a variable into one naming
    /// the variable.
    fn blame(&self, err: ConfigError) -> ConfigError {
        let ConfigError::Invalid { field, allowed, .. } = &err else {
            return err;
        };
        let Some(&(variable, _)) = ENV_VARS.iter().find(|(_, f)| f == field) else {
            return err;
        };
        match (self.lookup)(variable) {
            Some(raw) => ConfigError::Env {
                variable,
                field,
                value: raw.to_string_lossy().into_owned(),
                expected: allowed.clone(),
            },
            None => err,
        }
    }
}

impl Config {
    /// The defaults, overridden by every `SNAPSHOTTER_*` variable that is set
    /// (see the [parameter table](Config#parameters)), then validated.
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
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Config, ConfigError> {
        let env = EnvReader { lookup: &lookup };
        Config::builder()
            .read_env(&env)?
            .build()
            .map_err(|e| env.blame(e))
    }
}
