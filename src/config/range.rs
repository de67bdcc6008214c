//! The allowed ranges of the parameter table: each checks a value and says
//! itself in the words an error shows.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::ConfigError;

/// `n` milliseconds (`500 ms` in the table).
pub(super) const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` seconds (`30 s` in the table).
pub(super) const fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `n` hours (`24 h` in the table).
pub(super) const fn h(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

/// A parameter's value as errors show it: durations in `Debug` form
/// (`500ms`), numbers in `Display` form.
pub(super) trait Shown {
    fn show(&self) -> String;
}

impl Shown for Duration {
    fn show(&self) -> String {
        format!("{self:?}")
    }
}

macro_rules! shown_by_display {
    ($($ty:ty),*) => {$(
        impl Shown for $ty {
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
shown_by_display!(f64, u32, u64, usize);

impl<T: Shown> Shown for Option<T> {
    fn show(&self) -> String {
        self.as_ref().map_or_else(|| "unset".to_owned(), T::show)
    }
}

/// The values a parameter of type `T` may take.
pub(super) trait Allowed<T> {
    /// Whether `value` is allowed.
    fn admits(&self, value: &T) -> bool;
    /// The range in words, as errors show it.
    fn describe(&self) -> String;
}

/// `min ..= max` (`1 ms ..= 1 h`, `0 ..= 1000` in the table).
#[derive(Debug, Clone, Copy)]
pub(super) struct Between<T> {
    pub(super) min: T,
    pub(super) max: T,
}

impl<T: Copy + PartialOrd + Shown> Allowed<T> for Between<T> {
    fn admits(&self, value: &T) -> bool {
        RangeInclusive::new(self.min, self.max).contains(value)
    }
    fn describe(&self) -> String {
        format!("{} ..= {}", self.min.show(), self.max.show())
    }
}

/// (0, 1] (`0 < x <= 1` in the table).
#[derive(Debug, Clone, Copy)]
pub(super) struct PositiveRatio;

impl Allowed<f64> for PositiveRatio {
    fn admits(&self, value: &f64) -> bool {
        *value > 0.0 && *value <= 1.0
    }
    fn describe(&self) -> String {
        "(0, 1]".to_owned()
    }
}

/// [0, 1] (`0 <= x <= 1` in the table).
#[derive(Debug, Clone, Copy)]
pub(super) struct Ratio;

impl Allowed<f64> for Ratio {
    fn admits(&self, value: &f64) -> bool {
        (0.0..=1.0).contains(value)
    }
    fn describe(&self) -> String {
        "[0, 1]".to_owned()
    }
}

/// (0, 1) (`0 < x < 1` in a limiter table, see [`super::limiter_table`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct OpenRatio;

impl Allowed<f64> for OpenRatio {
    fn admits(&self, value: &f64) -> bool {
        *value > 0.0 && *value < 1.0
    }
    fn describe(&self) -> String {
        "(0, 1)".to_owned()
    }
}

/// (0, max] (`0 < x <= 1e6` in a limiter table, see
/// [`super::limiter_table`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct PositiveAtMost(pub(super) f64);

impl Allowed<f64> for PositiveAtMost {
    fn admits(&self, value: &f64) -> bool {
        *value > 0.0 && *value <= self.0
    }
    fn describe(&self) -> String {
        format!("(0, {}]", self.0.show())
    }
}

/// A size in bytes within `min ..= max`, or unset (`bytes 1 ..= 1 << 63,
/// or unset` in the table).
#[derive(Debug, Clone, Copy)]
pub(super) struct BytesOrUnset(pub(super) Between<u64>);

impl Allowed<Option<u64>> for BytesOrUnset {
    fn admits(&self, value: &Option<u64>) -> bool {
        value.as_ref().is_none_or(|v| self.0.admits(v))
    }
    fn describe(&self) -> String {
        format!("{} bytes, or unset", self.0.describe())
    }
}

/// `Ok` if `allowed` admits `value`, else the error naming `field`, the value
/// and the range.
pub(super) fn check<T: Shown>(
    field: &'static str,
    value: &T,
    allowed: &impl Allowed<T>,
) -> Result<(), ConfigError> {
    if allowed.admits(value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, value.show(), allowed.describe()))
    }
}
