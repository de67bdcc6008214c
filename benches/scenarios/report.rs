//! The table of scenarios 1–8: a row printed to stdout and appended to
//! `target/scenarios.jsonl`, and the helpers their plots share.

use std::io::Write as _;

use crate::load::{Answer, Record};
use crate::plots::Series;

// ---------------------------------------------------------------- report

pub(crate) struct Row {
    pub(crate) scenario: &'static str,
    pub(crate) variant: String,
    pub(crate) goodput: String,
    pub(crate) share_429: String,
    pub(crate) react: String,
    pub(crate) recover: String,
    pub(crate) note: String,
}

pub(crate) fn shown(v: Option<f64>) -> String {
    v.map_or("never".into(), |s| format!("{s:.1} s"))
}

pub(crate) fn print_row(r: &Row) {
    println!(
        "| {} | {} | {} | {} | {} | {} | {} |",
        r.scenario, r.variant, r.goodput, r.share_429, r.react, r.recover, r.note
    );
    let _ = std::io::stdout().flush();
    let json = format!(
        "{{\"scenario\":{:?},\"variant\":{:?},\"goodput\":{:?},\"share_429\":{:?},\"react\":{:?},\"recover\":{:?},\"note\":{:?}}}\n",
        r.scenario, r.variant, r.goodput, r.share_429, r.react, r.recover, r.note
    );
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("target/scenarios.jsonl")
    {
        let _ = f.write_all(json.as_bytes());
    }
}

pub(crate) fn answers(r: &Record) -> Vec<Answer> {
    r.answers.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// How the plots of scenarios 1–4 and 7 count, as their tables do.
pub(crate) const CLIENT_SIDE: &str = "counted at the client, by when each answer came";

/// The answers `keep` selects, per 250 ms bucket of when each came back
/// to the client.
pub(crate) fn series(answers: &[Answer], keep: impl Fn(&Answer) -> bool) -> Series {
    let mut s = Series::default();
    for a in answers.iter().filter(|a| keep(a)) {
        s.add(a.at, a.status);
    }
    s
}

/// A constant reference line over `secs` (clipped to the plot's width).
pub(crate) fn flat(label: String, rate: f64, secs: f64) -> Option<(String, Vec<(f64, f64)>)> {
    Some((label, vec![(0.0, rate), (secs, rate)]))
}
