//! Probing past a measured rate: when a probe is due, how far it goes,
//! how long it must hold, and what a held or refused one teaches.

use std::time::Duration;

use tokio::time::Instant;

use super::{Basis, Ceiling, RateControl, PROBE_GROWTH, PROBE_WAIT_CHEAP, TOP_PROBE_MAX, TOP_PROBE_OVER};
use crate::layer::adaptive::fit::SEARCH_STEP;

/// Growth per search step while the estimate is a guess.
pub(super) const SEARCH_GROWTH: f64 = 1.25;
/// A burst a larger probe's overshoot must outlast before it counts as
/// held (nginx's `burst=50`, common in its documentation's examples).
const BURST_HIDDEN: f64 = 50.0;
/// Quiet time before a probe after a pause or refusals that persisted.
const PROBE_WAIT_COSTLY: Duration = Duration::from_secs(30);
const PROBE_WAIT_MAX: Duration = Duration::from_secs(240);
/// Answers at the hold between probes, at the least.
const PROBE_ANSWERS: f64 = 400.0;
/// Answers at the hold before a probe while the host has accepted fewer
/// than [`PROBE_ANSWERS`] in all (see
/// [`answers_between_probes`](RateControl::answers_between_probes)).
const PROBE_ANSWERS_YOUNG: f64 = 100.0;
/// A probe that met no loss for this long held: a GCRA's burst hides a
/// probe above its rate until it runs out (50 at 500/s lasts 3 s at 3 %
/// over); a larger burst still hides it, and the refusals at the hold that
/// follow step the estimate back.
pub(super) const PROBE_HOLDS: Duration = Duration::from_secs(5);
/// An ordinary probe holds over this many of its sends at the least.
const PROBE_SENDS: f64 = 32.0;

