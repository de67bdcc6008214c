//! Windows that count refusals: a trickle while nothing is accepted,
//! until the window drains, and the window's length from that time.

use std::time::Duration;

use tokio::time::Instant;

use super::{Basis, RateControl, MIN_EVIDENCE};

/// How long refusals with nothing accepted at a pace last before it is cut.
const STARVED: Duration = Duration::from_secs(1);
/// The trickle a pace starved by such refusals is cut to, at first.
const TRICKLE: f64 = 1.0 / 32.0;

/// Window lengths limiters are configured with, seconds.
pub(super) const ROUND_WINDOWS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 3600.0,
];

/// The length of a window that counts refusals, from the time it took to
/// reopen after filling: that time is the window's length and a little
/// more (the refusals sent meanwhile stay counted and hold it shut a while
/// longer), and limiters count over round lengths (HAProxy's
/// `http_req_rate(10s)`). Within a tenth and a second over a round
/// length (the refusals that hold it shut come from the trickle's last
/// second) it is that length; otherwise as measured. A window of 10 s
/// read as 10.6 held the pace at 89 % of its rate, as 11.2 (sent to
/// faster before it filled) at 86 %, and of 5 s read as 5.9, at 84 %.
pub(super) fn round_window(secs: f64) -> f64 {
    ROUND_WINDOWS
        .into_iter()
        .rev()
        .find(|&w| w <= secs && secs <= 1.1 * w + 1.0)
        .unwrap_or(secs)
}

impl RateControl {
    /// Refused for a second with nothing accepted, eight to one since the
    /// cut: a window that counts refusals and is longer than a second
    /// (HAProxy's `http_req_rate(10s)`) stays full at any pace over its
    /// average, and no answer at such a pace ever measures it. Each refusal
    /// sent meanwhile stays in the window for its whole length: the pace
    /// trickles at a thirty-second until the window drains (see `fed`),
    /// and halves from there after each second with eight refusals more,
    /// about eight refusals a step; it holds as under any limiter that
    /// counts refusals.
    pub(super) fn starved(&mut self, now: Instant, was: Option<f64>) -> bool {
        let (a, r) = self.since_cut;
        let Some(pace) = was else {
            return false;
        };
        // Nothing accepted for that long, and refusals outnumber what was
        // accepted since the cut eight to one: requests sent just after
        // the cut may still have found the window open.
        let quiet_from = self
            .ok_span
            .map_or(self.cut_at, |(_, last)| last.max(self.cut_at));
        if r < MIN_EVIDENCE || r < 8 * a || now.saturating_duration_since(quiet_from) < STARVED {
            return false;
        }
        self.basis = Basis::Measured;
        self.counting_window = true;
        self.probing = false;
        self.drain_until = None;
        self.ceiling = None;
        // A trickle at first: what the window lets through once it drains
        // tells its rate (see `fed`), and a trickle wastes little meanwhile.
        let cut = if self.starving { 0.5 } else { TRICKLE };
        self.starving = true;
        self.estimate = (pace * cut / self.hold()).max(self.min_rate);
        self.pace = (self.estimate * self.hold()).max(self.min_rate);
        self.costly_probe();
        // Nothing to judge later cuts by: a window still draining refuses
        // whatever the pace for a while.
        self.before_cut = None;
        self.restart_count(now);
        self.stepped_at = now;
        self.cut(now);
        self.probe_after = now + self.probe_wait.max(self.answers_between_probes());
        true
    }

    /// The host accepts again after starving the pace: the window drained.
    /// Over the cycle since the previous such moment (or the first send),
    /// it accepted a window's worth, about, in about a window's length: a
    /// rate to hold at, if it is above the trickle.
    pub(super) fn fed(&mut self, now: Instant) {
        self.starving = false;
        let (from, accepted_before) = self.starve_cycle;
        let accepted = self.meter.total().saturating_sub(accepted_before);
        self.starve_cycle = (now, self.meter.total());
        let secs = round_window(now.saturating_duration_since(from).as_secs_f64().max(1.0));
        let rate = accepted as f64 / secs;
        if rate * self.hold() > self.pace {
            self.estimate = rate;
            self.pace = rate * self.hold();
            self.restart_count(now);
            self.stepped_at = now;
            self.cut(now);
            // The next probe as after any cut: the wait a trickle set counted
            // its answers at the trickle's rate (400 at 2.7/s: 150 s, and
            // a window of 10 s was held at 88 % of its rate for as long).
            self.probe_after = now + self.probe_wait.max(self.answers_between_probes());
        }
    }
}
