//! The GCRA fit of sending cycles between `Retry-After` pauses: the rate
//! at which two cycles end at the same excess, whatever the burst, and
//! around it the rates every cycle kept allows (one burst at or above
//! each cycle's peak before its refusal and below each refusal's excess).
//! The fit is their middle; their top is where to confirm it. A cycle's
//! peak rate near its end bounds a fit of it ([`peak_rate`]).
//!
//! Just over 400 lines, a third of them comments: the fit, the burst's
//! bound and the range every cycle allows are one computation.

use std::iter::successors;
use std::time::Duration;

/// The sends the longer of two cycles needs for a fit.
const MIN_SENDS: usize = 8;

/// The excess a GCRA at `rate` holds at the end of a cycle whose send
/// times (seconds, the last at 0) are `log`: the largest number of sends
/// in a trailing interval beyond what the rate allows in it (Lindley's
/// recursion unrolled).
pub(super) fn excess(log: &[f32], rate: f64) -> f64 {
    let n = log.len();
    log.iter()
        .enumerate()
        .map(|(i, &t)| (n - i) as f64 + rate * f64::from(t))
        .fold(f64::MIN, f64::max)
}

/// How many sends over an opening flood's excess a fit's burst may lie:
/// the server may have taken some sent after the refused one.
const FLOOD_ROOM: f64 = 5.0;

/// The largest burst a fit at `rate` may imply after an opening flood
/// (send times up to its refusal): the excess the flood was refused at,
/// and [`FLOOD_ROOM`]. Two cycles can also cross far below a limiter's
/// rate, at a burst the flood rules out. Unbounded without a flood.
pub(super) fn burst_under_flood(flood: Option<&[f32]>, rate: f64) -> f64 {
    flood.map_or(f64::INFINITY, |f| excess(f, rate) - 1.0 + FLOOD_ROOM)
}

/// The fit of two cycles alone (see [`fit_cycles`]).
#[cfg(test)]
pub(super) fn fit(a: &[f32], b: &[f32]) -> Option<f64> {
    crossing(a, b).map(|r| consistent_rates(&[a, b], r).rate)
}

/// The resolution of the rates cycles allow.
const STEP: f64 = 1.005;

/// A fitted rate, and the lowest and highest rates the cycles allow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Fit {
    /// The middle of the rates the cycles allow.
    pub(super) rate: f64,
    /// The lowest of them (`rate` when unbounded).
    pub(super) bottom: f64,
    /// The highest of them (`rate` when unbounded).
    pub(super) top: f64,
    /// How many cycles allow them.
    pub(super) cycles: usize,
}

/// The fit of `latest` with the last of the `earlier` cycles, narrowed by
/// all of them when one GCRA could have ended them all: every pause adds
/// a cycle, and each cycle bounds the rate from one side or the other. A
/// limiter whose rate changed leaves no rate consistent with every cycle,
/// and the two latest stand alone. Cycles too short to cross (a probe
/// refused after a few sends) still narrow the rates around `estimate`;
/// a crossing that all the cycles refute gives way to the nearest rate
/// they allow.
#[cfg(test)]
pub(super) fn fit_cycles(earlier: &[Vec<f32>], latest: &[f32], estimate: f64) -> Option<Fit> {
    fit_cycles_within(earlier, latest, estimate, |_| f64::INFINITY, 1.0)
}

/// [`fit_cycles`], for a limiter whose burst at a rate `r` is known to be
/// at most `max_burst(r)`, with crossings sought up to `reach` times the
/// cycles' average rate (see [`crossings`]).
pub(super) fn fit_cycles_within(
    earlier: &[Vec<f32>],
    latest: &[f32],
    estimate: f64,
    max_burst: impl Fn(f64) -> f64,
    reach: f64,
) -> Option<Fit> {
    let before = earlier.last()?;
    let all: Vec<&[f32]> = earlier
        .iter()
        .map(Vec::as_slice)
        .filter(|log| log.len() >= 2)
        .chain(std::iter::once(latest))
        .collect();
    let crossed = crossing_within(before, latest, max_burst, reach);
    if all.len() > 2 {
        let seeds = [crossed, (estimate > 0.0).then_some(estimate)];
        for seed in seeds.into_iter().flatten() {
            let Some(r) = nearest_consistent(&all, seed) else {
                continue;
            };
            let f = consistent_rates(&all, r);
            if f.top > f.rate {
                return Some(f);
            }
        }
    }
    crossed.map(|r| consistent_rates(&[before, latest], r))
}

