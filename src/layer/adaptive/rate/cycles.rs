//! The cycles between `Retry-After` pauses: each pause ends one, and
//! their GCRA fit (`fit.rs`) or the search's peak sets the estimate. The
//! sends that went with a cycle's refused one stay in its log until the
//! pause ends, when the host's answers say which of them it took.
//!
//! Over 400 lines, two fifths of them comments: a cycle's log, its trim
//! and its reading at the pause's end share one state, and each rule
//! keeps the measurement that made it beside it.

use std::time::Duration;

use tokio::time::Instant;

use super::probe::PROBE_HOLDS;
use super::{Basis, RateControl, MIN_EVIDENCE, PROBE_GROWTH, SHORT_CYCLE, TOP_PROBE_MAX, TOP_PROBE_OVER};
use crate::layer::adaptive::fit::{
    average_rate, burst_under_flood, fit_cycles_within, peak_rate, peak_rate_over, Fit, CYCLES_KEPT,
    FIT_OVER_PEAK,
};
use crate::layer::adaptive::fleet_fit::{Finished, FloodAnswers};

/// How far over the estimate the gaps of a limiter without a burst,
/// counted to the refused send, must put its rate to replace it. Less,
/// and the estimate stands: the shortest gap accepted is a search step's
/// pace, under the rate by up to a step (held there, 30/s was held at
/// 93 % and 50/s at 89 %, where the search's cycle's estimate got
/// 96-98 %).
const GAPS_OVER_ESTIMATE: f64 = 1.1;

/// How close to a cycle's refused send a send went with it: the server
/// may have taken it first or refused it too.
const TIED: f32 = 0.001;

/// The latest cycle a pause ended, while the answers to its sends come
/// in: the refused send's last millisecond often held several sends (an
/// opening flood's), and which of them the host took is known only once
/// all are answered.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answering {
    /// The meter's count of acceptances when the cycle began: every
    /// acceptance since, until sending resumes, is of its sends (nothing
    /// is sent during the pause; a straggler of an earlier cycle counts
    /// too, and keeps a send more).
    from_total: u32,
    /// It is the opening flood, kept as such.
    flood: bool,
}

/// Drops the sends tied with `log`'s refused one (the last, at 0) past
/// what the host `accepted` of the cycle and the refused one: the host
/// refused those too. A flood of nine sent within two milliseconds, six
/// taken, kept all nine as taken but the last: fitted with the search
/// that followed, a GCRA of 20/s with a burst of five read 14/s, and was
/// held there for 40 s (a millisecond of network jitter is enough).
fn drop_refused_ties(log: &mut Vec<f32>, accepted: usize) {
    let tied_from = log.iter().position(|&t| t >= -TIED).unwrap_or(log.len());
    log.truncate((accepted + 1).max(tied_from + 1));
}

/// The rate of a window of a second that each `Retry-After: 1` pause
/// restores whole, from two cycles in a row that each took the same
/// count (within a fiftieth, and eight at the least) at paces a tenth or
/// more apart, as the opening flood did: that count a second, if both
/// cycles were sent faster. A
/// fixed window or a moving one of a second (its `Retry-After` the whole
/// seconds to its reset, rounded up: always one) takes its quota after
/// every pause at any pace; a GCRA or a token bucket refills at its rate
/// while a cycle lasts, and takes more the slower the cycle. The GCRA fit
/// of such cycles read three times a quota of 500 a second, and cycles
/// cut from there held 72 % of it. Longer windows' pauses vary with the
/// phase of their reset, and their count over the pause is no rate (a
/// window of a minute was held at 93 %, where a refusal each window costs
/// a thirteenth of 12 a minute and none of 30 a second). Without the
/// flood's count, two cycles of nginx at 500/s with a burst of one,
/// refused by the network's bunching after the same 44 sends, read 44/s
/// in real time, and the host was held at 9 % of its rate.
pub(super) fn quota_per_pause(
    flood: &[f32],
    previous: &[f32],
    latest: &[f32],
    pause: Duration,
) -> Option<f64> {
    let taken = |log: &[f32]| log.len().saturating_sub(1);
    let (a, b) = (taken(previous), taken(latest));
    let same = |x: usize, y: usize| x.abs_diff(y) <= (x.max(y) / 50).max(1);
    let one_second = pause == Duration::from_secs(1);
    if a.min(b) < MIN_EVIDENCE as usize || !same(a, b) || !same(taken(flood), b) || !one_second {
        return None;
    }
    let (p, q) = (average_rate(previous), average_rate(latest));
    // What one pause of a second restored, a second.
    let rate = b as f64;
    (p.max(q) >= 1.1 * p.min(q) && rate < p.min(q)).then_some(rate)
}