impl RateControl {
    /// Search steps and probes, driven by time while the pace binds.
    pub(super) fn step(&mut self, now: Instant) {
        self.window_test_ended();
        let binding = self.binding(now);
        match self.basis {
            // A search after a ban grows by acceptances, not by time.
            Basis::Guess if self.searching_after_a_ban() => self.stepped_at = now,
            Basis::Guess if binding => {
                while now.saturating_duration_since(self.stepped_at) >= SEARCH_STEP {
                    self.stepped_at += SEARCH_STEP;
                    // In a fleet, requests that waited for leased slots
                    // reach the pacer together, and the pace binds while
                    // the process sends far below it: searches grew to
                    // 1 000–1 400/s in processes sending a few a second,
                    // which then held at hundreds a second after the next
                    // pause. A step grows only while the sends keep up.
                    if self.shared() && !self.sending_at_pace(now, SEARCH_STEP) {
                        continue;
                    }
                    self.pace = (self.pace * SEARCH_GROWTH).min(1e6);
                }
            }
            Basis::Measured if binding && !self.probing && self.at_announced_rate() => {}
            Basis::Measured if binding && !self.probing && self.ceiling_probe_due(now) => {
                // Halfway (in ratio) between the hold and the ceiling.
                let ceiling = self.ceiling.map_or(self.estimate, |c| f64::from(c.rate));
                self.probing = true;
                self.stepped_at = now;
                self.probe_step = (ceiling / (self.estimate * self.hold()))
                    .sqrt()
                    .clamp(1.0, TOP_PROBE_MAX);
                self.pace = self.estimate * self.hold() * self.probe_step;
            }
            Basis::Measured
                if binding && !self.probing && (now >= self.probe_after || self.window_test_due(now)) =>
            {
                if self.above_hold(self.pace) && !self.shared() {
                    // A search frozen at its first loss above the estimate,
                    // and nothing refused since: what the host accepted at
                    // that pace is the better estimate (probed from the
                    // estimate, a search frozen at 1 900/s fell to 400/s).
                    self.estimate = self.estimate.max(self.accepted_since_cut(now));
                }
                self.probing = true;
                self.stepped_at = now;
                if let Some(step) = self.recovery.step(self.estimate) {
                    self.probe_step = step;
                }
                self.start_window_test(now);
                self.pace = self.estimate * self.hold() * self.probe_step;
            }
            Basis::Measured
                if self.probing && now.saturating_duration_since(self.stepped_at) > self.probe_holds() =>
            {
                // The probe held: the host allows more, and the next probe
                // comes soon and goes twice as far; under a window that
                // counts refusals, where a probe past the rate costs a
                // window of them, one step at a time and rarely.
                self.probing = false;
                self.window_test_held();
                let top = std::mem::take(&mut self.top_probe);
                self.estimate = (self.estimate * self.probe_step).min(self.announced_cap());
                self.pace = self.estimate * self.hold();
                if let Some(ceiling) = self.ceiling {
                    // Toward the ceiling: the next probe at once, halfway
                    // again, until the two are close.
                    if f64::from(ceiling.rate) < self.estimate * TOP_PROBE_OVER {
                        self.ceiling = None;
                    }
                    self.probe_step = PROBE_GROWTH;
                    self.probe_after = now + self.probe_wait.max(self.answers_between_probes());
                } else if self.recovery.active() {
                    if self.recovery.step(self.estimate).is_some() {
                        // Still short of the rate held before a fall: on
                        // at once.
                        self.probe_after = now;
                    } else {
                        // Back at the rate held before the fall (refusals
                        // read then as a window that counts them were the
                        // fall), which was measured: probing as after a
                        // loss from here.
                        self.probe_wait = PROBE_WAIT_COSTLY;
                        self.counting_window = false;
                        self.pace = self.estimate * self.hold();
                        self.probe_step = PROBE_GROWTH;
                        self.probe_after = now + self.probe_wait.max(self.answers_between_probes());
                    }
                } else if self.counting_window || self.paused_fleet() || top {
                    // Under a window that counts refusals, one step at a
                    // time, and rarely. In a fleet whose host pauses it
                    // too (without pauses, a chain's refusals cost what
                    // they cost one process, and four parts held at 73 %
                    // of a GCRA's rate for want of one): a probe of one
                    // process's share is a fraction of what the host sees,
                    // which a shared burst hides for longer than the probe
                    // holds, so probes that hold say little, and a chain on
                    // them doubled a small share to twice the host's room
                    // (a quarter share went 57, 74, 118, 236 a second)
                    // until a refusal paused every process and the others
                    // refit their shares from it. And after the top of a
                    // wide fit's range: its cycles allow nothing above it,
                    // and a burst may have hidden the probe (10 at 50/s
                    // hides 3 % over for 6 s; the chain's next probe,
                    // refused, left that false hold as the estimate, and
                    // the host was held at 88 % of its rate).
                    if top {
                        self.probe_step = PROBE_GROWTH;
                    }
                    self.probe_after = now + self.probe_wait;
                } else {
                    // A chain: each probe that holds is followed at once by
                    // one twice as far (3, 6, 12, 24, 48, 100 %), held for
                    // less time in proportion (its overshoot spends a burst
                    // that much sooner): a limit raised fivefold is found
                    // in about 15 s, not minutes.
                    self.probe_step = 1.0 + 2.0 * (self.probe_step - 1.0).min(0.5);
                    self.probe_wait = PROBE_WAIT_CHEAP;
                    self.probe_after = now;
                    self.chained = true;
                }
            }
            _ => {
                if !binding {
                    self.stepped_at = now;
                }
            }
        }
    }

    /// How long the probe under way must meet no loss to count as held:
    /// [`PROBE_HOLDS`], or less for a larger probe of a chain, a recovery
    /// or toward a ceiling (its overshoot spends a burst that much sooner;
    /// a second for a limiter without a burst), as long as its
    /// overshoot would spend a burst of [`BURST_HIDDEN`] requests, and a
    /// second at the least.
    pub(super) fn probe_holds(&self) -> Duration {
        if let Some(holds) = self.window_test_holds() {
            return holds;
        }
        if self.ceiling.is_some_and(|c| !c.frozen) {
            // A limiter without a burst: nothing hides a probe past it.
            return Duration::from_secs(1);
        }
        if !(self.recovery.active() || self.chained || self.ceiling.is_some()) {
            // At a few a second, five seconds are a send or two: a GCRA's
            // burst hides a probe for longer (held after five seconds at
            // 0.2/s, probes crept up 3 % at a time until refused). Not
            // under a window that counts refusals, whose probe refused late
            // overfills it (a window of 10 s at 3/s was then held at 72 %).
            if self.pace > 0.0 && !self.counting_window {
                return PROBE_HOLDS.max(Duration::from_secs_f64(PROBE_SENDS / self.pace));
            }
            return PROBE_HOLDS;
        }
        let over = (self.probe_step - 1.0).max(1e-6);
        let by_share = PROBE_HOLDS.as_secs_f64() * (PROBE_GROWTH - 1.0) / over;
        let by_burst = BURST_HIDDEN / (self.estimate.max(1e-3) * over);
        Duration::from_secs_f64(by_share.max(by_burst).clamp(1.0, PROBE_HOLDS.as_secs_f64()))
    }

