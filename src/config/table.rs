//! The macro that expands the parameter table in [`super`] into the config
//! structs, their defaults, getters, builder setters, range checks,
//! environment variables and docs.
//!
//! A row of the table reads
//!
//! ```text
//! /// What it does.
//! name: Type = (default) in (allowed range) env "VARIABLE";
//! ```
//!
//! A default is a literal, a duration (`500 ms`, `1 s`, `24 h`) or `unset`
//! (an `Option` left `None`). An allowed range is one of
//!
//! * `1 ms ..= 1 h`, or `CONST ..= 1 h` with a `Duration` constant;
//! * `0 ..= 1000` for whole numbers;
//! * `0 < x <= 1` or `0 <= x <= 1` for ratios;
//! * `bytes 1 ..= 1 << 63, or unset` for an optional size.
//!
//! Each form is read twice by the helper macros below: as a value
//! (`default_value!`, `allowed_value!`) and as words for the docs
//! (`default_text!`, `allowed_text!`), so docs cannot drift from the code.

/// A default, as the table writes it, to its value.
macro_rules! default_value {
    (unset) => {
        None
    };
    ($n:literal $unit:ident) => {
        $crate::config::range::$unit($n)
    };
    ($value:literal) => {
        $value
    };
}

/// A default, as the table writes it, in words.
macro_rules! default_text {
    (unset) => {
        "unset"
    };
    ($n:literal $unit:ident) => {
        concat!(stringify!($n), " ", stringify!($unit))
    };
    ($value:literal) => {
        stringify!($value)
    };
}

/// The type of an allowed range, for the constants in `allowed`.
macro_rules! allowed_type {
    ($ty:ty; 0 < x <= 1) => {
        $crate::config::range::PositiveRatio
    };
    ($ty:ty; 0 <= x <= 1) => {
        $crate::config::range::Ratio
    };
    ($ty:ty; bytes $($rest:tt)+) => {
        $crate::config::range::BytesOrUnset
    };
    ($ty:ty; $($rest:tt)+) => {
        $crate::config::range::Between<$ty>
    };
}

/// An allowed range, as the table writes it, to its value.
macro_rules! allowed_value {
    (0 < x <= 1) => {
        $crate::config::range::PositiveRatio
    };
    (0 <= x <= 1) => {
        $crate::config::range::Ratio
    };
    (bytes $min:literal ..= $max:expr, or unset) => {
        $crate::config::range::BytesOrUnset($crate::config::range::Between { min: $min, max: $max })
    };
    ($min:literal $min_unit:ident ..= $max:literal $max_unit:ident) => {
        $crate::config::range::Between {
            min: $crate::config::range::$min_unit($min),
            max: $crate::config::range::$max_unit($max),
        }
    };
    ($min:ident ..= $max:literal $max_unit:ident) => {
        $crate::config::range::Between {
            min: $min,
            max: $crate::config::range::$max_unit($max),
        }
    };
    ($min:literal ..= $max:literal) => {
        $crate::config::range::Between { min: $min, max: $max }
    };
}

/// An allowed range, as the table writes it, in words.
macro_rules! allowed_text {
    (0 < x <= 1) => {
        "(0, 1]"
    };
    (0 <= x <= 1) => {
        "[0, 1]"
    };
    (bytes $min:literal ..= $max:expr, or unset) => {
        concat!(stringify!($min), " ..= ", stringify!($max), " bytes, or unset")
    };
    ($min:literal $min_unit:ident ..= $max:literal $max_unit:ident) => {
        concat!(default_text!($min $min_unit), " ..= ", default_text!($max $max_unit))
    };
    ($min:ident ..= $max:literal $max_unit:ident) => {
        concat!("[`", stringify!($min), "`] ..= ", default_text!($max $max_unit))
    };
    ($min:literal ..= $max:literal) => {
        concat!(stringify!($min), " ..= ", stringify!($max))
    };
}

/// The line every getter, setter and field of a parameter ends its docs with.
macro_rules! summary {
    (($($default:tt)+) ($($allowed:tt)+) $env:literal) => {
        concat!(
            "Default ", default_text!($($default)+),
            "; allowed ", allowed_text!($($allowed)+),
            "; environment variable `", $env, "`."
        )
    };
}

