//! [`ConfigError`]: which parameter is wrong, what it held and what is
//! allowed.

use std::fmt;

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
#[non_exhaustive]
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
    pub(super) fn invalid(field: &'static str, value: impl fmt::Display, allowed: impl Into<String>) -> Self {
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