    /// Whether a probe toward the ceiling is due: a round trip or two
    /// after the latest cut, so that the refusals of the pace before it
    /// are in. (The gaps' lower end is where such a limiter is measured
    /// from: sent to at 125/s, a limiter of 100/s refuses every other
    /// request, and the gaps say 62.5–125/s; held at 61/s, it was probed
    /// 3 % at a time.)
    pub(super) fn ceiling_probe_due(&self, now: Instant) -> bool {
        self.ceiling.is_some()
            && now.saturating_duration_since(self.cut_at) >= SEARCH_STEP.max(2 * self.served_rtt)
    }

    /// Whether `pace` is over the hold (a search frozen past it, a probe),
    /// beyond float rounding.
    pub(super) fn above_hold(&self, pace: f64) -> bool {
        pace > self.estimate * self.hold() * 1.001
    }

    /// After a measurement from the gaps of a limiter without a burst
    /// (`gaps`: the rates they allow, from [`gap_rates`], so never in a
    /// fleet), the top of them is a ceiling.
    ///
    /// [`gap_rates`]: RateControl::gap_rates
    pub(super) fn bound_by_gaps(&mut self, gaps: Option<(f64, f64)>) {
        self.ceiling = gaps
            .map(|(_, top)| top)
            .filter(|&top| top > TOP_PROBE_OVER * self.estimate)
            .map(|top| Ceiling {
                rate: top as f32,
                frozen: false,
            });
    }

    pub(super) fn costly_probe(&mut self) {
        self.probe_wait = self.probe_wait.max(PROBE_WAIT_COSTLY);
    }

    /// A probe was refused: the next waits twice as long, up to
    /// [`PROBE_WAIT_MAX`] (or the wait already set, after a long pause).
    pub(super) fn probe_refused(&mut self) {
        self.refused_far_above = false;
        self.probe_wait = (self.probe_wait * 2).min(PROBE_WAIT_MAX.max(self.probe_wait));
    }

    /// A failed probe costs a refusal or a few: at a slow pace, probes are
    /// spaced by answers rather than by time, so that they cost a fraction
    /// of a percent of them. But a loss that set the estimate far under
    /// the pace it refused (see `REFUSED_FAR_ABOVE`) leaves a wide range
    /// for the rate: until a probe is refused, probes wait as many answers
    /// as the host has accepted in all, from [`PROBE_ANSWERS_YOUNG`] up to
    /// [`PROBE_ANSWERS`], so a reading made from a few dozen answers is
    /// probed while it is young. Far away, under a closed loop, the
    /// opening's few answers read Traefik's 30/s at 9.7/s (refused at
    /// 43/s) and nginx's 3/s with `burst=1` at 2.2/s, each held there for
    /// the 400 answers (a minute or three) the next probe waited. An
    /// estimate a refusal just over it measured keeps the usual spacing:
    /// probed sooner, sliding logs of a second read exactly had 1.6 % of
    /// their sends refused, not none. Nor under a window that counts
    /// refusals: a probe refused there costs a window of them. Nor in a
    /// fleet: each process's probes fill the host's one window (four
    /// processes on a sliding log of 500/s, local through a Redis outage,
    /// fell to 85-94 % with 0.9-2.8 % refused in three runs of nine).
    pub(super) fn answers_between_probes(&self) -> Duration {
        let rate = self.estimate.max(self.min_rate).max(1e-3);
        let answers = if self.counting_window || !self.refused_far_above || self.fleet.is_some() {
            PROBE_ANSWERS
        } else {
            (self.meter.total() as f64).clamp(PROBE_ANSWERS_YOUNG, PROBE_ANSWERS)
        };
        Duration::from_secs_f64((answers / rate).min(PROBE_WAIT_MAX.as_secs_f64()))
    }
}
