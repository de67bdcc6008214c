//! The macro that expands the settings table of a limiter
//! ([`AdaptiveConfig`](crate::layer::AdaptiveConfig),
//! [`AutoscaleConfig`](crate::layer::AutoscaleConfig)) into the struct with
//! its public fields, [`Default`], the const setters, the docs and the range
//! checks of `validate`: each setting is written once, as one row. These
//! settings have no environment variables, so a row has no `env` column
//! (the crate's own [`Config`](super::Config) has its table in `table.rs`).
//!
//! A table reads
//!
//! ```text
//! limiter_settings! {
//!     /// The struct's docs.
//!     #[derive(Debug, Clone, Copy, PartialEq)]
//!     pub struct Name {
//!         /// What it does.
//!         name: Type = (default) in (allowed range);
//!         /// What it does.
//!         other: Type = (default) in (1 ..= name) by hand;
//!     }
//!
//!     /// What `validate` checks.
//!     pub fn validate(&self, extra: usize) -> Result<(), ConfigError> {
//!         // The rules of the rows `by hand`.
//!         Ok(())
//!     }
//! }
//! ```
//!
//! A default is a literal or a duration (`10 s`, `500 ms`, `1 h`). An
//! allowed range is one of
//!
//! * `1 ms ..= 1 h` for durations;
//! * `1 ..= 1_000_000` for whole numbers, `1.0 ..= 100.0` for floats;
//! * `0 < x <= 1`, `0 < x < 1` or `0 < x <= 1e6` for positive floats.
//!
//! The struct gets `#[non_exhaustive]`, a field `pub name: Type` per row
//! whose docs end with the default and the range in words, a settings table
//! in its docs, [`Default`], a const setter per row and `validate`, whose
//! body first checks every row against its range, in table order, then runs
//! the block written after the table. A row marked `by hand` has a range
//! that names other values (a field, or an argument of `validate`), written
//! `a ..= b` with literals or names: its docs show it, and the block checks
//! it, since no single field's range can.
//!
//! The range checks go through [`super::range::check`], so errors word a
//! range as [`Config`](super::Config)'s do (`1ms ..= 3600s`, `(0, 1]`). The
//! kinds of [`super::range`] are private to this module's parent, and a type
//! the layer's modules cannot name may not even be inferred there, hence the
//! `pub(crate)` faces ([`Between`], [`OpenRatio`],
//! [`PositiveAtMost`]) the generated code builds, each checking through its
//! kind.

use std::time::Duration;

use super::{range, ConfigError};

/// `n` milliseconds (`500 ms` in a table).
pub(crate) const fn ms(n: u64) -> Duration {
    range::ms(n)
}

/// `n` seconds (`10 s` in a table).
pub(crate) const fn s(n: u64) -> Duration {
    range::s(n)
}

/// `n` hours (`1 h` in a table).
pub(crate) const fn h(n: u64) -> Duration {
    range::h(n)
}

/// A range a setting of type `T` is checked against.
pub(crate) trait Rule<T> {
    /// `Ok` if the range admits `value`, else the error naming `field`, the
    /// value and the range.
    fn check(&self, field: &'static str, value: &T) -> Result<(), ConfigError>;
}

/// `min ..= max` (`1 ms ..= 1 h`, `1 ..= 1_000_000`, `1.0 ..= 100.0`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Between<T> {
    pub(crate) min: T,
    pub(crate) max: T,
}

impl<T> Rule<T> for Between<T>
where
    T: Copy + range::Shown,
    range::Between<T>: range::Allowed<T>,
{
    fn check(&self, field: &'static str, value: &T) -> Result<(), ConfigError> {
        let (min, max) = (self.min, self.max);
        range::check(field, value, &range::Between { min, max })
    }
}

/// (0, 1) (`0 < x < 1`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenRatio;

impl Rule<f64> for OpenRatio {
    fn check(&self, field: &'static str, value: &f64) -> Result<(), ConfigError> {
        range::check(field, value, &range::OpenRatio)
    }
}

