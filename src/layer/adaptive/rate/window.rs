//! Windows that count refusals: a trickle while nothing is accepted,
//! until the window drains, and the window's length from that time.
//!
//! Over 400 lines, two fifths of them comments: the drain, the trickle
//! and the window read from it are one sequence of one window's life,
//! and each reading needs the others' state.

use std::time::Duration;

use tokio::time::Instant;

use super::counts::steady_rate;
use super::loss::DRAIN;
use super::{Basis, Ceiling, RateControl, MIN_EVIDENCE, TOP_PROBE_OVER};

/// How long refusals with nothing accepted at a pace last before it is cut.
pub(super) const STARVED: Duration = Duration::from_secs(1);
/// The trickle a pace starved by such refusals is cut to, at first.
const TRICKLE: f64 = 1.0 / 32.0;
/// The slowest trickle at first: a send a second, or half the pace
/// starved when that is slower. Slower, it reads the window's length too
/// late (a window of 10 s at 3/s, trickled into every 4 s, was read as
/// 14 s and held at 70 % of its rate).
const TRICKLE_FLOOR: f64 = 1.0;
/// How long after the episode's first refusal a trickle stays at
/// [`TRICKLE_FLOOR`] at the least: a window of up to ten seconds reopens
/// within it. Later, each
/// halving (after eight refusals more) may go below it, down to
/// [`TRICKLE_SLOW_SECS`]: a send a second never reopens a window of a
/// minute that takes 30 (it counts sixty refusals a minute).
const TRICKLE_FLOOR_FOR: Duration = Duration::from_secs(24);
/// Past [`TRICKLE_FLOOR_FOR`], the trickle goes down to a request per this
/// many seconds for each request the cycle took: half the rate of a window
/// of a minute that it filled, so that any window up to a minute drains.
const TRICKLE_SLOW_SECS: f64 = 120.0;
/// How long the trickle stays at that floor at the most: any window of up
/// to a minute that the cycle filled has drained by then (its refusals
/// of the first [`TRICKLE_FLOOR_FOR`] too). Past it the trickle halves on
/// down to `min_rate`: a ban that each refusal renews (HAProxy's abuse
/// pattern, `ban.rs`) ends only after a gap as long as the ban. A ban of
/// 10 s renewed so, trickled into every 9 s at a cycle's floor, never
/// ended.
const TRICKLE_SLOW_FOR: Duration = Duration::from_secs(120);

/// Whether a window of `secs` may read as the round length `w`: within
/// a tenth and a second over it (the refusals that hold a window shut
/// come from the trickle's last second).
fn over_by_at_most_a_tenth_and_a_second(w: f64, secs: f64) -> bool {
    secs <= 1.1 * w + 1.0
}

/// Window lengths limiters are configured with, seconds. 3 and 4 s too:
/// without them a log of 3 s at 10/s that counts refusals read 2 s, and
/// each fill at 15/s refused a window's sends (36 % refused, held so).
/// A length between these is read as measured.
pub(super) const ROUND_WINDOWS: [f64; 14] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 3600.0,
];

/// Refusals with nothing accepted that end a drain's half pace early.
const DRAIN_REFUSED: u16 = 8;
/// The share of the estimate a drain sends once drawn out.
const DRAWN_OUT_SHARE: f64 = 1.0 / 16.0;

/// Half the pace for a while, from `from`, and a sixteenth once drawn
/// out: a window that counts refusals drains (single precision keeps the
/// controller under its 1 KiB bound).
#[derive(Debug, Clone, Copy)]
pub(super) struct Drain {
    from: Instant,
    secs: f32,
    /// Refusals since `from` while nothing was accepted since.
    refused: u16,
    /// Refusals, while draining, of requests sent since `from`.
    refused_sent: u16,
    /// Refusals of requests sent since `from`, the drain over or not.
    refused_since: u16,
    /// Acceptances of requests sent since `from`, the drain over or not.
    accepted_sent: u16,
    /// When the first and the latest of them came, seconds after `from`.
    ok_secs: (f32, f32),
}