/// A builder setter of one parameter, documented as the table documents it;
/// it writes `self.$($place.)+$name`.
macro_rules! setter {
    (
        $(#[doc = $doc:literal])*
        $name:ident: $ty:ty = ($($default:tt)+) in ($($allowed:tt)+) env $env:literal
        => self.$($place:ident).+
    ) => {
        $(#[doc = $doc])*
        ///
        #[doc = summary!(($($default)+) ($($allowed)+) $env)]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$($place.)+$name = value;
            self
        }
    };
}

/// One row of the docs' parameter table.
macro_rules! table_row {
    ($owner:ident $name:ident ($($default:tt)+) ($($allowed:tt)+) $env:literal) => {
        concat!(
            "| [`", stringify!($name), "`](", stringify!($owner), "::", stringify!($name), ") | ",
            default_text!($($default)+), " | ", allowed_text!($($allowed)+), " | `", $env, "` |"
        )
    };
}

/// The table: the parameters `Config` holds itself, then those of the
/// `StatusConfig` it holds in `status`.
macro_rules! parameters {
    (
        $(#[$config_meta:meta])*
        pub struct Config {
            $(
                $(#[doc = $c_doc:literal])*
                $c:ident: $c_ty:ty = ($($c_default:tt)+) in ($($c_allowed:tt)+) env $c_env:literal;
            )+
        }

        $(#[$status_meta:meta])*
        pub struct StatusConfig {
            $(
                $(#[doc = $s_doc:literal])*
                $s:ident: $s_ty:ty = ($($s_default:tt)+) in ($($s_allowed:tt)+) env $s_env:literal;
            )+
        }
    ) => {
        $(#[$config_meta])*
        ///
        /// # Parameters
        ///
        /// | parameter | default | allowed | environment variable |
        /// | --- | --- | --- | --- |
        $(#[doc = table_row!(Config $c ($($c_default)+) ($($c_allowed)+) $c_env)])+
        $(#[doc = table_row!(StatusConfig $s ($($s_default)+) ($($s_allowed)+) $s_env)])+
        #[non_exhaustive]
        pub struct Config {
            $($(#[doc = $c_doc])* $c: $c_ty,)+
            status: StatusConfig,
        }

        $(#[$status_meta])*
        #[non_exhaustive]
        pub struct StatusConfig {
            // Read through the getters below: a value changed in place
            // would skip the range checks of the builder.
            $($s: $s_ty,)+
        }

        impl Default for Config {
            fn default() -> Self {
                Self {
                    $($c: default_value!($($c_default)+),)+
                    status: StatusConfig::default(),
                }
            }
        }

        impl Default for StatusConfig {
            fn default() -> Self {
                Self { $($s: default_value!($($s_default)+),)+ }
            }
        }

        /// The allowed range of every parameter, named after it.
        #[allow(non_upper_case_globals)]
        mod allowed {
            use super::*;
            $(pub(super) const $c: allowed_type!($c_ty; $($c_allowed)+) = allowed_value!($($c_allowed)+);)+
            $(pub(super) const $s: allowed_type!($s_ty; $($s_allowed)+) = allowed_value!($($s_allowed)+);)+
        }

        /// Every environment variable and the parameter it sets, in table order.
        const ENV_VARS: &[(&str, &str)] = &[
            $(($c_env, stringify!($c)),)+
            $(($s_env, stringify!($s)),)+
        ];

        impl Config {
            $(
                $(#[doc = $c_doc])*
                ///
                #[doc = summary!(($($c_default)+) ($($c_allowed)+) $c_env)]
                pub fn $c(&self) -> $c_ty {
                    self.$c
                }
            )+

            /// The thresholds and window of the system status.
            pub fn status(&self) -> StatusConfig {
                self.status
            }

            /// Checks the parameters `Config` holds itself against their
            /// ranges, in table order.
            fn check_own_ranges(&self) -> Result<(), ConfigError> {
                $($crate::config::range::check(stringify!($c), &self.$c, &allowed::$c)?;)+
                Ok(())
            }
        }

        impl StatusConfig {
            $(
                $(#[doc = $s_doc])*
                ///
                #[doc = summary!(($($s_default)+) ($($s_allowed)+) $s_env)]
                pub fn $s(&self) -> $s_ty {
                    self.$s
                }
            )+

            /// Checks every field against its allowed range (see the
            /// [parameter table](Config#parameters)), in table order.
            pub fn validate(&self) -> Result<(), ConfigError> {
                $($crate::config::range::check(stringify!($s), &self.$s, &allowed::$s)?;)+
                Ok(())
            }
        }

        impl ConfigBuilder {
            $(setter! {
                $(#[doc = $c_doc])*
                $c: $c_ty = ($($c_default)+) in ($($c_allowed)+) env $c_env => self.config
            })+
            $(setter! {
                $(#[doc = $s_doc])*
                $s: $s_ty = ($($s_default)+) in ($($s_allowed)+) env $s_env => self.config.status
            })+

            /// Applies every variable of the table that `env` finds set, in
            /// table order.
            fn read_env(mut self, env: &$crate::config::env::EnvReader<'_>) -> Result<Self, ConfigError> {
                $(
                    if let Some(value) = env.read::<$c_ty>($c_env, stringify!($c))? {
                        self = self.$c(value);
                    }
                )+
                $(
                    if let Some(value) = env.read::<$s_ty>($s_env, stringify!($s))? {
                        self = self.$s(value);
                    }
                )+
                Ok(self)
            }
        }

        impl StatusConfigBuilder {
            $(setter! {
                $(#[doc = $s_doc])*
                $s: $s_ty = ($($s_default)+) in ($($s_allowed)+) env $s_env => self.status
            })+
        }
    };
}