/// (0, max] (`0 < x <= 1`, `0 < x <= 1e6`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PositiveAtMost(pub(crate) f64);

impl Rule<f64> for PositiveAtMost {
    fn check(&self, field: &'static str, value: &f64) -> Result<(), ConfigError> {
        range::check(field, value, &range::PositiveAtMost(self.0))
    }
}

/// `Ok` if `rule` admits `value`, else the error naming `field`.
pub(crate) fn check<T>(field: &'static str, value: &T, rule: &impl Rule<T>) -> Result<(), ConfigError> {
    rule.check(field, value)
}

/// A default, as a table writes it, to its value.
macro_rules! setting_default {
    ($n:literal $unit:ident) => {
        $crate::config::limiter_table::$unit($n)
    };
    ($value:literal) => {
        $value
    };
}

/// A default, as a table writes it, in words.
macro_rules! default_words {
    ($n:literal $unit:ident) => {
        concat!(stringify!($n), " ", stringify!($unit))
    };
    ($value:literal) => {
        stringify!($value)
    };
}

/// An allowed range, as a table writes it, to the rule that checks it.
macro_rules! setting_rule {
    (0 < x < 1) => {
        $crate::config::limiter_table::OpenRatio
    };
    (0 < x <= $max:literal) => {
        $crate::config::limiter_table::PositiveAtMost($max as f64)
    };
    ($min:literal $min_unit:ident ..= $max:literal $max_unit:ident) => {
        $crate::config::limiter_table::Between {
            min: $crate::config::limiter_table::$min_unit($min),
            max: $crate::config::limiter_table::$max_unit($max),
        }
    };
    ($min:literal ..= $max:literal) => {
        $crate::config::limiter_table::Between { min: $min, max: $max }
    };
}

/// One bound of a range `by hand`: a literal as written, a name in code
/// font.
macro_rules! bound_words {
    ($value:literal) => {
        stringify!($value)
    };
    ($name:ident) => {
        concat!("`", stringify!($name), "`")
    };
}

/// An allowed range, as a table writes it, in words; a range `by hand`
/// also says where it is checked.
macro_rules! range_words {
    ($owner:ident ($min:tt ..= $max:tt) hand) => {
        concat!(
            $crate::config::limiter_table::bound_words!($min),
            " ..= ",
            $crate::config::limiter_table::bound_words!($max),
            ", checked by [`validate`](",
            stringify!($owner),
            "::validate)"
        )
    };
    ($owner:ident (0 < x < 1)) => {
        "(0, 1)"
    };
    ($owner:ident (0 < x <= $max:literal)) => {
        concat!("(0, ", stringify!($max), "]")
    };
    ($owner:ident ($min:literal $min_unit:ident ..= $max:literal $max_unit:ident)) => {
        concat!(
            $crate::config::limiter_table::default_words!($min $min_unit),
            " ..= ",
            $crate::config::limiter_table::default_words!($max $max_unit)
        )
    };
    ($owner:ident ($min:literal ..= $max:literal)) => {
        concat!(stringify!($min), " ..= ", stringify!($max))
    };
}

/// The line every field's docs end with.
macro_rules! setting_summary {
    ($owner:ident ($($default:tt)+) ($($allowed:tt)+) $($hand:ident)?) => {
        concat!(
            "Default ",
            $crate::config::limiter_table::default_words!($($default)+),
            "; allowed ",
            $crate::config::limiter_table::range_words!($owner ($($allowed)+) $($hand)?),
            "."
        )
    };
}

/// One row of the settings table in the struct's docs.
macro_rules! setting_row {
    ($owner:ident $name:ident ($($default:tt)+) ($($allowed:tt)+) $($hand:ident)?) => {
        concat!(
            "| [`", stringify!($name), "`](#structfield.", stringify!($name), ") | ",
            $crate::config::limiter_table::default_words!($($default)+),
            " | ",
            $crate::config::limiter_table::range_words!($owner ($($allowed)+) $($hand)?),
            " |"
        )
    };
}