impl RateControl {
    /// Sending resumes after a pause: the finished cycle's answers are
    /// in, and the sends tied with its refused one that the host did not
    /// take leave its log (see [`drop_refused_ties`]).
    pub(super) fn trim_answered(&mut self) {
        let Some(a) = self.logs.answering.take() else {
            return;
        };
        let accepted = (self.meter.total() as u32).wrapping_sub(a.from_total) as usize;
        if let Some(log) = self.logs.previous.last_mut() {
            drop_refused_ties(log, accepted);
        }
        if a.flood {
            if let Some(log) = self.logs.flood.as_mut() {
                drop_refused_ties(log, accepted);
            }
        }
    }

    /// A loss with `Retry-After`: the cycle since the last pause ends with
    /// the refused request, sent at `sent_at`.
    /// `told`: the pause this process's own refusal asked for (`None`: a
    /// fleet's pause).
    pub(super) fn on_told(&mut self, now: Instant, sent_at: Instant, told: Option<Duration>) {
        if self.resume_pending {
            // A refusal of a request sent before the pause began.
            return;
        }
        self.resume_pending = true;
        self.top_probe = false;
        // Pauses cost too much for probes one after another.
        self.ceiling = None;
        // A search sent in waves: its cycle's shape and peak are the
        // waves', not the limiter's.
        let search_in_waves = self.searching_in_waves(now);
        let previous_refusal = self.told_at.replace(sent_at);
        let Some((start, mut log)) = self.cycle.take() else {
            return;
        };
        let end = sent_at.saturating_duration_since(start).as_secs_f32();
        // Rebase so the cycle ends at 0.
        log.iter_mut().for_each(|t| *t -= end);
        let fits = std::mem::take(&mut self.cycle_refused) == 0;
        let unpaced = self.basis == Basis::None;
        // An unpaced flood (the first cycle, before any pace) keeps, for
        // the fleet, the sends after the refused one: the server may have
        // taken them first, and the flood's count bounds the burst.
        let flood = (unpaced && self.fleet.is_some()).then(|| log.clone());
        log.retain(|&t| t <= 0.0);
        if let Some(fleet) = self.fleet.as_mut() {
            fleet.own_sends = log.len();
            let flood = flood.map(|f| {
                let answers = FloodAnswers {
                    unanswered: f.len().saturating_sub(fleet.flood_answered),
                    refused: 0,
                };
                (f, answers)
            });
            fleet.finished = Some(Finished {
                end: sent_at,
                told: told.is_some(),
                // A flood is no shape to fit a fleet's rate to: each
                // process's share of it is whatever its requests raced to.
                fits: fits && !unpaced,
                flood: flood.as_ref().map(|(_, a)| *a),
                log: flood.map_or_else(|| log.clone(), |(f, _)| f),
            });
        }
        if !fits {
            // Refusals without `Retry-After` came before this one: not the
            // cycle of a GCRA, nothing to fit or guess from. The pause alone.
            self.logs.previous.clear();
            self.logs.slow = None;
            return;
        }
        if self.slow_cycle(now, sent_at, previous_refusal, &log) {
            return;
        }
        // The host was refused at the previous pause and accepted this
        // cycle's sends since: whatever its burst, it refills no faster than
        // its rate, so that count over that time bounds the rate from below.
        // A fit under it is the jitter of two cycles both sent below the
        // rate (a one-request burst refuses requests bunched by the network
        // or the scheduler), not the limiter's rate.
        let floor = previous_refusal.map_or(0.0, |t0| {
            let span = sent_at.saturating_duration_since(t0).as_secs_f64();
            let sends = log.len().saturating_sub(2) as f64;
            if span > 0.0 {
                sends / span
            } else {
                0.0
            }
        });
        // Nor is a fit believed far above the rate the cycle was sent at
        // near its end: the host refused it, so it was sending past the
        // rate. A fit far above reads the boundary of a limiter without a
        // burst, which refuses two requests a millisecond apart whatever
        // its rate under a thousand a second.
        let peak = peak_rate(&log);
        // At a few a second no trailing window holds four intervals: the
        // last two are the rate it was sending at when refused.
        let peak_few = peak_rate_over(&log, 2);
        if let Some(fleet) = self.fleet.as_mut() {
            // In a fleet, this process's part of the unpaced opening flood
            // is whatever its requests raced to: no shape to fit its share
            // of the rate to (fitted with the search, the four shares
            // summed to 83-105 % of the rate). The search cycle alone fits
            // nothing, so the pace holds where it was refused, as one
            // process's does: a second cycle ends within a second, and
            // the fleet fits the two merged (`fleet_fit.rs`).
            if std::mem::take(&mut fleet.flood_kept) && fleet.shared() {
                self.logs.previous.clear();
            }
            fleet.flood_kept = unpaced;
        }
        // A fit whose middle is under the floor but whose range reaches
        // over it: the middle of what both allow (a bucket of a second
        // refilled by each pause fitted 16/s, allowing up to 22.5, with a
        // floor of 18.75: rejected, two more pauses came before a fit).
        // Not in a fleet: a process's cycles are its share of a race (from
        // the opening flood on, before it knows of the others), and the
        // fleet fits the merged ones.
        let in_fleet = self.fleet.is_some();
        // A fit's burst is under what refused the opening flood, and a few
        // sends of room (the server may have taken some sent after the
        // refused one): two cycles can also cross far below the rate, at
        // a burst the flood rules out (a probe's cycle and a search at
        // 500/s with a burst of one crossed at 155/s, and the host was
        // held there). As the fleet's fits are bounded (`fleet_fit.rs`).
        let flood = self.logs.flood.as_deref();
        let max_burst = |r: f64| burst_under_flood(flood, r);
        let fitted = fit_cycles_within(&self.logs.previous, &log, self.estimate, max_burst, 1.0)
            .map(|f| Fit {
                rate: if f.rate < floor && floor <= f.top && !in_fleet {
                    0.5 * (floor + f.top)
                } else {
                    f.rate
                },
                ..f
            })
            .filter(|f| f.rate >= floor && (peak == 0.0 || f.rate <= FIT_OVER_PEAK * peak))
            .filter(|_| !search_in_waves);
        // A quota each pause restores is no GCRA's shape: it is read as
        // what a pause restores, over the pause, and taken as a fit.
        let fitted = told
            .filter(|_| !in_fleet)
            .and_then(|pause| {
                quota_per_pause(
                    self.logs.flood.as_deref()?,
                    self.logs.previous.last()?,
                    &log,
                    pause,
                )
            })
            .map(|rate| Fit {
                rate,
                bottom: rate,
                top: rate,
                cycles: 2,
            })
            .or(fitted);
        let accepted = log.len().saturating_sub(1) as f64;
        let secs = f64::from(-log.first().copied().unwrap_or(0.0));
        let paced = match self.basis {
            Basis::None => None,
            _ => Some(self.pace),
        };
        let is_flood = unpaced && !in_fleet && self.logs.flood.is_none() && log.len() >= 2;
        if is_flood {
            self.logs.flood = Some(log.clone());
        }
        self.logs.answering = (!in_fleet).then_some(Answering {
            from_total: self.logs.from_total,
            flood: is_flood,
        });
        if self.logs.previous.len() >= CYCLES_KEPT {
            self.logs.previous.remove(0);
        }
        self.logs.previous.push(log);
        self.costly_probe();
        let probed = std::mem::take(&mut self.probing);
        if probed {
            self.probe_refused();
            self.probe_step = PROBE_GROWTH;
        }
        // The pace held under a measured estimate, refused within a short
        // cycle: the rates the cycles allow from there up are ruled out.
        let held = (self.basis == Basis::Measured && !probed && secs < SHORT_CYCLE).then_some(self.pace);
        let mut halved = false;
        match fitted {
            Some(f) if !(probed && self.chained && f.rate < self.estimate) => {
                self.estimate = match held {
                    // The fit allows more than the pace just refused: the
                    // cycles leave its range as wide as before (a cycle of
                    // a few sends narrows nothing), and its middle, taken
                    // again, is refused again. The rate lies between the
                    // range's bottom and the refused pace: their middle.
                    // nginx at 1 500/s with a burst of one and `Retry-After:
                    // 1` allowed 1 340-1 995/s; held at 1 663/s, four sends
                    // were refused at each resume, every fit took 1 697/s
                    // again, and the cut that followed held 2.6 % of it.
                    Some(p) if f.bottom < p && p <= f.rate => 0.5 * (f.bottom + p),
                    _ => f.rate,
                };
                self.basis = Basis::Measured;
            }
            Some(_) => {
                // A probe of a chain was refused after the one before it
                // held: the rate lies between them, and a fit under the
                // hold is the chain's changes of pace read as a limiter's
                // shape.
            }
            None if accepted < 1.0 => {
                // Refused at the first send after a pause: the host's own
                // pause did not restore a single request. No rate limiter
                // does that at a rate above one a second; it says nothing
                // of a rate (a server that refuses whatever the pace).
                return;
            }
            None if self.basis == Basis::None && accepted < f64::from(MIN_EVIDENCE) && secs >= 0.25 => {
                // Unpaced, and nothing accepted, or a few over a long time:
                // nothing to say (a small-burst GCRA's cycle is its burst,
                // sent at once). A paced host goes on below: a slow host
                // (a few requests a second) only ever shows a few.
                return;
            }
            None if self.basis == Basis::Measured && probed => {
                // A probe over the hold was refused: the estimate under it
                // stands.
            }
            None if self.basis == Basis::Measured => {
                // Paused while holding: the estimate was high. A cycle over
                // in under two seconds was high by more than the hold's
                // margin (a small-burst GCRA at a few requests a second):
                // each such pause in a row cuts twice as deep.
                let streak = if secs < SHORT_CYCLE { self.short_cycles } else { 0 };
                self.short_cycles = if secs < SHORT_CYCLE {
                    streak.saturating_add(1)
                } else {
                    0
                };
                self.estimate *= self.hold().powi(1 << streak.min(3));
                if (accepted < f64::from(MIN_EVIDENCE) || streak >= 1) && floor > 0.0 {
                    // A handful of sends, and refused, or a second short
                    // cycle in a row (a one-second bucket refilled by each
                    // pause, whose cycles of one shape fit nothing): far
                    // too high, by more than cuts of a few percent make up
                    // soon. The rate lies between what the host accepted
                    // since its last refusal and the estimate: halfway, in
                    // ratio.
                    self.estimate = self.estimate.min((floor * self.estimate).sqrt());
                    halved = true;
                }
            }
            None if paced.is_some() && search_in_waves => {
                // A search refused in waves a round trip apart (a slow
                // backend, the concurrency limit releasing its answers'
                // permits together): what it accepted over its sending
                // time (a second at least) is a lower bound, searched upward
                // from with the pace in charge. Held at its peak as if past
                // the limit, it got 27 % of 500/s 200 ms away; and a wave's
                // peak is no bound (a wave of 270 read 2 430/s at 2 000/s).
                self.estimate = self.estimate.max(accepted / secs.max(1.0));
            }
            None if paced.is_some() => {
                // A search refused at this pace, with nothing to fit yet.
                // Its average rate is far below where it was refused (it
                // grew all along): hold at the rate it was sending when
                // refused, which is past the limit, so that the next cycle
                // ends in a refusal too and the two fit the rate. Read
                // over its last two intervals where its sends are too few
                // for four: nginx without `burst=` at 10/s was held at the
                // average of a search that spent its first second at 1/s
                // (30 % of the rate).
                let peak = if peak == 0.0 { peak_few } else { peak };
                self.estimate = paced
                    .unwrap_or(self.min_rate)
                    .min(peak.max(accepted / secs.max(0.001)));
                self.basis = Basis::Measured;
            }
            None => {
                // A lower bound: what the cycle accepted in its sending time,
                // counted over a second at least (a burst spent in a few
                // milliseconds is not a rate). Time paused never counts.
                self.estimate = (accepted / secs.max(1.0)).max(self.search_floor());
                self.basis = Basis::Guess;
            }
        }
        if self.estimate < floor {
            // Below what the host provably allows: a lower bound to search
            // upward from.
            self.estimate = floor;
            self.basis = Basis::Guess;
        }
        // The gaps of the sends answered a round trip ago, or with the
        // refused one counted too (a pause stops the sending, and a
        // search's refusal is the gap that tells most) when they tell far
        // more than the estimate: nginx without `burst=` at 10/s, searched
        // at 9.4/s then refused at 11.6/s, was held at the 7.6/s of the
        // search's last four intervals, its refusal too recent for gaps
        // that need two refusals.
        let gap_rate = self
            .gap_rates(now)
            .map(|(r, _)| r)
            .filter(|&r| r > self.estimate)
            .or_else(|| {
                self.gap_rates_of_sends_before(sent_at + std::time::Duration::from_micros(1))
                    .map(|(r, _)| r)
                    .filter(|&r| r > GAPS_OVER_ESTIMATE * self.estimate)
            });
        if let Some(r) = gap_rate {
            // A limiter without a burst: its gaps measure it.
            self.estimate = r;
            self.basis = Basis::Measured;
        }
        self.settle(now);
        if halved && !self.recovery.held_a_rate() {
            // Halfway down to what the host accepted since its last
            // refusal: unrefused there, the rate lies between the two, and
            // probes find it. A window of a second refilled by each pause
            // ends its cycles at what the pause let through, and their cuts
            // land under its rate with nothing left to refuse the pace (a
            // fixed window of 500/s answering `Retry-After: 1` was held at
            // 72 % for half a minute, then probed 3 % at a time). Probed
            // after a probe's hold, or ten pauses (`on_loss`). Not below a
            // rate held for long: a fall in capacity, which `recovery.rs`
            // probes back toward, and these probes, refused while it
            // lasts, would use up its attempts.
            self.probe_after = now + PROBE_HOLDS;
        }
        let wide = |f: &Fit| f.cycles == 2 && f.rate == self.estimate && f.top > TOP_PROBE_OVER * f.rate;
        if let Some(f) = fitted.filter(wide) {
            // Two cycles allow a wide range of rates (a few sends apiece
            // at a few tens a second), and the fit is its middle: a
            // third cycle, sent at the range's top at once, narrows it
            // to what all three allow. One pause now, before the crawl
            // settles, not a hold up to half the range too high or low;
            // once, not again for each fit after it.
            self.probe_after = now;
            self.probe_step = (f.top / (f.rate * self.hold())).min(TOP_PROBE_MAX);
            self.top_probe = true;
        }
    }
}