impl Drain {
    /// Whether the drain, begun at `at` or later, set what a host
    /// estimated at `estimate` accepted since `at` (`accepted` a second):
    /// the host took what the drain sent, about as much as its lowest
    /// pace, refusing one of those sends at most (noise). A host that
    /// refused the drain's sends took what it allows.
    pub(super) fn paced_since(&self, at: Instant, estimate: f64, accepted: f64) -> bool {
        let end = self.from + Duration::from_secs_f32(self.secs);
        self.from >= at && self.refused_sent <= 1 && accepted >= 0.8 * self.pace(end, estimate)
    }

    /// A refusal, the drain over or not, of a request sent at `sent_at`.
    pub(super) fn on_refused_since(&mut self, sent_at: Instant) {
        if sent_at >= self.from {
            self.refused_since = self.refused_since.saturating_add(1);
        }
    }

    /// An acceptance, the drain over or not, at `now` of a request sent at
    /// `sent_at`.
    pub(super) fn on_accepted(&mut self, now: Instant, sent_at: Instant) {
        if sent_at < self.from {
            return;
        }
        let at = now.saturating_duration_since(self.from).as_secs_f32();
        if self.accepted_sent == 0 {
            self.ok_secs.0 = at;
        }
        self.ok_secs.1 = at;
        self.accepted_sent = self.accepted_sent.saturating_add(1);
    }

    /// The rate of the acceptances of requests sent since the drain
    /// began, from the first to the latest, while as many of them or more
    /// were refused and the latest came within two of their intervals of
    /// `now`: a host that accepts at its own steady rate whatever is sent.
    /// Each acceptance came with the first send past the host's interval,
    /// up to a send interval (`gap`) late, so two or three of them read
    /// the rate up to a fifth either way. Read from the span less half a
    /// `gap`, it errs high, which refusals at the hold step back within a
    /// few sends, rather than low, which only a probe half a minute on
    /// finds (nginx at 10/s with `burst=50`, drained at 26.5/s, read 8.8/s
    /// from three acceptances without that, and was held there).
    fn accepting_steadily(&self, now: Instant, gap: f64) -> Option<f64> {
        if self.refused_since < self.accepted_sent {
            return None;
        }
        let (first, last) = self.ok_secs;
        let span = f64::from(last - first);
        let tail = now.saturating_duration_since(self.from).as_secs_f64() - f64::from(last);
        let rate = steady_rate(u32::from(self.accepted_sent), 2, span, tail)?;
        Some(rate * span / (span - 0.5 * gap).max(0.5 * span))
    }

    /// Whether the drain began at `at` or later.
    pub(super) fn began_since(&self, at: Instant) -> bool {
        self.from >= at
    }

    /// Whether the pace is still drained at `now`.
    pub(super) fn draining(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.from).as_secs_f32() < self.secs
    }

    /// The pace while draining at `now` a host estimated at `estimate`:
    /// half, and a sixteenth once the drain is drawn out past [`DRAIN`]
    /// or refused [`DRAIN_REFUSED`] times with nothing accepted, but no
    /// less than a quarter would be under [`TRICKLE_FLOOR`] (at a request
    /// a second, a sixteenth is a send in 16 s, and the trickle that
    /// follows starts from it). A window full of the opening's flood
    /// refuses everything until it reopens, and each refusal stays
    /// counted in it: against HAProxy's counter of 10 s, a crawl's 64
    /// workers were refused 491 times at 50/s with half the pace for a
    /// second, 385-403 with a quarter after the first half second; at
    /// 10/s, 75 times in its first 14 s with half and a quarter, 53 this
    /// way.
    pub(super) fn pace(&self, now: Instant, estimate: f64) -> f64 {
        if now.saturating_duration_since(self.from) < DRAIN && self.refused < DRAIN_REFUSED {
            0.5 * estimate
        } else {
            (estimate * DRAWN_OUT_SHARE).max((0.25 * estimate).min(TRICKLE_FLOOR))
        }
    }

    /// Whether the host accepted since the drain began, if it last
    /// accepted at `last_ok`.
    fn fed(&self, last_ok: Option<Instant>) -> bool {
        last_ok.is_some_and(|at| at >= self.from)
    }

    /// A refusal while draining of a request sent at `sent_at`; `last_ok`
    /// is when the host last accepted.
    pub(super) fn on_refused(&mut self, sent_at: Instant, last_ok: Option<Instant>) {
        if !self.fed(last_ok) {
            self.refused = self.refused.saturating_add(1);
        }
        if sent_at >= self.from {
            self.refused_sent = self.refused_sent.saturating_add(1);
        }
    }
}

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
    round_between(secs, secs).unwrap_or(secs)
}

