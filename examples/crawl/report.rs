//! The table of figures printed on stderr at the end.

use std::fmt::Write as _;

/// Two lines, headers over values, each column as wide as its widest cell.
pub(crate) fn table(columns: &[(&str, String)]) -> String {
    let (mut head, mut values) = (String::new(), String::new());
    for (name, value) in columns {
        let width = name.len().max(value.len());
        let _ = write!(head, "  {name:>width$}");
        let _ = write!(values, "  {value:>width$}");
    }
    format!("{head}\n{values}")
}
