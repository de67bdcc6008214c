//! Chained setters, written once: `fn name(mut self, value: T) -> Self`
//! that stores `value` at a path inside `self`, each with its own docs.

/// Expands rows of `$(#[doc])* vis name: Type => path.to.field;` into
/// chained setters, or `fields: a: T, …` into const setters of public
/// fields.
macro_rules! setters {
    // `fields: a: T, b: U`: const setters of public fields, documented by
    // a link to the field.
    (fields: $($name:ident : $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!("Sets [`", stringify!($name), "`](Self::", stringify!($name), ").")]
            #[must_use]
            pub const fn $name(mut self, value: $ty) -> Self {
                self.$name = value;
                self
            }
        )*
    };
    ($( $(#[$doc:meta])* $vis:vis $name:ident : $ty:ty => $($path:ident).+ ; )*) => {
        $(
            $(#[$doc])*
            #[must_use]
            $vis fn $name(mut self, value: $ty) -> Self {
                self.$($path).+ = value;
                self
            }
        )*
    };
}

pub(crate) use setters;