/// The check of one row in `validate`; none for a row `by hand`.
macro_rules! setting_check {
    ($self:ident . $name:ident ($($allowed:tt)+) hand) => {};
    ($self:ident . $name:ident ($($allowed:tt)+)) => {
        $crate::config::limiter_table::check(
            stringify!($name),
            &$self.$name,
            &$crate::config::limiter_table::setting_rule!($($allowed)+),
        )?
    };
}

/// The table of one limiter's settings (see the module docs).
macro_rules! limiter_settings {
    (
        $(#[$meta:meta])*
        pub struct $owner:ident {
            $(
                $(#[doc = $doc:literal])*
                $name:ident: $ty:ty = ($($default:tt)+) in ($($allowed:tt)+) $(by $hand:ident)?;
            )+
        }

        $(#[$validate_meta:meta])*
        pub fn validate(&$self:ident $(, $arg:ident: $arg_ty:ty)* $(,)?) -> $ret:ty $body:block
    ) => {
        $(#[$meta])*
        ///
        /// # Settings
        ///
        /// | setting | default | allowed |
        /// | --- | --- | --- |
        $(#[doc = $crate::config::limiter_table::setting_row!(
            $owner $name ($($default)+) ($($allowed)+) $($hand)?
        )])+
        #[non_exhaustive]
        pub struct $owner {
            $(
                $(#[doc = $doc])*
                ///
                #[doc = $crate::config::limiter_table::setting_summary!(
                    $owner ($($default)+) ($($allowed)+) $($hand)?
                )]
                pub $name: $ty,
            )+
        }

        impl Default for $owner {
            fn default() -> Self {
                Self {
                    $($name: $crate::config::limiter_table::setting_default!($($default)+),)+
                }
            }
        }

        impl $owner {
            $crate::setters::setters!(fields: $($name: $ty),+);

            $(#[$validate_meta])*
            pub fn validate(&$self $(, $arg: $arg_ty)*) -> $ret {
                $($crate::config::limiter_table::setting_check!($self.$name ($($allowed)+) $($hand)?);)+
                $body
            }
        }
    };
}

pub(crate) use {
    bound_words, default_words, limiter_settings, range_words, setting_check, setting_default, setting_row,
    setting_rule, setting_summary,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_as_the_table_writes_them() {
        assert_eq!(
            setting_summary!(AutoscaleConfig (10 s) (1 ms ..= 1 h)),
            "Default 10 s; allowed 1 ms ..= 1 h."
        );
        assert_eq!(
            setting_summary!(AdaptiveConfig (0.8) (0 < x < 1)),
            "Default 0.8; allowed (0, 1)."
        );
        assert_eq!(
            setting_summary!(AdaptiveConfig (4) (1 ..= max_concurrency) hand),
            "Default 4; allowed 1 ..= `max_concurrency`, checked by \
             [`validate`](AdaptiveConfig::validate)."
        );
    }

    #[test]
    fn errors_as_config_words_them() {
        let allowed = |result: Result<(), ConfigError>| result.unwrap_err().allowed().to_owned();
        assert_eq!(
            allowed(check("d", &Duration::ZERO, &setting_rule!(1 ms ..= 1 h))),
            "1ms ..= 3600s"
        );
        assert_eq!(
            allowed(check("n", &0_usize, &setting_rule!(1..=1_000_000))),
            "1 ..= 1000000"
        );
        assert_eq!(
            allowed(check("f", &0.5, &setting_rule!(1.0..=100.0))),
            "1 ..= 100"
        );
        assert_eq!(allowed(check("r", &0.0, &setting_rule!(0 < x <= 1))), "(0, 1]");
        assert_eq!(allowed(check("r", &1.0, &setting_rule!(0 < x < 1))), "(0, 1)");
        assert_eq!(
            allowed(check("r", &f64::NAN, &setting_rule!(0 < x <= 1e6))),
            "(0, 1000000]"
        );
        assert!(check("r", &1e6, &setting_rule!(0 < x <= 1e6)).is_ok());
    }
}