/// How close together the rates cycles allow must lie for
/// [`narrow_consistent`] to fit their middle.
const NARROW: f64 = 1.05;

/// The middle of the rates all `cycles` allow with a burst under
/// `max_burst`, when those rates lie within [`NARROW`] of each other;
/// `None` when no rate, or a wide range of them, does.
///
/// For cycles merged from several processes, whose crossing the network
/// moves or hides: each send's time is its sender's, and a few
/// milliseconds of jitter shift the excess at a cycle's end by a send or
/// two, so the curves may miss each other near the rate that every
/// cycle still allows (a search and a held pace that cross nowhere near
/// 500/s allowed 496-500/s and nothing else).
pub(super) fn narrow_consistent(cycles: &[&[f32]], max_burst: impl Fn(f64) -> f64) -> Option<Fit> {
    if cycles.len() < 2 || cycles.iter().map(|c| c.len()).max().unwrap_or(0) < MIN_SENDS {
        return None;
    }
    let top = cycles.iter().map(|l| average_rate(l)).fold(0.0, f64::max);
    // How far apart the most any cycle's sends but its last and the least
    // any cycle's last send filled a GCRA at `r`: a burst fits between
    // them when positive.
    let room = |r: f64| {
        let (peak, end) = peaks_and_ends(cycles, r);
        if peak <= max_burst(r) {
            end - peak
        } else {
            f64::MIN
        }
    };
    // Scan from twice the fastest any cycle was sent at on average (a
    // merged cycle's first sends may straggle) down to a thirty-second of
    // that, coarsely, and finely around the rates that nearly fit: exact
    // cycles leave a range a fraction of a percent wide.
    let coarse = successors(Some(2.0 * top), |r| Some(r / STEP)).take_while(|&r| r > top / 16.0);
    let mut allowed: Vec<f64> = coarse
        .filter(|&r| room(r) > -NEAR)
        .flat_map(|r| successors(Some(r * STEP), |f| Some(f / FINE)).take_while(move |&f| f > r / STEP))
        .filter(|&r| room(r) > 0.0)
        .collect();
    allowed.sort_by(f64::total_cmp);
    allowed.dedup_by(|a, b| (*a / *b) < 1.0 + 1e-9);
    let (&lo, &hi) = (allowed.first()?, allowed.last()?);
    // One range, and a narrow one.
    let gaps = allowed.windows(2).any(|w| w[1] / w[0] > FINE * FINE);
    (!gaps && hi / lo <= NARROW).then_some(Fit {
        rate: 0.5 * (lo + hi),
        bottom: lo,
        top: hi,
        cycles: cycles.len(),
    })
}

/// The resolution of [`narrow_consistent`]'s fine scan, and how little
/// room a coarse step's rate may lack to be scanned finely around (its
/// slope near a fit is a few sends a percent).
const FINE: f64 = 1.0005;
const NEAR: f64 = 4.0;

/// The rate nearest `seed`, within a factor of two, that all `cycles`
/// allow.
fn nearest_consistent(cycles: &[&[f32]], seed: f64) -> Option<f64> {
    let mut step = 1.0;
    while step < 2.0 {
        for r in [seed * step, seed / step] {
            if consistent(cycles, r) {
                return Some(r);
            }
        }
        step *= STEP;
    }
    None
}

/// The rate at which two cycles, each ended by a refusal, leave the same
/// excess: a GCRA or token bucket refuses when its excess passes its
/// burst, so both cycles ended at about the same excess, and the two
/// curves cross (or meet) near the limiter's rate whatever its burst.
/// `None` when the cycles do not tell (the same shape, or no crossing).
#[cfg(test)]
fn crossing(a: &[f32], b: &[f32]) -> Option<f64> {
    crossing_within(a, b, |_| f64::INFINITY, 1.0)
}

/// [`crossing`], skipping crossings whose burst (the excess both cycles
/// end at) passes `max_burst` at their rate. Two cycles of very different
/// shapes (a search, then a pace held past the rate) can cross twice: at
/// the limiter's rate and burst, and far below it, at a burst three times
/// as large that an earlier cycle (a flood refused after 55 sends in a few
/// milliseconds) rules out.
fn crossing_within(a: &[f32], b: &[f32], max_burst: impl Fn(f64) -> f64, reach: f64) -> Option<f64> {
    crossings(a, b, max_burst, reach).first().copied()
}