/// The longest round length a window that reopened between `after` and
/// `by` seconds may have: at most `by`, and `after` within a tenth and a
/// second over it.
fn round_between(after: f64, by: f64) -> Option<f64> {
    ROUND_WINDOWS
        .into_iter()
        .rev()
        .find(|&w| w <= by && over_by_at_most_a_tenth_and_a_second(w, after))
}

/// The window a cycle from `from` that reopened at `to` reads: its
/// length, a second at the least, as [`round_window`] rounds it.
fn window_to(from: Instant, to: Instant) -> f64 {
    round_window(to.saturating_duration_since(from).as_secs_f64().max(1.0))
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
        // Past any window, a trickle far apart halves after fewer refusals.
        let evidence = if self.starving && self.beyond_any_window(now) {
            MIN_EVIDENCE / 2
        } else {
            MIN_EVIDENCE
        };
        if r < evidence || r < 8 * a || now.saturating_duration_since(quiet_from) < STARVED {
            return false;
        }
        if !self.drain_first(now) {
            self.starve(now, pace);
        }
        true
    }

    /// A host never paced, refused [`MIN_EVIDENCE`] times in a row over a
    /// second or more with nothing accepted lately (`quiet`): the demand
    /// alone keeps a window that counts refusals full, and starves like a
    /// pace at the rate it was sent to. A scheduler sending 0.6 requests
    /// a second into a window of 12 a minute was never paced, and every
    /// request was refused for good: each refusal came alone, 1.7 s after
    /// the last, too slow for any rule that reads a second. Not in a fleet
    /// (others' sends fill the window too, and the fleet's cycles read
    /// it), nor once refusals were found not to follow the pace.
    pub(super) fn starved_unpaced(&mut self, now: Instant, quiet: bool) -> bool {
        if !quiet || self.basis != Basis::None || self.noise.indifferent_until.is_some() || self.shared() {
            return false;
        }
        let Some((n, span)) = self.spacing.refused_in_a_row(self.answered_before(now)) else {
            return false;
        };
        if n < MIN_EVIDENCE as usize || span < STARVED.as_secs_f64() {
            return false;
        }
        self.starve(now, (n - 1) as f64 / span);
        true
    }

    /// The latest [`MIN_EVIDENCE`] answers or more were refusals, sent
    /// within less than [`STARVED`]: refusals that come back faster than
    /// the starved rule's second (see [`starved_unpaced`]).
    ///
    /// [`starved_unpaced`]: Self::starved_unpaced
    pub(super) fn refused_in_a_flood(&self, now: Instant) -> bool {
        self.spacing
            .refused_in_a_row(now)
            .is_some_and(|(n, span)| n >= MIN_EVIDENCE as usize && span < STARVED.as_secs_f64())
    }

    /// The pace `pace` starved: a trickle, cut further each time it
    /// starves again.
    fn starve(&mut self, now: Instant, pace: f64) {
        self.basis = Basis::Measured;
        self.counting_window = true;
        self.probing = false;
        self.drain = None;
        self.ceiling = None;
        // A trickle at first: what the window lets through once it drains
        // tells its rate (see `fed`), and a trickle wastes little meanwhile.
        let took = self.cycle_took();
        let floor = if !self.starving {
            TRICKLE_FLOOR.min(0.5 * pace)
        } else if self.beyond_any_window(now) {
            // Nothing accepted long past any window of a minute: a ban
            // that each refusal renews (see `ban.rs`), or an outage. Only
            // a gap longer than its renewal ends such a ban.
            self.min_rate
        } else if took == 0 || self.refused_for(now) < TRICKLE_FLOOR_FOR.as_secs_f64() {
            // A host that took nothing in the cycle is no window that
            // filled: it stays there until past any window.
            TRICKLE_FLOOR.min(pace)
        } else {
            // A window of a minute holds at most what the cycle took over
            // a minute of it, and the floor never raises the trickle: a
            // cycle of 80 s at 50/s set a floor of 31/s, and the trickle
            // went from 1/s to 31/s into a ban that each refusal renewed.
            let cycle = now.saturating_duration_since(self.starve_cycle.0).as_secs_f64();
            let minute = (60.0 / cycle.max(1.0)).min(1.0);
            (f64::from(took) / TRICKLE_SLOW_SECS * minute).min(pace)
        };
        let cut = if self.starving { 0.5 } else { TRICKLE };
        self.starving = true;
        let floor = floor.max(self.min_rate);
        self.estimate = (pace * cut / self.hold()).max(floor);
        self.pace = (self.estimate * self.hold()).max(floor);
        self.trickle_as_the_last_ban_ended();
        self.costly_probe();
        // Nothing to judge later cuts by: a window still draining refuses
        // whatever the pace for a while.
        self.before_cut = None;
        self.restart_count(now);
        self.stepped_at = now;
        self.cut(now);
        self.probe_after = now + self.probe_wait.max(self.answers_between_probes());
    }

    /// A window that counts refusals: the pace drains at half the
    /// estimate (raised to `counted`, what the host took in a second; a
    /// quarter once drawn out, see [`Drain::share`]), then holds at
    /// [`COUNTING_HOLD`](super::COUNTING_HOLD) of it.
    pub(super) fn drain(&mut self, now: Instant, counted: f64) {
        self.estimate = self.estimate.max(counted);
        self.drain = Some(Box::new(Drain {
            from: now,
            secs: DRAIN.as_secs_f32(),
            refused: 0,
            refused_sent: 0,
            refused_since: 0,
            accepted_sent: 0,
            ok_secs: (0.0, 0.0),
        }));
        self.basis = Basis::Measured;
        self.counting_window = true;
        self.probing = false;
        self.ceiling = None;
        self.costly_probe();
        // The pace after the drain; the evidence since the cut stays.
        self.pace = (self.estimate * self.hold()).max(self.min_rate);
    }

    /// Starved within an episode that has not drained yet, after a window
    /// of a second or so took a count of requests at once and refused the
    /// next: a drain first (returns whether it began), and the trickle
    /// only if the window refuses through it. At a few a second no second
    /// at the hold holds the eight answers that tell such a window from a
    /// GCRA before it starves the pace (HAProxy's counter at 8/s, refused
    /// from a frozen search's overshoot on: the trickle's cycle read a
    /// third of its rate, and held it for minutes). The count is what the
    /// host accepted of the requests sent in the second before the
    /// episode's first refusal (`episode_took`), half of eight at least.
    fn drain_first(&mut self, now: Instant) -> bool {
        let Some(first) = self.episode_sent else {
            return false;
        };
        if self.drain.as_ref().is_some_and(|d| d.from >= first) {
            return false;
        }
        if u32::from(self.episode_took) < MIN_EVIDENCE / 2 {
            return false;
        }
        self.drain(now, f64::from(self.episode_took));
        true
    }

    /// A refusal just after a drain, with nothing accepted since it began:
    /// the window still counts what the overshoot sent, and the drain goes
    /// on (returns whether it does), up to [`STARVED`] in all; a window
    /// that refuses longer starves the pace (see [`starved`](Self::starved)).
    /// HAProxy's `http_req_rate` weighs the previous period by the time
    /// left in the current one, so an overshoot's refusals hold it shut
    /// well into the next period: at the hold after a half-second drain it
    /// still refused, the pace starved, and the cycle that followed read
    /// half the rate of windows of a second at 8-30/s, held for minutes.
    pub(super) fn drawn_out(&mut self, now: Instant) -> bool {
        let Some(drain) = self.drain.as_mut() else {
            return false;
        };
        if drain.fed(self.ok_span.map(|(_, last)| last)) || now >= drain.from + STARVED {
            return false;
        }
        let until = (now + DRAIN).min(drain.from + STARVED);
        drain.secs = drain
            .secs
            .max(until.saturating_duration_since(drain.from).as_secs_f32());
        true
    }

    /// Refused as often as accepted since a drain began (within two
    /// seconds of it), accepting at steady intervals under half the pace
    /// (the drain's, or the hold's once it ended): no window that counts
    /// refusals (full, it accepts nothing until its oldest entries leave;
    /// reopening, it takes most of a drain's half pace), but a GCRA or a
    /// bucket driven past its rate once its burst was spent, the burst
    /// read as a window's count. The intervals measure it, and the drain
    /// is over (returns whether that was read). nginx at 3/s with
    /// `burst=50`, its burst taken as a window of 51 a second, was drained
    /// at half that twice over a second, refused 25 times while it
    /// accepted one send in eight, and then resumed at 51/s; at 2/s with
    /// `burst=10`, held at 11/s after its drain, it was refused four sends
    /// in five for three seconds before a count since the cut read it.
    pub(super) fn drained_into_a_gcra(&mut self, now: Instant) -> bool {
        let Some(drain) = self
            .drain
            .as_deref()
            .copied()
            .filter(|d| now.saturating_duration_since(d.from) < 2 * STARVED)
        else {
            return false;
        };
        let pace = if drain.draining(now) {
            drain.pace(now, self.estimate)
        } else {
            self.pace
        };
        let Some(rate) = drain
            .accepting_steadily(now, 1.0 / pace)
            .filter(|&rate| rate < 0.5 * pace)
        else {
            return false;
        };
        self.drain = None;
        self.counting_window = false;
        self.basis = Basis::Measured;
        self.estimate = rate.max(self.min_rate);
        self.costly_probe();
        self.settle(now);
        true
    }

    /// Whether the count of answers since the cut spans less than four
    /// round trips of a window that counts refusals: the refusals came
    /// back at once, the acceptances a round trip later, and the stretch
    /// the window stayed shut weighs in full. HAProxy's counter of ten
    /// seconds at 100/s, 300 ms away, refused a probe 3 % over it; the
    /// count since the cut read 37.7/s over 0.67 s, and that was held for
    /// minutes. After an estimate that held without a loss (see
    /// [`settled_lately`](Self::settled_lately)), less than a second, the
    /// shortest window limiters count, is no rate either: a probe 3 %
    /// over HAProxy's counter of a second at 30/s seemed to hold (its
    /// pace, at the hold, was the rate), and half a minute later the
    /// counter refused eight between nine acceptances in 0.57 s; that
    /// count (16/s) was held to the end of the run (80 % of the rate, in
    /// a build that probed sooner). Not before: a GCRA's burst in the
    /// opening, read as a window, is measured by such counts (with a
    /// second's bound, a closed loop of 64 had 20-53 % of its sends to
    /// nginx's 10/s with `burst=50` refused, not 7-8 %).
    pub(super) fn count_spans_a_shut_window(&self, now: Instant) -> bool {
        let shortest = if self.settled_lately(now) {
            (4 * self.served_rtt).max(STARVED)
        } else {
            4 * self.served_rtt
        };
        self.counting_window && now.saturating_duration_since(self.counted_from) < shortest
    }

    /// The host accepts again after starving the pace: the window drained.
    /// Over the cycle since the previous such moment (or the first send),
    /// it accepted a window's worth, about, in about a window's length: a
    /// rate to hold at, if it is above the trickle.
    pub(super) fn fed(&mut self, now: Instant) {
        self.starving = false;
        let (from, _, refused) = self.starve_cycle;
        // The acceptance that ends the cycle is the next window's first.
        let accepted = u64::from(self.cycle_took().saturating_sub(1));
        self.starve_cycle = (now, (self.meter.total() as u32).wrapping_sub(1), 0);
        let secs = self.window_between(from, now);
        let counted = self.counted_fit(accepted, secs);
        let rate = (accepted as f64 / secs).max(counted.map_or(0.0, |(low, _)| low));
        let counted_ceiling = counted
            .filter(|&(_, top)| top > TOP_PROBE_OVER * rate)
            .map(|(_, top)| Ceiling {
                rate: top as f32,
                frozen: true,
            });
        // A window that reopened after minutes reads a round length, or
        // its count fits the latest sends (a log of 6 a minute, shut by
        // the trickle for 169 s, fit 0.1/s; searched again, it was
        // refused three sends in four); a ban that the trickle ended reads
        // neither.
        let unwindowed = self.beyond_any_window(now) && !ROUND_WINDOWS.contains(&secs) && counted.is_none();
        if self.ban_lifted(now, rate) || (unwindowed && self.search_after_a_ban(now, rate)) {
            return;
        }
        if rate * self.hold() > self.pace {
            self.estimate = rate;
            self.pace = rate * self.hold();
            self.ceiling = self
                .weighted_window(now.saturating_duration_since(from), accepted, refused, secs)
                .or_else(|| self.round_below(accepted, secs))
                .or_else(|| self.shorter_window(from, accepted, secs))
                .or(counted_ceiling);
            self.restart_count(now);
            self.stepped_at = now;
            self.cut(now);
            // The next probe as after any cut: the wait a trickle set counted
            // its answers at the trickle's rate (400 at 2.7/s: 150 s, and
            // a window of 10 s was held at 88 % of its rate for as long).
            self.probe_after = now + self.probe_wait.max(self.answers_between_probes());
        } else if counted_ceiling.is_some() {
            self.ceiling = counted_ceiling;
        }
        // The reading may be a ban's, even where a count fits the latest
        // sends (a ban each refusal renews fits a log of the opening's
        // count): test it (`window_test.rs`).
        self.test_reading(now, secs);
    }

    /// The rates a log that counts every request, refused ones too, may
    /// allow, read from the latest sends when the host accepts again after
    /// a trickle. The cycle took its count at once (the opening's flood):
    /// a log that held fewer than that before each send it accepted, and
    /// that many or more before each it refused, over a round length
    /// shorter than the cycle, allows that count over that length. The
    /// rates of the longest and the shortest such length, if any. The
    /// cycle's own reading counts the time the trickle's refusals held
    /// the window shut: 30 a minute, trickled into until it reopened 72 s
    /// after the flood, read 0.42/s.
    fn counted_fit(&self, accepted: u64, secs: f64) -> Option<(f64, f64)> {
        let fits = |w: &f64| {
            self.spacing
                .counted_in(*w as f32)
                .is_some_and(|(most, fewest)| u64::from(most) < accepted && accepted <= u64::from(fewest))
        };
        let mut lengths = ROUND_WINDOWS
            .into_iter()
            .filter(|&w| w >= 2.0 && w < secs)
            .filter(fits);
        let shortest = lengths.next()?;
        let longest = lengths.next_back().unwrap_or(shortest);
        Some((accepted as f64 / longest, accepted as f64 / shortest))
    }

    /// Whether the host refused everything for longer than any window of
    /// up to a minute explains at `now`: past [`TRICKLE_FLOOR_FOR`] and
    /// [`TRICKLE_SLOW_FOR`] (that long at half the rate of a window of a
    /// minute that the cycle filled drains it). A host that took nothing
    /// waits as long: 64 requests queued for a host that refused them
    /// all, from its first, waited minutes each once the trickle went
    /// under a send in 2 s.
    pub(super) fn beyond_any_window(&self, now: Instant) -> bool {
        self.refused_for(now) >= (TRICKLE_FLOOR_FOR + TRICKLE_SLOW_FOR).as_secs_f64()
    }

    /// What the host accepted since the cycle of a window that starves
    /// the pace began (see `starve_cycle`).
    fn cycle_took(&self) -> u32 {
        (self.meter.total() as u32).wrapping_sub(self.starve_cycle.1)
    }

    /// The window a cycle from `from` read when the host accepted again at
    /// `now`: it reopened after the trickle's latest refusal, if that came
    /// in the cycle, so the longest round length between the two
    /// ([`round_between`]); otherwise as [`window_to`] reads it.
    fn window_between(&self, from: Instant, now: Instant) -> f64 {
        let took = now.saturating_duration_since(from).as_secs_f64();
        self.last_loss
            .filter(|&at| at > from)
            .and_then(|at| round_between(at.saturating_duration_since(from).as_secs_f64(), took))
            .unwrap_or_else(|| window_to(from, now))
    }

    /// The window may be shorter than the cycle read: it reopened between
    /// the latest refusal and the acceptance that ended the trickle, and
    /// a trickle a second apart leaves a second's doubt. Where the latest
    /// refusal falls on a shorter round length, the rate that length
    /// gives is a ceiling to probe toward (see
    /// [`ceiling_probe_due`](Self::ceiling_probe_due)). HAProxy's counter
    /// of a second, refused from the opening's flood on under a closed
    /// loop of 64, reopened 1.6 s after the first send; the trickle's next
    /// send, 2.6 s after it, read a window of 2 s, and the host was held at
    /// half its rate for minutes. Under a longer window, the probe's
    /// refusals drain the pace and forget the ceiling (see
    /// [`drain`](Self::drain)).
    fn shorter_window(&self, from: Instant, accepted: u64, secs: f64) -> Option<Ceiling> {
        let last_refused = self.last_loss.filter(|&at| at > from)?;
        let shortest = window_to(from, last_refused);
        self.ceiling_at(accepted, shortest, secs)
    }

    /// The window read as HAProxy's `http_req_rate` counts it: the
    /// previous period weighs into the current one by the share of it
    /// still to run. A cycle that took its count `accepted` and was
    /// refused `refused` times in the first period reopens once that
    /// period's weight falls under the count, a share `accepted / all` of
    /// the period into the next: `took` is `window × (2 − accepted / all)`.
    /// A closed loop of 64 against a window of 10 s, refused as often as
    /// accepted in its first period, read 15 s and held 60 % of the rate.
    /// Believed only where it is a round length (a log of requests that
    /// reopens a window after its length reads no such thing, but for a
    /// coincidence the ceiling's probe pays for), and only as a ceiling.
    /// The length weighed, taken as the ceiling where no round length
    /// fits, lifted HAProxy's counter of 7 s at 10/s from 72 % to 90 %,
    /// but read logs of 10 s and 60 s that count refusals short, and
    /// their refused probes held 3/s over 10 s at 69 % with 22 % refused.
    fn weighted_window(&self, took: Duration, accepted: u64, refused: u32, secs: f64) -> Option<Ceiling> {
        if accepted == 0 {
            return None;
        }
        let all = accepted + u64::from(refused);
        let weighted = took.as_secs_f64() / (2.0 - accepted as f64 / all as f64);
        // The nearest round length, within a tenth under it (the
        // trickle's refusals count in the weight too) or a tenth and a
        // second over, as `round_window` reads.
        let window = ROUND_WINDOWS
            .into_iter()
            .filter(|&w| 0.9 * w <= weighted && over_by_at_most_a_tenth_and_a_second(w, weighted))
            .min_by(|a, b| (weighted / a).ln().abs().total_cmp(&(weighted / b).ln().abs()))?;
        self.ceiling_at(accepted, window, secs)
    }

    /// A cycle that read no round length (`secs`, as measured), at most
    /// half again as long as the round length under it: the trickle's
    /// refusals, counted in the window, held it shut that much longer, and
    /// that length's rate is a ceiling. A log of 60 a minute, filled over
    /// 20 s and trickled into until it reopened after 76 s, read 0.79/s
    /// and held it for the four minutes a probe under a window that
    /// counts refusals waits.
    fn round_below(&self, accepted: u64, secs: f64) -> Option<Ceiling> {
        let under = ROUND_WINDOWS.into_iter().rev().find(|&w| w < secs)?;
        if round_between(secs, secs).is_some() || secs > 1.5 * under {
            return None;
        }
        self.ceiling_at(accepted, under, secs)
    }

    /// A ceiling at `accepted` over `window`, if that window is shorter
    /// than the cycle read (`secs`) and its rate above the estimate by
    /// more than a probe's margin.
    fn ceiling_at(&self, accepted: u64, window: f64, secs: f64) -> Option<Ceiling> {
        let rate = accepted as f64 / window;
        (window < secs && rate > TOP_PROBE_OVER * self.estimate).then_some(Ceiling {
            rate: rate as f32,
            frozen: true,
        })
    }
}