/// Every rate, lowest first, at which two cycles end at the same excess
/// (see [`crossing_within`]), up to `reach` times the faster cycle's
/// average rate: a single process's cycles start with their first send;
/// a merged one's first sends may straggle, and its average lies under
/// the limiter's rate.
fn crossings(a: &[f32], b: &[f32], max_burst: impl Fn(f64) -> f64, reach: f64) -> Vec<f64> {
    let mut found = Vec::new();
    // A few sends apiece (a host of a few requests a second) leave the
    // crossing to the jitter of one send: one of the two cycles must have
    // some length to it.
    if a.len() < 2 || b.len() < 2 || a.len().max(b.len()) < MIN_SENDS {
        return found;
    }
    let top = reach * average_rate(a).max(average_rate(b));
    let g = |r: f64| excess(a, r) - excess(b, r);
    // Scan a log grid for a strict change of sign, then bisect.
    const STEPS: i32 = 64;
    let at = |i: i32| 0.1 * (top / 0.1).powf(f64::from(i) / f64::from(STEPS));
    // The two curves must be apart enough for a crossing to mean
    // something: a slope difference of at least 50 ms of sending.
    let apart = (f64::from(-a[0]) - f64::from(-b[0])).abs();
    if apart < 0.05 {
        return found;
    }
    // The curves may also meet and run on together (past the rate, both
    // cycles end at the excess of their last bunch of sends): the rate
    // where they meet is where the sign ends.
    let mut prev = (at(0), g(at(0)));
    for i in 1..=STEPS {
        let r = at(i);
        let v = g(r);
        if prev.1 != 0.0 && (v == 0.0 || prev.1.signum() != v.signum()) {
            let (mut lo, mut hi, sign) = (prev.0, r, prev.1.signum());
            for _ in 0..50 {
                let mid = 0.5 * (lo + hi);
                let v = g(mid);
                if v != 0.0 && v.signum() == sign {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let r = 0.5 * (lo + hi);
            if !r.is_finite() {
                return found;
            }
            let fits = ends_at_its_peak(a, r) && ends_at_its_peak(b, r);
            if fits && excess(b, r) - 1.0 <= max_burst(r) {
                found.push(r);
            }
        }
        prev = (r, v);
    }
    found
}

/// The excess a GCRA at `rate` held after each send of `log` but the last
/// (the most of them), and after the last.
fn peak_and_end(log: &[f32], rate: f64) -> (f64, f64) {
    let Some(&first) = log.first() else {
        // No send: no bound at all.
        return (0.0, f64::MAX);
    };
    let mut e = 0.0f64;
    let mut peak = 0.0f64;
    let mut last = f64::from(first);
    for (k, &t) in log.iter().enumerate() {
        let t = f64::from(t);
        e = (e - rate * (t - last)).max(0.0) + 1.0;
        last = t;
        if k + 1 < log.len() {
            peak = peak.max(e);
        }
    }
    (peak, e)
}

/// Whether one GCRA at `rate` could have accepted every send of the
/// cycles but their last ones and refused those: some burst lies at or
/// above every cycle's peak and below every cycle's end.
fn consistent(cycles: &[&[f32]], rate: f64) -> bool {
    let (peak, end) = peaks_and_ends(cycles, rate);
    peak < end
}

/// [`peak_and_end`] of all `cycles`: the highest peak, the lowest end.
fn peaks_and_ends(cycles: &[&[f32]], rate: f64) -> (f64, f64) {
    cycles.iter().fold((f64::MIN, f64::MAX), |(p, e), log| {
        let (lp, le) = peak_and_end(log, rate);
        (p.max(lp), e.min(le))
    })
}

/// A cycle's sends over its length (at least 0.1 ms).
pub(super) fn average_rate(log: &[f32]) -> f64 {
    log.len() as f64 / f64::from(-log.first().copied().unwrap_or(0.0)).max(1e-4)
}

/// The rates around `crossing` that all `cycles` allow: their middle and
/// their top.
///
/// A refusal comes at the first send past the burst, by up to one send's
/// step of excess: a flood's step is nearly a whole request, a slow
/// search's a small part of one. The curves cross where both ends are
/// equal, which is below the rate when the flood overshot more, by as
/// much as a step over the cycles' difference in length (8 % at 20/s
/// with a burst of 10). Every rate in the range is as likely; its middle
/// halves the worst error. Unbounded within a factor of two (curves that
/// run together past the rate), the crossing stands.
fn consistent_rates(cycles: &[&[f32]], crossing: f64) -> Fit {
    let alone = Fit {
        rate: crossing,
        bottom: crossing,
        top: crossing,
        cycles: cycles.len(),
    };
    if !consistent(cycles, crossing) {
        return alone;
    }
    let mut lo = crossing;
    while consistent(cycles, lo / STEP) {
        lo /= STEP;
        if lo < crossing / 2.0 {
            return alone;
        }
    }
    let mut hi = crossing;
    while consistent(cycles, hi * STEP) {
        hi *= STEP;
        if hi > crossing * 2.0 {
            return alone;
        }
    }
    Fit {
        rate: 0.5 * (lo + hi),
        bottom: lo,
        top: hi,
        cycles: cycles.len(),
    }
}

/// Whether a GCRA at `rate` refusing only the last send of `log` is
/// possible: no earlier send may have found it fuller than the last did
/// (beyond the slack of [`SEND_JITTER`]), or it would have been refused
/// then. Sends bunched in waves (a far server's answers come back
/// together, and so go the next requests) fit a low rate whose excess
/// peaks inside the cycle, not at its end.
fn ends_at_its_peak(log: &[f32], rate: f64) -> bool {
    let (peak, end) = peak_and_end(log, rate);
    // The sends that can swap places are those sent within the jitter of
    // each other: counted at the rate the cycle was sent at near its end,
    // or at `rate` if lower. Counted at `rate` alone, a crossing far over
    // a slow search's pace had a slack of several requests, and nginx at
    // 500/s with a burst of one and `Retry-After: 1` fell to 47-77 % of
    // its rate in three of six real-time runs (none of five before).
    let sent_at = rate.min(peak_rate(log));
    peak <= end + (sent_at * SEND_JITTER).max(1.0)
}

/// How far apart two sends may reach the server in the other order
/// (seconds): send times are the client's, not the server's. Requests
/// released within a timer tick of each other, on many connections,
/// arrive in any order, so the refused one may have been sent after some
/// that the server took later. One request of slack, or a tick's worth
/// of sends past a thousand a second: at 2 000/s a search's refused send
/// lay 1.4 to 1.6 requests under its peak at the limiter's rate, every
/// crossing was ruled out, and held cycles cut the pace to 42 % of the
/// rate.
const SEND_JITTER: f64 = 0.001;

/// One step of the rate search (`rate.rs`), which holds one pace that
/// long: the shortest trailing window a cycle's peak rate is read over.
pub(super) const SEARCH_STEP: Duration = Duration::from_millis(100);
/// The earlier cycles a fit reads (each up to 4 096 send times).
pub(super) const CYCLES_KEPT: usize = 3;
/// The intervals a peak rate is read over, at the least.
const PEAK_SENDS: usize = 4;
/// How far above a cycle's peak rate a fit of it may lie.
pub(super) const FIT_OVER_PEAK: f64 = 1.5;

/// The highest rate a cycle (send times, the last at 0) was sent at
/// near its end: the most sends in a trailing window of a search step to
/// a second, the last one left out, over that window. A rate over fewer
/// than [`PEAK_SENDS`] intervals is one interval's jitter, not a rate.
pub(super) fn peak_rate(log: &[f32]) -> f64 {
    peak_rate_over(log, PEAK_SENDS)
}

/// [`peak_rate`] over windows of `min_sends` intervals at least: for a
/// search at a few requests a second, whose paced sends are too few for
/// four intervals in its last second (`rate.rs` reads its last two).
pub(super) fn peak_rate_over(log: &[f32], min_sends: usize) -> f64 {
    let n = log.len();
    let mut peak = 0.0f64;
    for (i, &t) in log.iter().enumerate().rev() {
        let w = f64::from(-t);
        if w > 1.0 {
            break;
        }
        if w >= SEARCH_STEP.as_secs_f64() && n - 1 - i >= min_sends {
            peak = peak.max((n - 1 - i) as f64 / w);
        }
    }
    peak
}

#[cfg(test)]
#[path = "fit_tests.rs"]
mod tests;
