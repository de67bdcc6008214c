//! The send rate of one host: an estimate of the rate it allows, learned
//! from its answers, and the pace derived from it.
//!
//! Over 400 lines: one state machine whose rules (measure, fit, search,
//! freeze, drain, probe, quota) read and set each other's fields; split by
//! rule, each file would need them all.
//!
//! Built for the limiters servers run (`testkit`'s models):
//!
//! * **At the limit, what the host accepts is its rate.** While a GCRA or a
//!   token bucket refuses some of every slot's requests, it accepts exactly
//!   its rate: the accepted rate of three slots in a row with refusals
//!   throughout (`Meter::at_limit`) is the estimate. A search that meets
//!   its first refusal freezes its pace until such slots measure the limit
//!   (the slot the pace crossed it in does not).
//! * **A pause is not a measurement.** When a loss comes with
//!   `Retry-After`, the host pauses and nothing can be measured at the
//!   limit. Each pause ends a *cycle* of sending, from the first send after
//!   the previous pause to the refused one. A GCRA refuses when its excess
//!   (the most sends in a trailing interval beyond what its rate allows)
//!   passes its burst, so two cycles of different shapes end at the same
//!   excess, and the rate at which their excess curves cross is its rate,
//!   whatever the burst (`fit`), and the middle of the rates all the
//!   recent cycles allow is the estimate. When two cycles allow a wide
//!   range, the pace probes its top at once: one more pause, early, and
//!   three cycles narrow it. Time paused never enters it. A fit is
//!   believed only at or above what the host accepted since the previous
//!   refusal over the time since (no limiter refills faster than its
//!   rate): cycles that a one-request burst ended on requests the network
//!   bunched fit nothing real. A fit whose middle is under that bound but
//!   whose range reaches over it is the middle of what both allow (a
//!   bucket of a second, refilled by each pause, ends cycles of one shape).
//! * **Resume paced.** After a pause the host is paced, never released at
//!   once: a small-burst limiter refuses everything past its burst.
//! * **Search while the estimate is a lower bound.** Until one of the two
//!   measurements above exists, the estimate is a guess (what the host
//!   accepted over the last second of sending, from eight answers up; from
//!   the first for a host not paced yet, since a host of a few requests a
//!   second refuses before eight) and the pace grows 1.25× per 100 ms
//!   while it holds requests back (binding: it held one back within the
//!   last half second or two intervals; in a fleet, also only while the
//!   process sends at half its pace or more, since requests released
//!   together by leased slots bind it too), until it is refused, in its
//!   first second too (a window that counts refusals is filled by every
//!   step past it). The second before that refusal is read again two
//!   round trips later: refusals come back at once and acceptances a
//!   served round trip later, so far away the first reading missed the
//!   last ones (unless the host both accepts and refuses since: at its
//!   limit, the meter measures it).
//! * **Hold below a known rate; probe rarely.** Once measured, the pace is
//!   98 % of the estimate. It probes 3 % higher after a quiet spell (4 s
//!   when losses are cheap; after a loss that paused the host, 30 s or ten
//!   times that pause, whichever is longer) that doubles each time a probe
//!   fails, and at least 400 answers apart; a probe that holds 5 s raises
//!   the estimate, and starts a chain: the next probe comes at once and
//!   goes twice as far, held for less time in proportion (but as long as
//!   its overshoot takes to spend a burst of 50), and a refused one is
//!   followed, soon, by one halfway (in ratio) to it; a loss at the hold
//!   ends the chain. Refusals at the hold step it back to what was
//!   accepted (from the first to the latest acceptance since the cut when
//!   it was steady, exact at a few requests a second; counted over half a
//!   second at least). Pauses at the hold
//!   after cycles under 2 s, in a row, cut 2, 4, 8, 15 %; from the second,
//!   halfway (in ratio) to what the host accepted since its last refusal.
//! * **Capacity that fell comes back** (`recovery.rs`): after an
//!   established rate fell by a third, probes come within seconds and
//!   double the pace, back up to that rate.
//! * **Limiters that count refusals.** When refusals keep coming for
//!   requests sent at or below the rate the host accepted (eight answers
//!   since the cut, refused three to one: a GCRA driven past its rate by a
//!   guess its burst inflated still accepts its rate; or near it, a
//!   search frozen just past it), sending on keeps its window full: the
//!   pace drains at half the estimate, then holds at 95 % of it (such a
//!   window holds the pace's jitter). The estimate is read again then,
//!   with every acceptance of the first second answered, and over the
//!   second that ended at the first refusal (far away, the last second
//!   misses the first acceptances; not within two round trips of a cut,
//!   when a far GCRA's refusals come back before its acceptances and read
//!   three to one too). A window longer
//!   than a second stays full at any pace over its average, and every
//!   refusal stays in it for a window: refusals with nothing accepted for
//!   a second cut the pace to a trickle (a thirty-second, then halves
//!   after each second with eight refusals more) until the window drains;
//!   what it accepted over the cycle until then, about a window's worth
//!   over a window's length, is the rate held.
//! * **Refusals that do not follow the pace** (a server that refuses some
//!   requests whatever the rate: their share stays after a cut of 30 % or
//!   more) say nothing about a rate: no pace from them for 10 s.
//! * **Quotas set the pace directly**: `remaining / time to reset`, and no
//!   send before the reset once the quota is spent (`quota.rs`).
//! * **In a fleet, the fleet's answers bound the paces together**: a
//!   process's own reading of the host is its share of a race. When the
//!   fleet was refused lately, with no `Retry-After` pause in its answers'
//!   span, and the live processes' paces summed to more than the most the
//!   fleet was accepted in a second, each measured estimate is cut by the
//!   same factor (`on_fleet_load`, `fleet::answers`).

use std::time::Duration;

use tokio::time::Instant;

use super::fit::{fit_cycles, peak_rate, peak_rate_over, Fit, CYCLES_KEPT, FIT_OVER_PEAK, SEARCH_STEP};
use super::fleet_fit::{Finished, FleetCycles, MergedCycle};
use super::meter::Meter;
use super::quota::QuotaWindows;
use super::recovery::{Recovery, PAUSES_APART};
use super::spacing::Spacing;
use crate::retry_after::QuotaWindow;
use crate::tally::Tally;

/// The fleet's answers cut the pace at most once per this much of them
/// (ms): the paces they are compared with are a lease old.
const LOAD_CUTS_APART_MS: u64 = 2000;
/// The span of the fleet's answers a cut reads (`fleet::answers::KEPT`),
/// and a little more: they lag a lease.
const LOAD_SPAN: Duration = Duration::from_millis(6500);

/// The pace as a share of a measured rate.
pub(crate) const HOLD: f64 = 0.98;
/// The pace under a limiter that counts refusals: its window holds the
/// jitter of the pace, so it needs more room.
const COUNTING_HOLD: f64 = 0.95;
/// Growth per search step while the estimate is a guess.
const SEARCH_GROWTH: f64 = 1.25;
/// A probe raises the pace this much over the hold.
const PROBE_GROWTH: f64 = 1.03;
/// Quiet time before a probe when losses cost nothing but themselves.
const PROBE_WAIT_CHEAP: Duration = Duration::from_secs(4);
/// A burst a larger probe's overshoot must outlast before it counts as
/// held (nginx's `burst=50`, common in its documentation's examples).
const BURST_HIDDEN: f64 = 50.0;
/// A refused probe of a chain this large or larger is followed by one of
/// half its step (in ratio).
const BISECT_FROM: f64 = 1.1;
/// Quiet time before a probe after a pause or refusals that persisted.
const PROBE_WAIT_COSTLY: Duration = Duration::from_secs(30);
const PROBE_WAIT_MAX: Duration = Duration::from_secs(240);
/// The longest wait for a probe, after the longest pauses.
const PROBE_WAIT_LONGEST: Duration = Duration::from_secs(3600);
/// Answers at the hold between probes, at the least.
const PROBE_ANSWERS: f64 = 400.0;
/// A probe that met no loss for this long held: a GCRA's burst hides a
/// probe above its rate until it runs out (50 at 500/s lasts 3 s at 3 %
/// over); a larger burst still hides it, and the refusals at the hold that
/// follow step the estimate back.
const PROBE_HOLDS: Duration = Duration::from_secs(5);
/// Answers needed in slots at the limit for a measurement.
const MIN_AT_LIMIT: u32 = 8;
/// The most send times a cycle keeps (the latest).
const CYCLE_LOG: usize = 4096;
/// A fit whose cycles allow rates this far above it is confirmed by a
/// probe to their top.
const TOP_PROBE_OVER: f64 = 1.04;
/// The farthest such a probe goes over the hold.
const TOP_PROBE_MAX: f64 = 1.25;
/// How long a search frozen at its first loss waits for a measurement.
const FREEZE: Duration = Duration::from_millis(600);
/// A cycle held at the estimate that ends in a pause sooner than this was
/// more than a little too fast.
const SHORT_CYCLE: f64 = 2.0;
/// The least time a count of answers is read as a rate over.
const MIN_SPAN: Duration = Duration::from_millis(500);
/// Answers needed before a share of refusals means anything.
const MIN_EVIDENCE: u32 = 8;
/// How long refusals that ignore the pace are ignored in turn.
const INDIFFERENT: Duration = Duration::from_secs(10);
/// How long refusals with nothing accepted at a pace last before it is cut.
const STARVED: Duration = Duration::from_secs(1);
/// The trickle a pace starved by such refusals is cut to, at first.
const TRICKLE: f64 = 1.0 / 32.0;
/// How long refusals below the estimate drain at half the pace.
const DRAIN: Duration = Duration::from_millis(500);
/// Sends under this share of the pace over a second were set by something
/// else (the concurrency limit): the pace was not in charge.
const WAVES_SHARE: f64 = 0.8;

/// Where the estimate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    /// No loss yet: no pace.
    None,
    /// A lower bound: search upward.
    Guess,
    /// Measured at the limit or from cycles: hold below it.
    Measured,
}

/// One host's rate estimate and pace.
#[derive(Debug)]
pub(crate) struct RateControl {
    min_rate: f64,
    /// The host counts refusals in a window: the pace holds at
    /// [`COUNTING_HOLD`] of a measured rate, not [`HOLD`] (see
    /// [`hold`](Self::hold)).
    counting_window: bool,
    basis: Basis,
    estimate: f64,
    pace: f64,
    /// The pace was last changed by a search step or a cut at this time.
    stepped_at: Instant,
    /// When a loss last set the pace.
    cut_at: Instant,
    /// Answers to requests sent since then: accepted, refused.
    since_cut: (u32, u32),
    /// When the first and the latest of those accepted answers came.
    ok_span: Option<(Instant, Instant)>,
    /// When `since_cut` last started counting (cuts well below the
    /// reference go on counting toward it).
    counted_from: Instant,
    /// The refused share before the latest cut, the pace before it, and
    /// the rate the host accepted then.
    before_cut: Option<(f64, f64, f64)>,
    /// Refusals that did not follow the pace: untold losses are ignored
    /// until then.
    indifferent_until: Option<Instant>,
    /// The pace last held requests back at this time.
    pub(crate) bound_at: Option<Instant>,
    pub(crate) meter: Meter,
    /// Recent sends' gaps and outcomes: a limiter without a burst.
    spacing: Spacing,
    /// How long a served request takes, about.
    served_rtt: Duration,
    /// The current cycle: when sending resumed, and its send times.
    cycle: Option<(Instant, Vec<f32>)>,
    /// The previous cycles' send times, each up to its refusal, the
    /// latest last (at most `CYCLES_KEPT`).
    previous: Vec<Vec<f32>>,
    /// When the request whose refusal began the latest pause was sent.
    told_at: Option<Instant>,
    /// Pauses in a row that ended a cycle held at the estimate within
    /// [`SHORT_CYCLE`].
    short_cycles: u8,
    /// A pause is under way: the next send starts a cycle.
    resume_pending: bool,
    /// When sending last resumed after a pause: rates are counted from
    /// then at the earliest, never over time paused.
    resumed_at: Instant,
    /// Refusals without `Retry-After` in the current cycle: a GCRA's cycle
    /// has none before its end, so such a cycle fits nothing.
    cycle_refused: u8,
    /// Probing: not before this; the pace over the hold while probing.
    probe_after: Instant,
    probe_wait: Duration,
    probing: bool,
    /// The next probe's growth; doubles with each probe that holds.
    probe_step: f64,
    /// The next probe follows one that held, or halves (in ratio) the
    /// step of one of a chain that was refused: held for less time the
    /// larger it is.
    chained: bool,
    /// The probe under way goes to the top of a wide fit's range.
    top_probe: bool,
    /// Refusals below the estimate: half the pace until this.
    drain_until: Option<Instant>,
    /// The highest rate a limiter without a burst may have, by the gaps
    /// it refused (see [`Spacing::no_burst_rates`]), or the pace a search
    /// froze at that never bound: while set, probes go halfway to it, one
    /// after another. Single precision keeps the controller under its
    /// 1 KiB bound.
    ceiling: Option<f32>,
    /// The ceiling is a frozen search's, and a burst may hide a probe
    /// toward it, which then holds as long as a chain's.
    ceiling_frozen: bool,
    /// Nothing accepted for a while: the pace trickles until the host
    /// accepts again.
    starving: bool,
    /// Since when, and from which of the meter's accepted answers, the
    /// current cycle of a window that starves the pace is counted.
    starve_cycle: (Instant, u64),
    /// The latest fresh loss not told to pause.
    last_loss: Option<Instant>,
    /// When the first refused request of the latest episode was sent.
    episode_sent: Option<Instant>,
    /// What a search's first refusal read over the second before it (that
    /// second ended at `cut_at`), with the acceptances still in flight
    /// missing; 0 when there is nothing to read again (see
    /// [`reread_second`](Self::reread_second)). A bare `f32` keeps the
    /// controller under its 1 KiB bound.
    reread: f32,
    /// The quota the server announces, if any: a pace cap and a reset
    /// (boxed: it keeps the controller under its 1 KiB bound).
    quota: Box<QuotaWindows>,
    /// The rate held before the host's capacity fell, probed back to.
    recovery: Recovery,
    /// In a fleet: whether others send to the host too, its seed, and the
    /// cycles the processes share (boxed: most layers have no fleet).
    fleet: Option<Box<FleetCycles>>,
}

impl RateControl {
    pub(crate) fn new(min_rate: f64, now: Instant) -> Self {
        Self {
            min_rate,
            counting_window: false,
            basis: Basis::None,
            estimate: 0.0,
            pace: 0.0,
            stepped_at: now,
            cut_at: now,
            since_cut: (0, 0),
            ok_span: None,
            counted_from: now,
            before_cut: None,
            indifferent_until: None,
            bound_at: None,
            meter: Meter::new(now),
            spacing: Spacing::new(now),
            served_rtt: Duration::ZERO,
            cycle: Some((now, Vec::new())),
            previous: Vec::new(),
            told_at: None,
            short_cycles: 0,
            resume_pending: false,
            resumed_at: now,
            cycle_refused: 0,
            probe_after: now,
            probe_wait: PROBE_WAIT_CHEAP,
            probing: false,
            probe_step: PROBE_GROWTH,
            chained: false,
            top_probe: false,
            drain_until: None,
            ceiling: None,
            ceiling_frozen: false,
            starving: false,
            starve_cycle: (now, 0),
            last_loss: None,
            episode_sent: None,
            reread: 0.0,
            quota: Box::default(),
            recovery: Recovery::default(),
            fleet: None,
        }
    }

    /// The slowest pace (`AdaptiveConfig::min_rate`).
    pub(crate) fn min_rate(&self) -> f64 {
        self.min_rate
    }

    /// The pace now, requests per second, if pacing; steps the search and
    /// the probes first.
    pub(crate) fn rate(&mut self, now: Instant) -> Option<f64> {
        self.step(now);
        self.peek_rate(now)
    }

    /// The pace now, without moving anything: for dashboards.
    pub(crate) fn peek_rate(&self, now: Instant) -> Option<f64> {
        let own = match self.basis {
            Basis::None => None,
            _ => Some(match self.drain_until {
                Some(until) if now < until => (self.estimate * 0.5).max(self.min_rate),
                _ => self.pace,
            }),
        };
        let quota = self.quota.rate(now, self.min_rate);
        match (own, quota) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// No send before this (a spent quota).
    pub(crate) fn not_before(&self, now: Instant) -> Option<Instant> {
        self.quota.not_before(now)
    }

    /// Starts from `rate` learned elsewhere, if nothing was learned here:
    /// held below it when it was measured, searched upward from it when
    /// it is a guess.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn seed(&mut self, now: Instant, rate: f64, measured: bool) {
        if !(rate.is_finite() && rate >= self.min_rate) {
            return;
        }
        // A seed is replaced while it is still the estimate (the fleet's
        // rate or this process's share of it moved), never an own finding.
        let (estimate, fleet) = (self.estimate, self.fleet.get_or_insert_default());
        let reseed = fleet
            .seeded
            .is_some_and(|s| s == estimate && (rate - s).abs() > 0.05 * s);
        if self.basis != Basis::None && !reseed {
            return;
        }
        fleet.seeded = Some(rate);
        self.estimate = rate;
        self.stepped_at = now;
        if measured {
            self.basis = Basis::Measured;
            self.pace = rate * self.hold();
            self.probe_after = now + self.probe_wait;
        } else {
            self.basis = Basis::Guess;
            self.pace = rate;
        }
    }

    /// Whether the estimate is this host's own finding, not a seed.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn estimate_is_own(&self) -> bool {
        self.basis != Basis::None && self.fleet.as_ref().and_then(|f| f.seeded) != Some(self.estimate)
    }

    /// Paces at `rate`, measured, with no probe for an hour: for tests of
    /// what the pace drives.
    #[cfg(test)]
    pub(crate) fn force_rate(&mut self, now: Instant, rate: f64) {
        self.basis = Basis::Measured;
        self.estimate = rate / self.hold();
        self.pace = rate;
        self.probe_after = now + Duration::from_secs(3600);
        self.cut(now);
        self.restart_count(now);
    }

    /// Search steps and probes, driven by time while the pace binds.
    fn step(&mut self, now: Instant) {
        let binding = self.binding(now);
        match self.basis {
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
            Basis::Measured if binding && !self.probing && self.ceiling_probe_due(now) => {
                // Halfway (in ratio) between the hold and the ceiling.
                let ceiling = self.ceiling.map_or(self.estimate, f64::from);
                self.probing = true;
                self.stepped_at = now;
                self.probe_step = (ceiling / (self.estimate * self.hold()))
                    .sqrt()
                    .clamp(1.0, TOP_PROBE_MAX);
                self.pace = self.estimate * self.hold() * self.probe_step;
            }
            Basis::Measured if binding && !self.probing && now >= self.probe_after => {
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
                let top = std::mem::take(&mut self.top_probe);
                self.estimate *= self.probe_step;
                self.pace = self.estimate * self.hold();
                if let Some(ceiling) = self.ceiling {
                    // Toward the ceiling: the next probe at once, halfway
                    // again, until the two are close.
                    if f64::from(ceiling) < self.estimate * TOP_PROBE_OVER {
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
                } else if self.counting_window || self.shared() || top {
                    // Under a window that counts refusals, one step at a
                    // time, and rarely. In a fleet too: a probe of one
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

    /// Whether the pace binds: it held a request back within the last half
    /// second, or the last two intervals at a slower pace (the leader asks
    /// once per slot, so at 2/s it asks every 500 ms).
    fn binding(&self, now: Instant) -> bool {
        // Compared in seconds: this runs on every answer, and most hosts
        // were never held back (`bound_at` is `None`).
        self.bound_at.is_some_and(|at| {
            let window = (2.0 / self.pace.max(1e-3)).clamp(0.5, 60.0);
            now.saturating_duration_since(at).as_secs_f64() < window
        })
    }

    /// Whether this cycle's sends came at half the pace or more lately:
    /// over the last `over`, or four intervals of a slower pace.
    fn sending_at_pace(&self, now: Instant, over: Duration) -> bool {
        self.sent_share(now, over) >= 0.5
    }

    /// The share of the pace this cycle's sends came at lately: over the
    /// last `over`, or four intervals of a slower pace (counted as sent
    /// nothing before the cycle began).
    fn sent_share(&self, now: Instant, over: Duration) -> f64 {
        let Some((start, log)) = &self.cycle else {
            return 0.0;
        };
        let span = over.as_secs_f64().max(4.0 / self.pace.max(1e-3));
        let from = now.saturating_duration_since(*start).as_secs_f64() - span;
        let sent = log.iter().rev().take_while(|&&t| f64::from(t) >= from).count();
        sent as f64 / (self.pace * span).max(1e-9)
    }

    /// Whether a search is sent in waves: a far server's answers come
    /// back together and the concurrency limit lets as many go at once, so
    /// the pace binds inside each wave while over a round trip the sends
    /// fall far short of it. Not in a fleet, where sends wait for leased
    /// slots and reach the pacer together anyway (the fleet's cycles fit
    /// its rate).
    fn searching_in_waves(&self, now: Instant) -> bool {
        self.basis == Basis::Guess
            && !self.shared()
            && !self.sending_at_pace(now, self.served_rtt.max(SEARCH_STEP))
    }

    /// A request is sent now.
    pub(crate) fn on_send(&mut self, now: Instant) {
        if self.resume_pending {
            self.resume_pending = false;
            self.cycle = Some((now, Vec::new()));
            self.cycle_refused = 0;
            self.resumed_at = now;
        }
        if let Some((start, log)) = &mut self.cycle {
            if log.len() >= CYCLE_LOG {
                log.drain(..CYCLE_LOG / 4);
            }
            log.push(now.saturating_duration_since(*start).as_secs_f32());
        }
    }

    /// An answer accepted.
    pub(crate) fn on_accepted(&mut self, now: Instant, sent_at: Instant) {
        self.meter.add(now, sent_at, true);
        self.reread_second(now);
        self.spacing.record(sent_at, true);
        // The round trip of a served request, for the meter's slots to be
        // complete: the latest, or a slowly fading maximum.
        let rtt = now.saturating_duration_since(sent_at);
        // 0.95 of it, in whole nanoseconds (no float round trip).
        self.served_rtt = rtt.max(self.served_rtt - self.served_rtt / 20);
        self.recovery.on_accepted();
        if sent_at >= self.cut_at {
            if self.starving {
                self.fed(now);
            }
            self.since_cut.0 = self.since_cut.0.saturating_add(1);
            self.ok_span = Some((self.ok_span.map_or(now, |(first, _)| first), now));
        }
    }

    /// A refusal (429, 503) or an error, of a request sent at `sent_at`;
    /// `pause` is the `Retry-After` pause it began for the host, if any.
    pub(crate) fn on_loss(&mut self, now: Instant, sent_at: Instant, pause: Option<Duration>) {
        let held =
            (self.basis == Basis::Measured && !self.probing && !self.counting_window && !self.starving)
                .then_some(self.estimate);
        let (probing, step) = (self.probing, self.probe_step);
        self.learn_from_loss(now, sent_at, pause.is_some());
        if !probing {
            // A loss at the hold ends a chain.
            self.chained = false;
        }
        if probing && !self.probing && std::mem::take(&mut self.chained) && step >= BISECT_FROM {
            // A probe of a chain refused: the rate lies between the hold
            // and that probe. The next probe goes halfway (in ratio), soon.
            self.chained = true;
            self.probe_step = step.sqrt();
            self.probe_wait = PROBE_WAIT_CHEAP;
            self.probe_after = now + PROBE_WAIT_CHEAP;
        }
        if let Some(p) = pause {
            // A refused probe will cost a pause as long as this one: probes
            // wait ten such pauses at least, so that they cost at most a
            // tenth of the time (a `Retry-After: 60` against waits of 30 s
            // paused the host half the time). A probe due at once (a wide
            // fit's top) still goes.
            let floor = p.saturating_mul(PAUSES_APART).min(PROBE_WAIT_LONGEST);
            if self.probe_wait < floor {
                self.probe_wait = floor;
                if self.probe_after > now {
                    self.probe_after = self.probe_after.max(now + floor);
                }
            }
        }
        if probing && !self.probing && self.recovery.active() {
            self.recovery.on_probe_refused();
        }
        let fell = self.recovery.on_loss(held, self.estimate);
        if fell || (self.recovery.active() && !self.probing) {
            // Capacity fell: probe back soon, not after the half minute a
            // lasting refusal waits (see `recovery.rs` for what a refused
            // probe costs and how the waits grow).
            self.probe_wait = self.recovery.wait(pause);
            let due = now + self.probe_wait.max(self.answers_between_probes());
            self.probe_after = self.probe_after.min(due);
        }
    }

    /// What a loss teaches (see [`RateControl::on_loss`]).
    fn learn_from_loss(&mut self, now: Instant, sent_at: Instant, told: bool) {
        self.meter.add(now, sent_at, false);
        self.reread_second(now);
        self.spacing.record(sent_at, false);
        if self.quota.active(now) || self.quota.read_too_early(now) {
            // The quota explains the refusal and already sets the pace; it
            // was read as resetting too early, if anything.
            self.quota.on_refused();
            return;
        }
        // A refusal here is this process's own finding: a fleet's seed no
        // longer replaces what it does to the pace.
        if let Some(f) = self.fleet.as_mut() {
            f.seeded = None;
        }
        if told {
            self.on_told(now, sent_at, true);
            return;
        }
        if sent_at >= self.cut_at {
            self.since_cut.1 = self.since_cut.1.saturating_add(1);
        }
        self.cycle_refused = self.cycle_refused.saturating_add(1);
        // A loss of a request sent before the pace last changed was answered
        // by that change.
        if sent_at < self.cut_at
            || self.drain_until.is_some_and(|until| now < until)
            || self.indifferent_until.is_some_and(|until| now < until)
        {
            return;
        }
        let was = self.rate(now);
        let holding = self.basis == Basis::Measured && !self.probing;
        // Losses within a second, or within a few sends at a slow pace,
        // are one episode.
        let episode = match was {
            Some(r) if r > 0.0 => Duration::from_secs_f64((4.0 / r).clamp(1.0, 30.0)),
            _ => Duration::from_secs(1),
        };
        let in_episode = self
            .last_loss
            .is_some_and(|at| now.saturating_duration_since(at) < episode);
        self.last_loss = Some(now);
        if !in_episode {
            self.episode_sent = Some(sent_at);
        }
        if self.starved(now, was) {
            return;
        }
        // What the host accepted over the last second of sending (not of
        // pause), if enough to be a rate.
        // `last_second` is that whatever the count, a lower bound still at
        // a few a second.
        let (count, span) = self.meter.accepted_since(now, self.resumed_at);
        let last_second = f64::from(count) / span.as_secs_f64().max(1.0);
        let short = if count >= MIN_EVIDENCE && span >= Duration::from_millis(250) {
            last_second
        } else {
            0.0
        };
        // At the limit a GCRA accepts its rate; a limiter that accepts in
        // bursts (a sliding window) reads higher there than over the
        // second, and its second is the better measure.
        let at_limit = self
            .meter
            .at_limit(now, MIN_AT_LIMIT, self.cut_at, self.served_rtt)
            .filter(|&m| m <= short * 1.1);
        // A limiter without a burst accepts well under its rate at the
        // limit; the gaps of what it accepted and refused measure it.
        let gaps = self.gap_rates(now);
        let at_limit = match gaps {
            Some((r, _)) => Some(at_limit.map_or(r, |m| m.max(r))),
            None => at_limit,
        };
        // Only requests sent at the current pace say anything about it.
        let at_or_below = was.is_some_and(|r| r <= self.estimate * 1.001) && sent_at >= self.cut_at;
        // Slots at the limit measure it: a GCRA whose estimate was high
        // shows its rate there, and that wins over the guesses below.
        if let (Some(m), true) = (at_limit, in_episode && at_or_below) {
            self.estimate = m.max(self.min_rate);
            self.basis = Basis::Measured;
            self.bound_by_gaps(gaps);
            self.settle(now);
            return;
        }
        if in_episode && at_or_below && self.refusals_ignore_the_pace(now) {
            // Cut below what the host accepted, and it refuses as large a
            // share as before, while accepting plenty: its refusals do not
            // follow the pace (a server that refuses some requests whatever
            // the rate). They say nothing about its rate, and cutting on
            // them would only stall the crawl: no pace from them for a
            // while (the concurrency limit still holds the host).
            self.basis = Basis::None;
            self.before_cut = None;
            self.indifferent_until = Some(now + INDIFFERENT);
            return;
        }
        let (a, r) = self.since_cut;
        // Refused three to one at a pace within 1.5× of what the host
        // accepted in a second: a GCRA or a bucket refuses at most a third
        // there, even when its burst doubled that count.
        let near = was.is_some_and(|r| r <= self.estimate * 1.5) && sent_at >= self.cut_at;
        // Refusals come back at once and acceptances a round trip later,
        // and only answers to requests sent since the cut count: within two
        // round trips of a cut, a far GCRA's answers read three to one too
        // (a search cut every 100 ms, 100 ms away, drained 15/s as a
        // window and held it at 88 %).
        let answered = self.cut_answered(now);
        if in_episode && near && short > 0.0 && a + r >= MIN_EVIDENCE && r > 3 * a && answered {
            // Refusals keep coming although the pace is at or near what the
            // host accepted in a second (a search frozen just past it): a
            // limiter that counts them. Sending on keeps its window full;
            // drain, and keep that count as its rate: read again now, with
            // the first refusal's acceptances all answered (that refusal
            // came back before the acceptances still in flight and read
            // 85 % of a window's count).
            // And what the host accepted of the requests sent in the
            // second before the episode's first refusal: all of them are
            // answered now, and such a window refused the first request
            // past its count (200 ms away, the count over the last second
            // by answer or by send read 37 of a window of 50: either the
            // last acceptances or the first were missing). At most what
            // four round trips of acceptances (and one) make up over the
            // last second's: a window longer than a second accepted a
            // whole flood in that second.
            let since = self
                .episode_sent
                .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
            let cap = self.read_again_at_most(short, since);
            let window = self
                .episode_sent
                .and_then(|at| self.meter.accepted_in_second_to(now, at))
                .map_or(0.0, |n| f64::from(n).min(cap));
            self.estimate = self.estimate.max(short).max(window);
            self.drain_until = Some(now + DRAIN);
            self.basis = Basis::Measured;
            self.counting_window = true;
            self.probing = false;
            self.costly_probe();
            // The pace after the drain; the evidence since the cut stays.
            self.pace = (self.estimate * self.hold()).max(self.min_rate);
            return;
        }
        if holding && in_episode {
            match at_limit {
                // The slots at the limit measure it, up or down.
                Some(m) => {
                    self.estimate = m.max(self.min_rate);
                    self.bound_by_gaps(gaps);
                }
                // Sending above the estimate (a search frozen at its first
                // loss) without a measurement yet: back to the estimate.
                None if was.is_some_and(|r| self.above_hold(r))
                    && now.saturating_duration_since(self.cut_at) >= FREEZE =>
                {
                    // What it accepted while frozen above it: a GCRA's rate,
                    // or nothing from a window that counts refusals.
                    self.frozen_search_refused(now, was);
                }
                // Refusals keep coming at the hold, too few to measure: the
                // hold is a little high. Step back once per episode's worth
                // of answers, or sooner when the host refuses as many as it
                // accepts: at a few a second eight acceptances take seconds
                // of such refusals (a burst of 50 at 5/s ran out into a
                // pace of 11/s, refused half its sends for 1.5 s), but not
                // before half a second is counted: sooner, the step is 2 %,
                // and the next cut restarts the count (10/s with a burst of
                // 50 stepped from 24/s to 10/s that way over 6 s).
                None if was.is_some_and(|r| !self.above_hold(r))
                    && (self.since_cut.0 >= MIN_EVIDENCE
                        || (self.since_cut.0 >= MIN_EVIDENCE / 2
                            && self.since_cut.1 >= self.since_cut.0
                            && now.saturating_duration_since(self.cut_at) >= MIN_SPAN)) =>
                {
                    self.step_back_at_hold(now);
                }
                None => return,
            }
            self.settle(now);
            return;
        }
        if self.probing {
            self.top_probe = false;
            // The probe found the limit: back to the hold, probe later. A
            // probe toward a ceiling refused lowers it to the probe's pace.
            self.probing = false;
            self.probe_refused();
            self.probe_step = PROBE_GROWTH;
            if self.ceiling.is_some() {
                self.ceiling = was
                    .filter(|&c| c > TOP_PROBE_OVER * self.estimate)
                    .map(|c| c as f32);
            }
            self.settle(now);
            return;
        }
        let before = (self.estimate, self.basis);
        // Less than a second of sending: what was accepted is a lower bound
        // (counted over a second), to be searched upward from.
        let young = now.saturating_duration_since(self.resumed_at) < Duration::from_secs(1);
        if self.basis == Basis::Guess && !self.binding(now) && short > 0.0 {
            // Refused while the pace held nothing back: the concurrency
            // limit (a far server, requests answered in waves) set the
            // sends, and what was accepted is a lower bound still. The
            // search goes on from it; the next refusal with the pace in
            // charge tells the limit.
            self.estimate = self.estimate.max(short);
            self.pace = self.pace.max(self.estimate);
            return;
        }
        // Sent in waves, a slot accepted a wave's share: a lower bound (a
        // GCRA with a one-request burst 200 ms away read 34 % of its rate
        // there, and held it). The search starts again from that bound: a
        // pace under the rate spreads the waves, and the next refusal comes
        // with the pace in charge.
        if short > self.estimate && self.searching_in_waves(now) {
            self.estimate = short;
            self.settle(now);
            return;
        }
        if self.basis == Basis::Guess && was.is_some_and(|r| r > self.estimate * 1.001) {
            // The search went past the limit: it lies between the estimate
            // and the pace. The pace stops growing where it is, so the next
            // refusals, a full slot of them, measure the limit (the slot the
            // pace crossed it in does not); without a measurement it goes
            // back to the estimate, which a limiter whose window the search
            // filled does not lower. At a few a second, what it accepted
            // over the last second is a lower bound too, though under eight:
            // read now, with the acceptances that were in flight at the
            // first refusal answered (7/s 100 ms away read 5/s there, and
            // held it).
            self.estimate = self.estimate.max(last_second);
            self.basis = Basis::Measured;
            // Refused below that bound (a window still full of the opening
            // flood): held under it, not frozen where it was refused.
            let held = self.estimate * self.hold();
            self.pace = was.map_or(held, |r| r.max(held)).max(self.min_rate);
            self.cut(now);
            // Refusals come back at once, acceptances a served round trip
            // later: read the same second again once they are in, and
            // the answers to a round trip of sends since.
            self.reread = last_second as f32;
            self.restart_count(now);
            return;
        }
        match at_limit {
            Some(m) if young => {
                self.estimate = m.max(short);
                self.basis = Basis::Guess;
            }
            Some(m) => {
                self.estimate = m;
                self.basis = Basis::Measured;
                self.bound_by_gaps(gaps);
            }
            // At a few requests a second no second holds eight answers:
            // the answers since the cut are the evidence there (a pace 6 %
            // over a one-request burst at 5/s was refused every three
            // seconds, and never stepped back).
            None if self.basis == Basis::Measured
                && short == 0.0
                && self.since_cut.0 >= MIN_EVIDENCE
                && was.is_some_and(|r| !self.above_hold(r)) =>
            {
                self.step_back_at_hold(now);
            }
            None if self.basis == Basis::Measured && short > 0.0 => {
                // A refusal at a known rate, with nothing to measure: the
                // limit is a little lower (or a probe that seemed to hold
                // filled a window that counts refusals). Step back and
                // probe later. But a search frozen above the estimate
                // (the concurrency limit set the sends, in waves) and
                // refused again after a lull is bound by what it accepted
                // since the cut: 50 ms away, a one-request burst at
                // 200/s refused a wave's tail while accepting 200/s, and
                // stepped back from a ramp's reading to 57 % of its rate.
                if was.is_some_and(|r| self.above_hold(r)) {
                    self.frozen_search_refused(now, was);
                } else {
                    self.estimate = (self.estimate * self.hold()).max(self.min_rate);
                }
                self.costly_probe();
            }
            None if short == 0.0 && (self.basis != Basis::None || count == 0) => {
                // Too little accepted lately to guess a rate from: the pace
                // stays as it is (none before anything was accepted: the
                // concurrency limit holds the host).
                return;
            }
            None if short == 0.0 => {
                // A slow host (a few requests a second) refuses before eight
                // answers: what it accepted over the last second is a lower
                // bound still, and no pace at all would send at the whole
                // demand into its refusals for ever.
                self.estimate = last_second.max(self.min_rate);
                self.basis = Basis::Guess;
            }
            None => {
                self.estimate = short.max(self.min_rate);
                self.basis = Basis::Guess;
            }
        }
        if (self.basis, self.basis == Basis::Guess) == (before.1, true)
            && (self.estimate - before.0).abs() <= 0.02 * before.0
        {
            // The same guess again: the cut already made stands, and the
            // answers since it keep counting.
            return;
        }
        self.settle(now);
    }

    /// Another process of a fleet was refused with `Retry-After`, and the
    /// host is paused here too: this cycle ends now as if with a refusal of
    /// its own. Each process's sends are its share of the fleet's, so a
    /// GCRA's cycles fit to its share of the rate and burst.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn on_fleet_pause(&mut self, now: Instant) {
        if self.quota.active(now) {
            return;
        }
        self.on_told(now, now, false);
    }

    /// In a fleet, this process's share of the host (one over the live
    /// processes; 1 alone).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn set_share(&mut self, share: f64) {
        self.fleet.get_or_insert_default().share = Some(share);
    }

    /// In a fleet, this process's share of the host as last set (1 before).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn fleet_share(&self) -> f64 {
        self.fleet
            .as_ref()
            .and_then(|f| f.share)
            .unwrap_or(1.0)
            .clamp(1e-3, 1.0)
    }

    /// In a fleet, counts an answer at `now` for the fleet's answers
    /// (`fleet::answers`): accepted, or refused for rate.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn count_fleet_answer(&mut self, now: Instant, accepted: bool) {
        self.fleet.get_or_insert_default().count_answer(now, accepted);
    }

    /// In a fleet, the answers counted since the fleet last took them.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn fleet_answers(&mut self) -> &mut Tally {
        &mut self.fleet.get_or_insert_default().answers
    }

    /// Other processes of a fleet send to the host too.
    fn shared(&self) -> bool {
        self.fleet.as_ref().is_some_and(|f| f.shared())
    }

    /// In a fleet, the cycle that ended last, for the fleet to merge
    /// (once).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn take_finished_cycle(&mut self) -> Option<Finished> {
        self.fleet.as_mut()?.finished.take()
    }

    /// In a fleet, the sequence number of the latest fleet cycle this
    /// controller read (0 for none).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn fleet_cycles_seen(&self) -> u64 {
        self.fleet.as_ref().map_or(0, |f| f.seen)
    }

    /// In a fleet: while the host refused, the processes' paces together
    /// ran over the most the fleet's answers show accepted in a second
    /// (`fleet::answers`). Each process's reading of the host was its share
    /// of a race, and their sum was too high; every process cuts its
    /// estimate by `factor` (bringing the sum under that peak), as a cut
    /// of its own: refusals of requests sent before it are no new loss. At
    /// most once per [`LOAD_CUTS_APART_MS`] of the fleet's answers (`through_ms`
    /// is where they end): the paces summed are a lease old, and the next
    /// reading must show this cut. Only a measured estimate is cut: a
    /// search is stopped by its own refusals. Not while the pace trickles
    /// for a window to drain, which is lower already; nor within the fleet's
    /// answers' span of a `Retry-After` pause: a second of sending cut
    /// short by a pause holds less than the rate, and the fleet's cycles
    /// measure such a limiter (`fleet_fit.rs`).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn on_fleet_load(&mut self, now: Instant, through_ms: u64, factor: f64) {
        let paused_lately = self.resume_pending
            || (self.told_at.is_some() && now.saturating_duration_since(self.resumed_at) < LOAD_SPAN);
        let Some(fleet) = self.fleet.as_mut() else {
            return;
        };
        let recent = through_ms < fleet.load_cut_ms.saturating_add(LOAD_CUTS_APART_MS);
        if !fleet.shared()
            || recent
            || paused_lately
            || self.basis != Basis::Measured
            || self.starving
            || factor.is_nan()
            || factor >= 1.0
        {
            return;
        }
        fleet.load_cut_ms = through_ms;
        self.estimate = (self.estimate * factor.max(0.5)).max(self.min_rate);
        self.probing = false;
        self.settle(now);
    }

    /// The fleet's latest cycle: when it and the fleet's cycles before it
    /// fit a GCRA, this process paces its `share` of that rate, whatever
    /// its own cycles fitted (see `fleet_fit.rs`). The fleet's opening
    /// flood sets where its search starts.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn on_fleet_cycle(&mut self, now: Instant, cycle: MergedCycle<'_>, share: f64) {
        let Some(fleet) = self.fleet.as_mut() else {
            return;
        };
        let MergedCycle {
            seq,
            end_us,
            fits,
            processes,
            complete,
            log,
        } = cycle;
        fleet.seen = seq;
        let alone = !fleet.shared();
        // This process's view of the host: its estimate over the part of
        // the fleet's sends it sent (not its share: after a search, one
        // process may be sending most of them).
        let part = (fleet.own_sends as f64 / log.len().max(1) as f64).min(1.0);
        let view = if self.estimate > 0.0 && part > 0.0 {
            self.estimate / part
        } else {
            0.0
        };
        let fitted = fleet.fit(end_us, fits, log, view);
        // Every process that sent in the cycle takes a share of it: a
        // process sending a few a second leases rarely, and the others
        // counted it out (three processes of four took a third each of a
        // fit, and were refused within a second).
        let share = share.min(1.0 / processes.max(1) as f64);
        if !fits && seq == 1 && !alone && self.basis == Basis::Guess {
            // The fleet's opening flood: each process's part of it is
            // whatever its requests raced to, and so was its guess (1 to
            // 42/s for four processes, where the flood took 55). A process
            // that guessed 1/s searched at a few a second, heard of each
            // pause at its next send, up to a second late, and the others
            // merged the fleet's cycles without its sends. Each process
            // searches from its share of what the fleet was accepted
            // (every send up to the refused one) over its sending time,
            // a second at least, instead.
            let taken = log.iter().filter(|&&t| t <= 0.0).count() as f64;
            let secs = f64::from(-log.first().copied().unwrap_or(0.0)).max(1.0);
            let guess = (taken / secs * share).max(self.min_rate);
            if guess > self.estimate {
                self.estimate = guess;
                self.pace = guess;
            }
        }
        if alone || self.quota.active(now) {
            // Alone, its own cycles are the fleet's, and its own fit
            // (which knows its probes) stands. Quota headers set the pace.
            return;
        }
        // A fit far under this process's own view of the host is not
        // believed when that view rests on enough of its own sends and the
        // merge may have missed a process's sends, which fits low: its own
        // view stands, and the next pause fits again. A view from a few
        // sends (a small part of a short cycle: one process read 892/s
        // from ten of 161) says nothing, and refused an exact fit. Nor
        // does any view against a merge of every live process's sends:
        // a process's own fit of its part of a search read 818/s where
        // the fleet's fit was 500, and the process that kept it resumed
        // at 430 of the fleet's 500/s and was refused within 0.2 s.
        let credible = fleet.own_sends >= VIEW_SENDS && !complete;
        let Some(rate) = fitted
            .map(|f| f.rate)
            .filter(|&r| !credible || r >= FLEET_FIT_UNDER_VIEW * view)
        else {
            if fits
                && fitted.is_none()
                && fleet.paired()
                && !fleet.fitted
                && fleet.opening_probes < OPENING_PROBES
            {
                // The fleet's first paced cycles fit nothing (a send's
                // jitter on the network moves a merged cycle's excess by a
                // few), and each process paces what it fitted of its own
                // share: four such fits summed to 76-105 % of the rate, and
                // a sum under it held until the next probe, half a minute
                // on. Every process probes half as far again now: a sum
                // under the rate is refused within a second or two, a
                // cycle at one pace, which the fleet fits with the one
                // held before it.
                fleet.opening_probes += 1;
                self.probe_after = now;
                self.probe_step = OPENING_PROBE;
            }
            return;
        };
        fleet.fitted = true;
        // What its own cycles said (their fit, the probes it planned, a
        // fall from a share it held alone) gives way.
        self.estimate = (rate * share).max(self.min_rate);
        self.basis = Basis::Measured;
        self.pace = (self.estimate * self.hold()).max(self.min_rate);
        self.probing = false;
        self.chained = false;
        self.probe_step = PROBE_GROWTH;
        self.recovery = Recovery::default();
        self.probe_after = now + self.probe_wait.max(self.answers_between_probes());
        if let Some(f) = fitted.filter(|f| f.cycles == 2 && f.top > TOP_PROBE_OVER * f.rate) {
            // As with its own cycles: two allow a wide range of rates, and
            // a probe at its top now narrows it (every process at once: the
            // fleet's pace goes to the top).
            self.probe_after = now;
            self.probe_step = (f.top / (f.rate * self.hold())).min(TOP_PROBE_MAX);
            self.top_probe = true;
        }
    }

    /// A loss with `Retry-After`: the cycle since the last pause ends with
    /// the refused request, sent at `sent_at`.
    /// `told`: the refusal was this process's own (not a fleet's pause).
    fn on_told(&mut self, now: Instant, sent_at: Instant, told: bool) {
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
            fleet.finished = Some(Finished {
                end: sent_at,
                told,
                // A flood is no shape to fit a fleet's rate to: each
                // process's share of it is whatever its requests raced to.
                fits: fits && !unpaced,
                log: flood.unwrap_or_else(|| log.clone()),
            });
        }
        if !fits {
            // Refusals without `Retry-After` came before this one: not the
            // cycle of a GCRA, nothing to fit or guess from. The pause alone.
            self.previous.clear();
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
                self.previous.clear();
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
        let fitted = fit_cycles(&self.previous, &log, self.estimate)
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
        let accepted = log.len().saturating_sub(1) as f64;
        let secs = f64::from(-log.first().copied().unwrap_or(0.0));
        let paced = match self.basis {
            Basis::None => None,
            _ => Some(self.pace),
        };
        if self.previous.len() >= CYCLES_KEPT {
            self.previous.remove(0);
        }
        self.previous.push(log);
        self.costly_probe();
        let probed = std::mem::take(&mut self.probing);
        if probed {
            self.probe_refused();
            self.probe_step = PROBE_GROWTH;
        }
        match fitted {
            Some(f) if !(probed && self.chained && f.rate < self.estimate) => {
                self.estimate = f.rate;
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
                self.estimate = (accepted / secs.max(1.0)).max(self.min_rate);
                self.basis = Basis::Guess;
            }
        }
        if self.estimate < floor {
            // Below what the host provably allows: a lower bound to search
            // upward from.
            self.estimate = floor;
            self.basis = Basis::Guess;
        }
        if let Some(r) = self.gap_rates(now).map(|(r, _)| r).filter(|&r| r > self.estimate) {
            // A limiter without a burst: its gaps measure it.
            self.estimate = r;
            self.basis = Basis::Measured;
        }
        self.settle(now);
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

    /// A search frozen above the estimate was refused again: what the
    /// host accepted since the cut is a lower bound. When the sends fell
    /// well short of the frozen pace (`was`) over the last second, the
    /// concurrency limit set them, in waves, and that pace, never in
    /// charge, is a ceiling to probe toward. 50 ms away, a one-request
    /// burst at 500/s refused a wave's tail at 400/s under a pace of
    /// 689/s in one run of four, and was held there for the half minute a
    /// costly probe waits: 79 % of its rate.
    fn frozen_search_refused(&mut self, now: Instant, was: Option<f64>) {
        self.estimate = self.estimate.max(self.accepted_since_cut(now));
        let second = Duration::from_secs(1);
        let waves = now.saturating_duration_since(self.resumed_at) >= second
            && self.sent_share(now, second) < WAVES_SHARE;
        if let Some(ceiling) = was.filter(|&r| waves && r > TOP_PROBE_OVER * self.estimate) {
            self.ceiling = Some(ceiling as f32);
            self.ceiling_frozen = true;
        }
    }

    /// Refusals at the hold, too few to measure: what the host accepted
    /// since the cut, if the pace was above it all along; a small step back
    /// otherwise, and when the cut is too recent for its count to be a rate
    /// (a window that counts refusals accepts in bursts).
    fn step_back_at_hold(&mut self, now: Instant) {
        let counted = now.saturating_duration_since(self.cut_at) >= MIN_SPAN;
        let accepted = if counted {
            self.accepted_since_cut(now)
        } else {
            f64::MAX
        };
        // A count of a few acceptances since the cut reads up to one
        // interval low (50 ms away, four in 0.46 s held 10/s at 8.5/s for
        // the half minute a costly probe waits); what the host accepted
        // over the episode, once it is long enough to count, is a floor.
        let floor = self.accepted_in_episode(now).unwrap_or(0.0);
        self.estimate = accepted
            .min(self.estimate * self.hold())
            .max(floor.min(self.estimate))
            .max(self.min_rate);
        self.costly_probe();
    }

    /// The rate the host accepted the requests sent since the current
    /// refusal episode began at (so with no burst left), over the last
    /// second the meter keeps, once three quarters of a second of them is
    /// answered and enough were accepted to be a rate; `None` before.
    fn accepted_in_episode(&mut self, now: Instant) -> Option<f64> {
        let since = self.episode_sent?.max(self.resumed_at);
        let (count, span) = self.meter.accepted_since(now, since);
        // Requests sent in the last round trip are not answered yet.
        let answered = span.checked_sub(self.served_rtt)?;
        (answered >= Duration::from_millis(750) && count >= MIN_EVIDENCE)
            .then(|| f64::from(count) / answered.as_secs_f64())
    }

    /// The rate the host accepted requests sent since the latest cut at.
    /// While it accepted steadily (no gap of two intervals at either end),
    /// the intervals between its first and latest acceptance measure it
    /// exactly, whatever the count: a GCRA driven past its rate accepts one
    /// request per interval. Otherwise (acceptance in bursts, or stopped),
    /// the count over the time it was counted in (cuts with few answers
    /// between them keep counting; over the time since the latest cut
    /// alone, 3/s read 5.2/s).
    fn accepted_since_cut(&self, now: Instant) -> f64 {
        let a = self.since_cut.0;
        let coarse = self.count_rate(self.counted_from, now);
        let Some((first, last)) = self.ok_span else {
            return coarse;
        };
        let span = last.saturating_duration_since(first).as_secs_f64();
        if a < MIN_EVIDENCE || span <= 0.0 {
            return coarse;
        }
        let exact = f64::from(a - 1) / span;
        let gap = 2.0 / exact;
        // Requests sent in the last round trip are not answered yet.
        let lead = first.saturating_duration_since(self.cut_at).as_secs_f64() - self.served_rtt.as_secs_f64();
        let tail = now.saturating_duration_since(last).as_secs_f64();
        if lead <= gap && tail <= gap {
            exact
        } else {
            coarse
        }
    }

    /// Refused for a second with nothing accepted, eight to one since the
    /// cut: a window that counts refusals and is longer than a second
    /// (HAProxy's `http_req_rate(10s)`) stays full at any pace over its
    /// average, and no answer at such a pace ever measures it. Each refusal
    /// sent meanwhile stays in the window for its whole length: the pace
    /// trickles at a thirty-second until the window drains (see `fed`),
    /// and halves from there after each second with eight refusals more,
    /// about eight refusals a step; it holds as under any limiter that
    /// counts refusals.
    fn starved(&mut self, now: Instant, was: Option<f64>) -> bool {
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
    fn fed(&mut self, now: Instant) {
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

    /// Since the latest cut, at or below the accepted rate, the host
    /// refused at least as large a share as before it, and accepted enough
    /// for that share to mean something.
    fn refusals_ignore_the_pace(&self, now: Instant) -> bool {
        let (a, r) = self.since_cut;
        let Some((share_before, pace_before, accepted_before)) = self.before_cut else {
            return false;
        };
        // Only a real cut tests whether the refusals follow the pace, and
        // only once its answers are in: refusals come back at once and
        // acceptances a round trip later (100 ms away, a GCRA with a burst
        // of 50 answering 503 read as refusing whatever the pace, and went
        // unpaced for ten seconds, refusing two sends in three).
        if self.pace > 0.7 * pace_before || !self.cut_answered(now) {
            return false;
        }
        let share = f64::from(r) / f64::from(a + r);
        // A rate limiter driven past its rate refuses a share that falls
        // with the pace, slowly when the pace is far past it (a guess its
        // burst inflated): its share is judged on twice the evidence,
        // unless the rate it accepted fell with the pace as well, as a
        // server's that refuses whatever the rate does.
        let accepted_fell = self.accepted_since_reference(now) <= 0.85 * accepted_before;
        let evidence = if accepted_fell {
            MIN_EVIDENCE
        } else {
            2 * MIN_EVIDENCE
        };
        a >= MIN_EVIDENCE / 2
            && a + r >= evidence
            && share >= 0.2
            && share_before >= 0.2
            && share >= 0.8 * share_before
    }

    /// The rate the host accepted requests sent since `counted_from` at.
    fn accepted_since_reference(&self, now: Instant) -> f64 {
        self.count_rate(self.counted_from, now)
    }

    /// The accepted count since the cut over the time since `from`, less
    /// the round trip whose requests are not answered yet.
    fn count_rate(&self, from: Instant, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(from).as_secs_f64() - self.served_rtt.as_secs_f64();
        f64::from(self.since_cut.0) / secs.max(0.001)
    }

    /// Starts counting the answers since the cut afresh.
    fn restart_count(&mut self, now: Instant) {
        self.since_cut = (0, 0);
        self.ok_span = None;
        self.counted_from = now;
    }

    /// How long the probe under way must meet no loss to count as held:
    /// [`PROBE_HOLDS`], or less for a larger probe of a chain, a recovery
    /// or toward a ceiling (its overshoot spends a burst that much sooner;
    /// a second for a limiter without a burst), as long as its
    /// overshoot would spend a burst of [`BURST_HIDDEN`] requests, and a
    /// second at the least.
    fn probe_holds(&self) -> Duration {
        if self.ceiling.is_some() && !self.ceiling_frozen {
            // A limiter without a burst: nothing hides a probe past it.
            return Duration::from_secs(1);
        }
        if !(self.recovery.active() || self.chained || self.ceiling.is_some()) {
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
    fn ceiling_probe_due(&self, now: Instant) -> bool {
        self.ceiling.is_some()
            && now.saturating_duration_since(self.cut_at) >= SEARCH_STEP.max(2 * self.served_rtt)
    }

    /// The rates a limiter without a burst may have, by the gaps of this
    /// process's sends (see [`Spacing::no_burst_rates`]). None in a fleet:
    /// one process's gaps are not what the limiter sees, and with two
    /// refusals enough to tell, the interleaved sends of others could
    /// pass for a clean separation.
    fn gap_rates(&self, now: Instant) -> Option<(f64, f64)> {
        if self.shared() {
            return None;
        }
        self.spacing.no_burst_rates(self.answered_before(now))
    }

    /// Whether `pace` is over the hold (a search frozen past it, a probe),
    /// beyond float rounding.
    fn above_hold(&self, pace: f64) -> bool {
        pace > self.estimate * self.hold() * 1.001
    }

    /// Two round trips have passed since the latest cut: the answers to
    /// what was sent since it are in, acceptances too, not only the
    /// refusals that come back first.
    fn cut_answered(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.cut_at) >= 2 * self.served_rtt
    }

    /// Sends before this have their answers in, served ones too.
    fn answered_before(&self, now: Instant) -> Instant {
        now.checked_sub(self.served_rtt).unwrap_or(now)
    }

    /// After a measurement from the gaps of a limiter without a burst
    /// (`gaps`: the rates they allow, from [`gap_rates`], so never in a
    /// fleet), the top of them is a ceiling.
    ///
    /// [`gap_rates`]: RateControl::gap_rates
    fn bound_by_gaps(&mut self, gaps: Option<(f64, f64)>) {
        self.ceiling_frozen = false;
        self.ceiling = gaps
            .map(|(_, top)| top)
            .filter(|&top| top > TOP_PROBE_OVER * self.estimate)
            .map(|top| top as f32);
    }

    fn costly_probe(&mut self) {
        self.probe_wait = self.probe_wait.max(PROBE_WAIT_COSTLY);
    }

    /// A probe was refused: the next waits twice as long, up to
    /// [`PROBE_WAIT_MAX`] (or the wait already set, after a long pause).
    fn probe_refused(&mut self) {
        self.probe_wait = (self.probe_wait * 2).min(PROBE_WAIT_MAX.max(self.probe_wait));
    }

    /// Reads again, once its acceptances are all answered, the second a
    /// search's first refusal read, and raises the estimate to it: a
    /// limiter refuses before the work and serves after it, so far away
    /// that reading missed what the host accepted in the last round trip
    /// before the refusal (200 ms away, a sliding window of 10/s read 9
    /// and held 8.8/s; of 3/s, read 2). At most
    /// [`read_again_at_most`](Self::read_again_at_most); and not when the host has
    /// since both accepted and refused: it is at its limit, which the
    /// meter measures, and a second before the refusal held a burst too
    /// (a GCRA of 50/s with a burst of 50 read 96/s there).
    fn reread_second(&mut self, now: Instant) {
        if self.reread <= 0.0 || !self.cut_answered(now) {
            return;
        }
        let first = std::mem::take(&mut self.reread);
        let (accepted, refused) = self.since_cut;
        if self.basis != Basis::Measured || self.probing || (accepted > 0 && refused > 0) {
            return;
        }
        let Some(count) = self.meter.accepted_in_second_to(now, self.cut_at) else {
            return;
        };
        let cap = self.read_again_at_most(f64::from(first), Duration::ZERO);
        let again = f64::from(count).min(cap);
        if again > self.estimate {
            self.estimate = again;
            self.pace = self.pace.max(again * self.hold());
        }
    }

    /// The most a second may read once its late acceptances are in, when
    /// a second that ended `since` later read `last`: what four round
    /// trips of acceptances add, what slid out of the later second
    /// meanwhile (counted in the meter's slots, a second at most), and one
    /// more, which a count of a few a second misses at its edge (a window
    /// of 20 a second nearby read 19 and then 20, and a bound of four
    /// round trips of 2 ms kept 19). A window longer than a second that
    /// accepted a whole flood in one second reads far more.
    fn read_again_at_most(&self, last: f64, since: Duration) -> f64 {
        let slid = (since + Meter::slot_len())
            .min(Duration::from_secs(1))
            .as_secs_f64();
        last * (1.0 + 4.0 * self.served_rtt.as_secs_f64() + slid) + 1.0
    }

    /// Sets the pace from the estimate after a loss.
    fn settle(&mut self, now: Instant) {
        let pace_before = self.pace;
        self.pace = match self.basis {
            Basis::Guess => self.estimate,
            _ => self.estimate * self.hold(),
        }
        .max(self.min_rate);
        self.stepped_at = now;
        let (a, r) = self.since_cut;
        // What the host refused since the last cut becomes the reference the
        // next cut is judged by, once there is enough of it; cuts closer
        // together than that (a slow pace, a refusal each) keep counting
        // toward one judgement, or a server that refuses whatever the pace
        // would never be told from a limiter.
        // Cuts that stay well below the reference go on counting toward it:
        // a server that refuses whatever the pace drives the pace down a cut
        // at a time, each with too few answers to judge by itself.
        let below_reference = self.before_cut.is_some_and(|(_, p, _)| pace_before <= 0.7 * p);
        if a + r >= MIN_EVIDENCE && !below_reference {
            let accepted = self.accepted_since_reference(now);
            self.before_cut = Some((f64::from(r) / f64::from(a + r), pace_before, accepted));
            self.restart_count(now);
        }
        self.cut(now);
        self.probe_after = now + self.probe_wait.max(self.answers_between_probes());
    }

    /// The pace was set at `now`: answers count toward it from here, and a
    /// second an earlier cut read is not read again.
    fn cut(&mut self, now: Instant) {
        self.cut_at = now;
        self.reread = 0.0;
    }

    /// A failed probe costs a refusal or a few: at a slow pace, probes are
    /// spaced by answers rather than by time, so that they cost a fraction
    /// of a percent of them.
    fn answers_between_probes(&self) -> Duration {
        let rate = self.estimate.max(self.min_rate).max(1e-3);
        Duration::from_secs_f64((PROBE_ANSWERS / rate).min(PROBE_WAIT_MAX.as_secs_f64()))
    }

    /// Quota headers (see [`QuotaWindows`]); `overtaken` bounds the
    /// answers that may have come before this one out of order.
    pub(crate) fn on_quota(&mut self, now: Instant, sent_at: Instant, quota: &QuotaWindow, overtaken: u64) {
        self.quota.on_headers(now, sent_at, quota, overtaken);
    }

    /// The pace as a share of a measured rate.
    fn hold(&self) -> f64 {
        if self.counting_window {
            COUNTING_HOLD
        } else {
            HOLD
        }
    }

    /// The estimate and its basis, for stats.
    pub(crate) fn estimate(&self) -> (f64, Basis) {
        (self.estimate, self.basis)
    }
}

/// A fleet's fit under this share of a process's own view of the host's
/// rate is not adopted, when the view rests on [`VIEW_SENDS`] sends.
const FLEET_FIT_UNDER_VIEW: f64 = 0.8;
/// How far over the hold a process probes when the fleet's opening
/// cycles fit nothing, and how many times.
const OPENING_PROBE: f64 = 1.5;
const OPENING_PROBES: u8 = 2;
/// A process's own sends in a cycle that make its view of the host's rate
/// worth comparing a fleet's fit with.
const VIEW_SENDS: usize = 100;

/// Window lengths limiters are configured with, seconds.
const ROUND_WINDOWS: [f64; 12] = [
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
fn round_window(secs: f64) -> f64 {
    ROUND_WINDOWS
        .into_iter()
        .rev()
        .find(|&w| w <= secs && secs <= 1.1 * w + 1.0)
        .unwrap_or(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fleet's merged cycle that may miss a process's sends.
    fn merged(seq: u64, end_us: u64, log: &[f32]) -> MergedCycle<'_> {
        MergedCycle {
            seq,
            end_us,
            fits: true,
            processes: 4,
            complete: false,
            log,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fleet_pauses_end_cycles_that_fit_this_process_share() {
        // Four processes against a GCRA of 400/s with a burst of 40; this
        // one sends a quarter of the fleet's requests. At 150/s each (600/s
        // together) the burst is spent in 0.2 s, at 125/s in 0.4 s, and
        // another process's refusal pauses the host each time.
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.force_rate(t0, 150.0);
        c.on_fleet_pause(t0);
        let mut t = t0 + Duration::from_secs(1);
        for (pace, sends) in [(150.0, 30u32), (125.0, 50)] {
            for i in 0..sends {
                c.on_send(t + Duration::from_secs_f64(f64::from(i) / pace));
            }
            let end = t + Duration::from_secs_f64(f64::from(sends) / pace);
            c.on_fleet_pause(end);
            t = end + Duration::from_secs(1);
        }
        let (estimate, basis) = c.estimate();
        assert_eq!(basis, Basis::Measured);
        assert!(
            (estimate - 100.0).abs() <= 5.0,
            "fitted {estimate}/s, the share is 100/s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn in_a_fleet_a_search_grows_only_while_its_sends_keep_up() {
        // A search paced at 100/s whose pace binds every 100 ms: alone, a
        // pace that holds requests back, and it grows 1.25× a step. In a
        // fleet, requests released together by leased slots bind it as
        // well: sending one request a step, it stays; sending twelve (at
        // its pace), it grows until its sends no longer keep up.
        for (share, per_step, low, high) in [
            (1.0, 1, 900.0, 1000.0),
            (0.25, 1, 99.0, 101.0),
            (0.25, 12, 190.0, 260.0),
        ] {
            let t0 = Instant::now();
            let mut c = RateControl::new(1.0, t0);
            c.set_share(share);
            c.seed(t0, 100.0, false);
            let mut t = t0;
            for _ in 0..10 {
                for i in 0..per_step {
                    c.on_send(t + ms(8 * i));
                }
                c.bound_at = Some(t);
                t += ms(100);
                c.rate(t);
            }
            let pace = c.rate(t).expect("paced");
            assert!(
                (low..=high).contains(&pace),
                "share {share}, {per_step} a step: pace {pace}"
            );
        }
    }

    /// Sends at `pace(t)` per second from `start` until `until`, then
    /// three requests at once, the last refused with `Retry-After`: a
    /// one-request burst refusing requests that the network bunched.
    fn bunched_cycle(c: &mut RateControl, start: Instant, until: f64, pace: impl Fn(f64) -> f64) -> Instant {
        let mut t = 0.0;
        while t < until {
            c.on_send(start + Duration::from_secs_f64(t));
            t += 1.0 / pace(t);
        }
        let end = start + Duration::from_secs_f64(t);
        for _ in 0..3 {
            c.on_send(end);
        }
        c.on_loss(end, end, Some(Duration::from_secs(1)));
        end
    }

    /// Sends from `start` at the controller's own pace (at `flood` per
    /// second while it has none) to a GCRA of `rate` and `burst`, full at
    /// the start, until it refuses one with `Retry-After`.
    fn gcra_cycle(c: &mut RateControl, start: Instant, rate: f64, burst: f64, flood: f64) -> Instant {
        let (mut now, mut excess, mut last) = (start, 0.0f64, start);
        loop {
            c.bound_at = Some(now);
            let pace = c.rate(now).unwrap_or(flood);
            c.on_send(now);
            let e = (excess - rate * now.saturating_duration_since(last).as_secs_f64()).max(0.0) + 1.0;
            if e > burst + 1.0 {
                c.on_loss(now + Duration::from_millis(1), now, Some(Duration::from_secs(1)));
                return now + Duration::from_millis(1);
            }
            (excess, last) = (e, now);
            c.on_accepted(now + Duration::from_millis(1), now);
            now += Duration::from_secs_f64(1.0 / pace);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn in_a_fleet_the_flood_hands_on_the_sends_after_its_refusal() {
        // Ten requests a millisecond apart, the sixth refused, its answer
        // back after the tenth was sent: the server may have taken the
        // last four before it, and the flood's count bounds the burst.
        // A paced cycle ends at its refused send.
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.set_share(0.25);
        let ms = |k: u64| t0 + Duration::from_millis(k);
        for k in 0..10 {
            c.on_send(ms(k));
        }
        c.on_loss(ms(10), ms(5), Some(Duration::from_secs(1)));
        let flood = c.take_finished_cycle().expect("a flood");
        assert!(!flood.fits);
        assert_eq!(flood.log.len(), 10);
        assert_eq!(flood.log.iter().filter(|&&t| t > 0.0).count(), 4);
        let resumed = ms(1_100);
        c.force_rate(resumed, 100.0);
        for k in 0..10 {
            c.on_send(resumed + Duration::from_millis(10 * k));
        }
        c.on_loss(
            resumed + Duration::from_millis(100),
            resumed + Duration::from_millis(50),
            Some(Duration::from_secs(1)),
        );
        let paced = c.take_finished_cycle().expect("a paced cycle");
        assert_eq!(paced.log.len(), 6, "{:?}", paced.log);
    }

    #[tokio::test(start_paused = true)]
    async fn in_a_fleet_the_opening_flood_is_fitted_with_nothing() {
        // A flood, then a search, against a GCRA of 500/s with a burst of
        // 50. Alone, the two cycles fit the rate. In a fleet this
        // process's part of the flood is whatever its requests raced to:
        // the search alone fits nothing and the pace holds where it was
        // refused, past the rate, so that the fleet's next cycle comes
        // soon and the fleet fits the two merged.
        let (r, burst) = (500.0, 50.0);
        for (share, fitted) in [(1.0, true), (0.25, false)] {
            let t0 = Instant::now();
            let mut c = RateControl::new(1.0, t0);
            c.set_share(share);
            let end = gcra_cycle(&mut c, t0, r, burst, 20.0 * r);
            gcra_cycle(&mut c, end + Duration::from_secs(1), r, burst, 20.0 * r);
            let (estimate, basis) = c.estimate();
            assert_eq!(basis, Basis::Measured);
            if fitted {
                assert!((estimate - r).abs() <= 0.03 * r, "alone: fitted {estimate}/s");
            } else {
                assert!(estimate > 1.05 * r, "in a fleet: held at {estimate}/s");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn in_a_fleet_opening_cycles_that_fit_nothing_are_probed_past_at_once() {
        // Each process paces what it fitted of its own share when the
        // fleet's cycles fit nothing; a sum under the rate would hold
        // until the next probe. The fleet probes at once instead, twice
        // at most, and never once a fleet fit set the pace.
        use super::super::fleet_fit::gcra_cycle_log;
        let t0 = Instant::now();
        let probing = |c: &RateControl| c.probe_after <= t0 && c.probe_step == OPENING_PROBE;
        let reset = |c: &mut RateControl| {
            c.probe_after = t0 + Duration::from_secs(3600);
            c.probe_step = PROBE_GROWTH;
        };
        let (held, _) = gcra_cycle_log(500.0, 50.0, |_| 800.0);
        let mut c = RateControl::new(1.0, t0);
        c.set_share(0.25);
        c.force_rate(t0, 100.0);
        for seq in 1..=4 {
            c.on_fleet_cycle(t0, merged(seq, seq * 2_000_000, &held), 0.25);
            // One cycle is nothing to fit; then two probes, and no more.
            assert_eq!(probing(&c), seq == 2 || seq == 3, "cycle {seq}");
            reset(&mut c);
        }
        let (a, _) = gcra_cycle_log(500.0, 50.0, |_| 520.0);
        let (b, _) = gcra_cycle_log(500.0, 50.0, |_| 540.0);
        let mut c = RateControl::new(1.0, t0);
        c.set_share(0.25);
        c.force_rate(t0, 100.0);
        c.on_fleet_cycle(t0, merged(1, 2_000_000, &a), 0.25);
        c.on_fleet_cycle(t0, merged(2, 20_000_000, &b), 0.25);
        assert!(
            (c.estimate().0 - 125.0).abs() < 2.0,
            "a fleet fit: {:?}",
            c.estimate()
        );
        reset(&mut c);
        c.on_fleet_cycle(t0, merged(3, 22_000_000, &held), 0.25);
        c.on_fleet_cycle(t0, merged(4, 24_000_000, &held), 0.25);
        assert!(!probing(&c), "after a fleet fit, no opening probe");
    }

    /// 20/s with a burst of one and `Retry-After: 1`: a flood and a search
    /// of a few sends each, which allow rates some 10 % either side of
    /// 20/s. Returns when the pause after them ends.
    fn wide_fit(c: &mut RateControl, t0: Instant) -> Instant {
        let end = gcra_cycle(c, t0, 20.0, 1.0, 60.0);
        let end = gcra_cycle(c, end + Duration::from_secs(1), 20.0, 1.0, 60.0);
        end + Duration::from_secs(1)
    }

    #[tokio::test(start_paused = true)]
    async fn a_wide_fit_is_probed_at_its_top_and_three_cycles_narrow_it() {
        // The hold sits at the middle of the rates two cycles allow, over
        // the rate or under it; a third cycle sent at once at their top
        // narrows them.
        let (r, burst) = (20.0, 1.0);
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        let resumed = wide_fit(&mut c, t0);
        let (two, basis) = c.estimate();
        assert_eq!(basis, Basis::Measured, "two cycles fit");
        c.bound_at = Some(resumed);
        let probe = c.rate(resumed).expect("a pace");
        assert!(
            probe > 1.04 * two,
            "the wide fit {two}/s is probed at its top at once, not at {probe}/s"
        );
        gcra_cycle(&mut c, resumed, r, burst, 3.0 * r);
        let (three, _) = c.estimate();
        assert!(
            (three - r).abs() <= 0.02 * r && (three - r).abs() < (two - r).abs(),
            "three cycles fit {three}/s (two fitted {two}/s)"
        );
        assert!(
            c.rate(resumed + Duration::from_secs(2)).is_some_and(|p| p < r),
            "the hold after the third cycle is under the rate"
        );
    }

    #[test]
    fn a_window_reopening_a_little_after_a_round_length_is_that_long() {
        assert_eq!(round_window(10.58), 10.0);
        assert_eq!(round_window(1.05), 1.0);
        assert_eq!(round_window(63.0), 60.0);
        assert_eq!(round_window(11.2), 10.0);
        assert_eq!(round_window(5.9), 5.0);
        assert_eq!(
            round_window(12.5),
            12.5,
            "not within a tenth and a second of 10 s"
        );
        assert_eq!(round_window(9.9), 9.9, "never longer than measured");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wide_fits_top_that_holds_starts_no_chain() {
        // The probe at a wide fit's top held: nothing above it fits, so
        // the next probe waits instead of going twice as far at once.
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        let resumed = wide_fit(&mut c, t0);
        c.bound_at = Some(resumed);
        let probe = c.rate(resumed).expect("a pace");
        assert!(c.probing && c.top_probe, "the top is probed at once: {probe}/s");
        let t = resumed + PROBE_HOLDS + ms(10);
        c.bound_at = Some(t);
        let held = c.rate(t).expect("a pace");
        assert!((held - probe).abs() < 1e-6, "the probe held: {held}");
        assert!(!c.chained && c.probe_after > t, "no chain after the top");
        assert_eq!(c.probe_step, PROBE_GROWTH);
    }

    #[tokio::test(start_paused = true)]
    async fn no_fit_goes_below_what_the_host_accepted_since_its_last_refusal() {
        // Against a GCRA of 2 000/s with a burst of 1, a search from 2/s
        // and then a cycle paced at 1 500/s both end in a refusal of
        // requests bunched on the way: neither cycle went over the rate, so
        // their shapes fit nothing real (300/s). The second cycle alone
        // shows 750 sends accepted within 1.5 s of the first refusal: at
        // least 500/s.
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        let end = bunched_cycle(&mut c, t0, 3.2, |t| (2.0 * 1.25f64.powf(t / 0.1)).min(1500.0));
        let first = c.previous.last().cloned().expect("a cycle");
        let start = end + Duration::from_secs(1);
        let end = bunched_cycle(&mut c, start, 0.5, |_| 1500.0);
        let floor = 750.0
            / end
                .saturating_duration_since(start - Duration::from_secs(1))
                .as_secs_f64();
        let second = c.previous.last().cloned().expect("a cycle");
        if let Some(r) = super::super::fit::fit(&first, &second) {
            assert!(r < floor, "the cycles alone fit {r}/s: this test tests nothing");
        }
        let (estimate, _) = c.estimate();
        assert!(
            estimate >= 0.99 * floor,
            "{estimate}/s, below the {floor}/s the host accepted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_guess_is_searched_upward_too() {
        // A guess of 2/s: the leader asks for a slot every 500 ms, and the
        // search must still see its pace bind.
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.seed(t0, 2.0, false);
        let mut t = t0;
        for _ in 0..20 {
            // The leader asks at its slot, held back since the last one.
            let rate = c.rate(t).expect("paced");
            c.bound_at = Some(t);
            t += Duration::from_secs_f64(1.0 / rate);
        }
        let rate = c.rate(t).expect("paced");
        assert!(rate > 20.0, "still {rate}/s after {:?}", t - t0);
    }

    /// Two fleet cycles against a GCRA of 500/s and a burst of 50, at
    /// 520/s and 540/s, with their ends (Unix µs) a second apart.
    fn two_fleet_cycles() -> ((Vec<f32>, u64), (Vec<f32>, u64)) {
        use super::super::fleet_fit::gcra_cycle_log;
        let (a, a_secs) = gcra_cycle_log(500.0, 50.0, |_| 520.0);
        let (b, _) = gcra_cycle_log(500.0, 50.0, |_| 540.0);
        let end_a = 1_000_000;
        let end_b = end_a + ((a_secs + 1.0) * 1e6) as u64;
        ((a, end_a), (b, end_b))
    }

    #[tokio::test(start_paused = true)]
    async fn a_fleet_fit_is_shared_by_every_process_that_sent_in_its_cycle() {
        let t0 = Instant::now();
        let ((a, end_a), (b, end_b)) = two_fleet_cycles();
        // Its count of live processes says three; four sent in the cycles.
        let mut c = RateControl::new(1.0, t0);
        c.set_share(1.0 / 3.0);
        c.force_rate(t0, 150.0);
        for (seq, end, log) in [(1, end_a, &a), (2, end_b, &b)] {
            c.on_fleet_cycle(t0, merged(seq, end, log), 1.0 / 3.0);
        }
        let estimate = c.estimate().0;
        assert!(
            (estimate - 125.0).abs() < 1.5,
            "a quarter of the fit: {estimate}/s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fleet_flood_starts_each_process_search_from_its_share_of_it() {
        let t0 = Instant::now();
        // Four processes' flood: 55 sends up to the refused one, 25 after.
        let flood: Vec<f32> = (0..80).map(|i| (i as f32 - 54.0) * 1e-4).collect();
        let flooded = |own: f64, flood: &[f32]| {
            let mut c = RateControl::new(1.0, t0);
            c.set_share(0.25);
            (c.estimate, c.pace, c.basis) = (own, own, Basis::Guess);
            c.on_fleet_cycle(
                t0,
                MergedCycle {
                    fits: false,
                    ..merged(1, 1_000_000, flood)
                },
                0.25,
            );
            (c.estimate, c.pace)
        };
        // A process that got one request of it searches from a quarter.
        assert_eq!(flooded(1.0, &flood), (13.75, 13.75));
        // One that got more keeps its own guess.
        assert_eq!(flooded(42.0, &flood), (42.0, 42.0));
        // A first cycle of ten seconds (a process that joined late) is
        // read over its length: 1 000 sends are 25/s for a quarter.
        let long: Vec<f32> = (0..1000).map(|i| (i as f32 - 999.0) * 0.01).collect();
        let (estimate, _) = flooded(1.0, &long);
        assert!((estimate - 25.0).abs() < 0.1, "{estimate}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fleet_fit_paces_this_process_share_whatever_its_own_cycles_said() {
        let t0 = Instant::now();
        let ((a, end_a), (b, end_b)) = two_fleet_cycles();
        // One process of four: its own cycles put its share at 150/s (the
        // host at 600/s), and it is probing over that.
        let mut c = RateControl::new(1.0, t0);
        c.set_share(0.25);
        c.force_rate(t0, 150.0);
        c.probing = true;
        c.probe_step = 1.5;
        // It sent a quarter of the fleet's requests.
        let quarter = |c: &mut RateControl, log: &[f32]| {
            if let Some(f) = c.fleet.as_mut() {
                f.own_sends = log.len() / 4;
            }
        };
        quarter(&mut c, &a);
        c.on_fleet_cycle(t0, merged(1, end_a, &a), 0.25);
        quarter(&mut c, &b);
        assert_eq!(c.pace, 150.0, "one fleet cycle fits nothing");
        c.on_fleet_cycle(t0, merged(2, end_b, &b), 0.25);
        let (estimate, basis) = c.estimate();
        assert!(
            (estimate - 125.0).abs() < 1.5,
            "a quarter of the fleet's fit: {estimate}/s"
        );
        assert_eq!(basis, Basis::Measured);
        assert!(
            !c.probing && c.probe_step == PROBE_GROWTH,
            "its own probe gave way"
        );
        assert_eq!(c.fleet_cycles_seen(), 2);

        // A fit under four fifths of this process's view is not believed:
        // at 300/s, a quarter of the sends is 1 200/s for the host.
        let mut high = RateControl::new(1.0, t0);
        high.set_share(0.25);
        high.force_rate(t0, 300.0 * HOLD);
        quarter(&mut high, &a);
        high.on_fleet_cycle(t0, merged(1, end_a, &a), 0.25);
        quarter(&mut high, &b);
        high.on_fleet_cycle(t0, merged(2, end_b, &b), 0.25);
        assert_eq!(high.estimate().0, 300.0);
        // Unless the merge holds every live process's sends.
        let mut complete = RateControl::new(1.0, t0);
        complete.set_share(0.25);
        complete.force_rate(t0, 300.0 * HOLD);
        for (seq, end, log) in [(1, end_a, &a), (2, end_b, &b)] {
            quarter(&mut complete, log);
            let all = MergedCycle {
                complete: true,
                ..merged(seq, end, log)
            };
            complete.on_fleet_cycle(t0, all, 0.25);
        }
        assert!(
            (complete.estimate().0 - 125.0).abs() < 1.5,
            "{}",
            complete.estimate().0
        );
        // A process that sent most of the fleet's requests sees the host
        // as it is, whatever its share: it takes the fit.
        let mut most = RateControl::new(1.0, t0);
        most.set_share(0.25);
        most.force_rate(t0, 360.0 * HOLD);
        for (seq, end, log) in [(1, end_a, &a), (2, end_b, &b)] {
            if let Some(f) = most.fleet.as_mut() {
                f.own_sends = log.len() * 3 / 4;
            }
            most.on_fleet_cycle(t0, merged(seq, end, log), 0.25);
        }
        assert!((most.estimate().0 - 125.0).abs() < 1.5, "{}", most.estimate().0);
        // Alone, its own fit stands.
        let mut alone = RateControl::new(1.0, t0);
        alone.set_share(1.0);
        alone.force_rate(t0, 550.0 * HOLD);
        alone.on_fleet_cycle(t0, merged(1, end_a, &a), 1.0);
        alone.on_fleet_cycle(t0, merged(2, end_b, &b), 1.0);
        assert_eq!(alone.estimate().0, 550.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_seed_follows_the_fleet_until_an_own_finding_replaces_it() {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        // Seeded at the whole rate before the share was known, then at half
        // of it once another process showed up.
        c.seed(t0, 40.0, true);
        assert_eq!(c.estimate(), (40.0, Basis::Measured));
        assert!(!c.estimate_is_own());
        c.seed(t0, 20.0, true);
        assert_eq!(c.estimate(), (20.0, Basis::Measured));
        // Moves under 5 % are noise.
        c.seed(t0, 20.5, true);
        assert_eq!(c.estimate().0, 20.0);
        // A refusal is this process's own finding: no seed replaces it.
        c.on_loss(t0, t0, None);
        assert!(c.estimate_is_own());
        let own = c.estimate().0;
        c.seed(t0, 80.0, true);
        assert_eq!(c.estimate().0, own);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_for_the_fleet_are_counted_per_span_held_bounded_and_taken_once() {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.count_fleet_answer(t0, true);
        c.count_fleet_answer(t0 + Duration::from_millis(10), false);
        c.count_fleet_answer(t0 + Duration::from_millis(150), true);
        // `<span> <accepted> <refused>…`, spans of 100 ms of Unix time.
        let triples = |c: &mut RateControl| -> Vec<(u64, u32, u32)> {
            let text = std::mem::take(c.fleet_answers()).encode();
            let n: Vec<u64> = text
                .split_whitespace()
                .map(|w| w.parse().expect("a number"))
                .collect();
            n.chunks(3).map(|t| (t[0], t[1] as u32, t[2] as u32)).collect()
        };
        let spans = triples(&mut c);
        let sum = spans.iter().fold((0, 0), |(a, r), s| (a + s.1, r + s.2));
        assert_eq!(sum, (2, 1), "{spans:?}");
        assert!(
            spans.windows(2).all(|w| w[0].0 < w[1].0),
            "one entry per span: {spans:?}"
        );
        let (first, last) = (spans[0].0, spans[spans.len() - 1].0);
        assert!(last - first == 1 || last - first == 2, "{spans:?}");
        assert!(triples(&mut c).is_empty(), "taken once");
        // Not handed over (nothing sent): the latest spans are held, not all.
        for i in 0..1000 {
            c.count_fleet_answer(t0 + Duration::from_millis(100 * i), true);
        }
        assert_eq!(triples(&mut c).len(), 64);
    }

    #[tokio::test(start_paused = true)]
    async fn the_fleets_answers_cut_a_shared_pace_once_per_span_and_never_after_a_pause() {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.force_rate(t0, 196.0);
        // Alone: the fleet's answers are this process's own, nothing to cut.
        c.set_share(1.0);
        c.on_fleet_load(t0, 10_000, 0.8);
        assert_eq!(c.estimate(), (200.0, Basis::Measured));
        // One of four: the paces together ran over what the fleet was
        // accepted in a second, and every process cuts its share.
        c.set_share(0.25);
        c.on_fleet_load(t0, 10_000, 0.8);
        assert_eq!(c.estimate(), (160.0, Basis::Measured));
        assert!((c.rate(t0).expect("paced") - 160.0 * HOLD).abs() < 1e-9);
        // The next reading within two seconds of the fleet's answers still
        // holds paces a lease old: no second cut for it.
        c.on_fleet_load(t0, 11_900, 0.8);
        assert_eq!(c.estimate().0, 160.0);
        c.on_fleet_load(t0, 12_000, 0.5);
        assert_eq!(c.estimate().0, 80.0);
        // A cut is at most a halving, and a factor of 1 or more is none.
        c.on_fleet_load(t0, 14_000, 1.2);
        assert_eq!(c.estimate().0, 80.0);
        c.on_fleet_load(t0, 16_000, 0.1);
        assert_eq!(c.estimate().0, 40.0);
        // A search is not cut: its own refusals stop it.
        let mut search = RateControl::new(1.0, t0);
        search.set_share(0.25);
        search.seed(t0, 100.0, false);
        search.on_fleet_load(t0, 10_000, 0.8);
        assert_eq!(search.estimate(), (100.0, Basis::Guess));
        // Within its span of a `Retry-After` pause, a second of the fleet's
        // answers was cut short by it: not a measure.
        let t = t0 + Duration::from_secs(1);
        c.on_send(t);
        c.on_loss(t, t, Some(Duration::from_secs(1)));
        let resumed = t + Duration::from_secs(1);
        c.on_send(resumed);
        let before = c.estimate().0;
        c.on_fleet_load(resumed + Duration::from_secs(3), 30_000, 0.8);
        assert_eq!(c.estimate().0, before);
        c.on_fleet_load(resumed + Duration::from_secs(7), 40_000, 0.8);
        assert!((c.estimate().0 - 0.8 * before).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn short_cycles_at_a_high_hold_step_halfway_to_what_was_accepted() {
        // Held at 4× a one-second bucket of 100/s that answers `Retry-After:
        // 1`: each pause refills the bucket, so every cycle at one pace has
        // one shape, and cuts of 2, 4, 8, 15 % took five pauses to reach
        // the rate. From the second short cycle the estimate steps
        // halfway (in ratio) to what the host accepted since its last
        // refusal, which is never above its rate.
        use testkit::model::TokenBucket;
        use testkit::{Limiter, RetryAfter};
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.force_rate(t0, 400.0);
        let mut bucket = TokenBucket::new(100.0, 100.0, RetryAfter::Static(1), t0);
        let (mut t, mut pauses) = (t0, 0);
        while c.estimate().0 > 110.0 && pauses < 10 {
            let pace = c.rate(t).expect("paced");
            t += Duration::from_secs_f64(1.0 / pace);
            c.on_send(t);
            if bucket.arrive(t).served() {
                c.on_accepted(t, t);
            } else {
                c.on_loss(t, t, Some(Duration::from_secs(1)));
                pauses += 1;
                t += Duration::from_secs(1);
            }
        }
        let (estimate, _) = c.estimate();
        assert!(pauses <= 3, "{pauses} pauses to reach {estimate:.1}/s");
        assert!(
            estimate >= 95.0,
            "never below what the host allows: {estimate:.1}/s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_larger_probe_of_a_chain_holds_less_but_outlasts_a_burst() {
        let mut c = RateControl::new(1.0, Instant::now());
        assert_eq!(c.probe_holds(), PROBE_HOLDS, "an ordinary probe");
        c.chained = true;
        let holds = |c: &mut RateControl, estimate: f64, step: f64| {
            c.estimate = estimate;
            c.probe_step = step;
            c.probe_holds().as_secs_f64()
        };
        // At 500/s: half as long for twice the step; a second at least.
        assert!((holds(&mut c, 500.0, 1.06) - 2.5).abs() < 0.01);
        assert!((holds(&mut c, 500.0, 2.0) - 1.0).abs() < 0.01);
        // At 20/s a burst of 50 hides a probe of 24 % for 10 s: the full
        // five seconds still.
        assert!((holds(&mut c, 20.0, 1.24) - 5.0).abs() < 0.01);
        assert!((holds(&mut c, 100.0, 1.48) - 1.04).abs() < 0.01);
    }

    #[tokio::test(start_paused = true)]
    async fn in_a_fleet_a_probe_that_holds_starts_no_chain() {
        for (share, chain) in [(1.0, true), (0.25, false)] {
            let t0 = Instant::now();
            let mut c = RateControl::new(1.0, t0);
            c.set_share(share);
            c.force_rate(t0, 98.0);
            c.probe_after = t0;
            c.bound_at = Some(t0);
            let probe = c.rate(t0).unwrap();
            assert!(
                (probe - 98.0 * PROBE_GROWTH).abs() < 1e-6,
                "a probe of 3 %: {probe}"
            );
            let t = t0 + PROBE_HOLDS + ms(10);
            c.bound_at = Some(t);
            let held = c.rate(t).unwrap();
            assert!((held - probe).abs() < 1e-6, "the probe held: {held}");
            assert_eq!(c.chained, chain, "share {share}");
            if chain {
                assert_eq!(c.probe_after, t, "alone, the next probe goes at once");
                assert!(c.probe_step > PROBE_GROWTH, "and twice as far");
            } else {
                assert_eq!(
                    c.probe_after,
                    t + PROBE_WAIT_CHEAP,
                    "in a fleet, after the usual wait"
                );
                assert_eq!(c.probe_step, PROBE_GROWTH, "and no further");
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_frozen_search_that_nothing_refused_probes_from_what_it_was_accepted_at() {
        // Frozen at its first loss at 1 900/s over an estimate of 400/s,
        // and accepted at that pace ever since: the probe goes on from
        // there, not back to the estimate.
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.basis = Basis::Measured;
        c.estimate = 400.0;
        c.pace = 1900.0;
        c.cut_at = t0;
        c.restart_count(t0);
        c.probe_after = t0 + Duration::from_secs(3);
        let mut now = t0;
        while now < t0 + Duration::from_millis(3500) {
            c.bound_at = Some(now);
            let pace = c.rate(now).unwrap_or(0.0);
            assert!(pace >= 1800.0, "{pace:.0}/s at {:?}", now - t0);
            c.on_send(now);
            c.on_accepted(now + ms(1), now);
            now += Duration::from_secs_f64(1.0 / pace);
        }
        assert!(c.probing, "the probe began");
        assert!(c.estimate > 1800.0, "estimate {:.0}", c.estimate);
    }

    /// Held at `estimate`, cut at `t0`.
    fn held(t0: Instant, estimate: f64) -> RateControl {
        let mut c = RateControl::new(1.0, t0);
        c.basis = Basis::Measured;
        c.estimate = estimate;
        c.pace = estimate * HOLD;
        c.cut_at = t0;
        c.restart_count(t0);
        c.probe_after = t0 + Duration::from_secs(60);
        c
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_hold_refused_steps_back() {
        // Held at 5.4/s over a one-request burst at 5/s: a refusal every
        // three seconds, none within the second of another, and no second
        // holds eight answers to measure: it never stepped back.
        let t0 = Instant::now();
        let mut c = held(t0, 5.5);
        let t = accept_every(&mut c, t0, 12, Duration::from_secs_f64(1.0 / 5.39));
        c.bound_at = Some(t);
        c.on_loss(t + ms(1), t, None);
        let (estimate, _) = c.estimate();
        assert!(estimate < 5.5 * HOLD + 0.01, "still {estimate}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_refused_as_often_as_accepted_steps_back_before_eight_acceptances() {
        // Held at 10/s where a host takes 5/s: half the sends refused, as
        // a burst's tolerance lets them through (no clean gaps). Eight
        // acceptances took 1.6 s of such refusals; a few and as many
        // refused are enough to read what it accepts.
        let t0 = Instant::now();
        let mut c = held(t0, 10.2);
        let mut t = t0;
        for accepted in [true, false, false, true].repeat(3) {
            t += ms(100);
            c.bound_at = Some(t);
            if accepted {
                c.on_accepted(t + ms(1), t);
            } else {
                c.on_loss(t + ms(1), t, None);
            }
        }
        let (estimate, _) = c.estimate();
        assert!(estimate < 6.0, "after 1.2 s still {estimate}");
    }

    #[tokio::test(start_paused = true)]
    async fn probes_wait_ten_pauses_after_a_long_retry_after() {
        // A refused probe costs a pause as long as the last: after
        // `Retry-After: 60` the next probe waits ten minutes, not 30 s.
        for (pause, least, most) in [(1, 30, 60), (60, 600, 660)] {
            let t0 = Instant::now();
            let mut c = RateControl::new(1.0, t0);
            c.force_rate(t0, 98.0);
            let mut t = t0;
            for _ in 0..500 {
                t += ms(10);
                c.on_send(t);
                c.on_accepted(t, t);
            }
            c.on_send(t);
            c.on_loss(t, t, Some(Duration::from_secs(pause)));
            let wait = c.probe_after.duration_since(t).as_secs();
            assert!(
                (least..=most).contains(&wait),
                "Retry-After {pause}: probe in {wait} s"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_after_an_epoch_reset_read_early_undoes_the_lateness() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let said = |remaining, lo: u64, hi: u64| QuotaWindow {
            remaining,
            reset_lo: Duration::from_millis(lo),
            reset_hi: Duration::from_millis(hi),
            epoch: true,
        };
        let mut c = RateControl::new(1.0, t0);
        // A window the headers put at (4 s, 5.6 s] resets at 5 s: later
        // windows are read 550 ms early (590 ms less two 20 ms spacings).
        c.on_quota(t0, t0, &said(10, 4000, 5600), 0);
        c.on_quota(at(4990), at(4989), &said(1, 0, 610), 0);
        c.on_quota(at(5010), at(5009), &said(99, 3590, 5590), 0);
        c.on_quota(at(9000), at(8999), &said(0, 0, 1600), 0);
        assert_eq!(c.not_before(at(10_000)), Some(at(10_050)));
        // Refused at 10.1 s, with `Retry-After`: the reset was read too
        // early. The quota waits for its headers' reset again; the refusal
        // is no cycle of a limiter that pauses.
        c.on_loss(at(10_100), at(10_099), Some(Duration::from_secs(1)));
        assert_eq!(c.not_before(at(10_100)), Some(at(10_600)));
        assert_eq!(c.estimate().1, Basis::None, "no rate learned from it");
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_below_what_the_host_accepted_drain_instead_of_cutting() {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        // 100 accepted within the first second, then refusals (a sliding
        // window at 100/s that counts them).
        let mut t = accept_every(&mut c, t0, 100, ms(5));
        c.on_loss(t, t, None);
        let first = c.rate(t).expect("paced");
        assert!((first - 100.0).abs() < 1.0, "{first}");
        // Refusals keep coming at that pace: drain at half, keep the count.
        for _ in 0..20 {
            t += Duration::from_millis(10);
            c.on_loss(t, t, None);
        }
        let drained = c.rate(t).expect("paced");
        assert!(drained <= 51.0, "{drained}");
        assert_eq!(c.estimate(), (100.0, Basis::Measured));
        // After the drain: the hold below it, with the room a counting
        // window needs.
        let after = c.rate(t + DRAIN).expect("paced");
        assert!(
            (after - 95.0).abs() < 1.0,
            "under a counting limiter the hold is 95 %: {after}"
        );
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `n` requests sent `gap` apart after `from`, each accepted at once;
    /// returns the last one's time.
    fn accept_every(c: &mut RateControl, from: Instant, n: u32, gap: Duration) -> Instant {
        let mut t = from;
        for _ in 0..n {
            t += gap;
            c.on_accepted(t, t);
        }
        t
    }

    #[tokio::test(start_paused = true)]
    async fn a_search_stops_growing_at_refusals_in_its_first_second_too() {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        // 50 accepted in 200 ms, then a refusal: a guess to search from.
        let mut t = accept_every(&mut c, t0, 50, ms(4));
        c.on_loss(t, t, None);
        // The search grows while the pace binds, then meets refusals.
        for _ in 0..3 {
            t += SEARCH_STEP;
            c.bound_at = Some(t);
            c.rate(t);
        }
        let past = c.rate(t).expect("paced");
        assert!(past > 50.0, "the search grew: {past}");
        c.on_loss(t + ms(1), t, None);
        // Half a second later, binding throughout: it did not grow on.
        for _ in 0..5 {
            t += SEARCH_STEP;
            c.bound_at = Some(t);
        }
        let held = c.rate(t).expect("paced");
        assert!(
            held <= past * 1.001,
            "grew from {past} to {held}/s past its refusals"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_counting_window_nearby_is_read_whole() {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        // A window of 20 a second, 20 ms away: 20 sent 50 ms apart from
        // 130 ms, accepted; the 21st, 10 ms after the last, refused at
        // once, before the last acceptance comes back: the first reading
        // is 19.
        let rtt = ms(20);
        let sent: Vec<Instant> = (0..20).map(|i| t0 + ms(130 + 50 * i)).collect();
        for &at in &sent[..19] {
            c.on_accepted(at + rtt, at);
        }
        let mut t = sent[19] + ms(10);
        c.on_loss(t, t, None);
        c.on_accepted(sent[19] + rtt, sent[19]);
        // The search past it is refused at once, and on: the window counts
        // the refusals.
        t += SEARCH_STEP;
        c.bound_at = Some(t);
        c.rate(t);
        for _ in 0..12 {
            c.on_loss(t, t, None);
            t += ms(10);
        }
        // Drained: the second that ended at the first refusal holds 20
        // acceptances. The last second, read at the drain, held fewer (it
        // slid on since, by whole slots of the meter): no bound on that.
        let (estimate, basis) = c.estimate();
        assert_eq!(basis, Basis::Measured);
        assert!((estimate - 20.0).abs() < 0.5, "read whole: {estimate}/s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_counting_window_is_read_again_once_its_acceptances_are_answered() {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        // A window of 100 a second filled in 200 ms; the refusal of the
        // 101st comes back before the last 15 acceptances.
        let sent: Vec<Instant> = (1..=100).map(|i| t0 + ms(2 * i)).collect();
        for &at in &sent[..85] {
            c.on_accepted(at + ms(1), at);
        }
        let refused_at = t0 + ms(201);
        c.on_loss(refused_at, refused_at, None);
        assert!(
            c.estimate().0 < 90.0,
            "the first read is short: {:?}",
            c.estimate()
        );
        // The search steps past it and is refused there: frozen.
        let mut t = refused_at + SEARCH_STEP;
        c.bound_at = Some(t);
        c.rate(t);
        c.on_loss(t + ms(1), t, None);
        assert_eq!(c.estimate().1, Basis::Measured);
        assert!(c.estimate().0 < 90.0, "{:?}", c.estimate());
        // The last acceptances come in late.
        for &at in &sent[85..] {
            c.on_accepted(t + ms(5), at);
        }
        // Refusals keep coming at the pace: the window counts them. Read
        // two round trips (of those late answers) after the cut at least:
        // sooner, a far GCRA's answers read three to one too.
        for _ in 0..30 {
            t += ms(10);
            c.on_loss(t, t, None);
        }
        let (estimate, basis) = c.estimate();
        assert_eq!(basis, Basis::Measured);
        assert!((estimate - 100.0).abs() < 1.0, "read again: {estimate}/s");
    }

    /// A host 200 ms away accepts `n` requests sent over half a second;
    /// the search from the first reading is refused, and the acceptances
    /// sent in the round trip before come back after the refusal. Then,
    /// every 100 ms for half a second, a refusal, and if `accepting` an
    /// acceptance too (of what was sent a round trip before). Returns the
    /// estimate after the search's refusal and at the end.
    fn far_search(n: u32, accepting: bool) -> (f64, f64) {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        let rtt = ms(200);
        let gap = ms(500) / n;
        let sent: Vec<Instant> = (1..=n).map(|i| t0 + gap * i).collect();
        let answered = sent
            .iter()
            .filter(|&&at| at + rtt <= sent[sent.len() - 1] + gap)
            .count();
        for &at in &sent[..answered] {
            c.on_accepted(at + rtt, at);
        }
        let first = sent[answered - 1] + rtt;
        c.on_loss(first, first, None);
        let mut t = first + SEARCH_STEP;
        c.bound_at = Some(t);
        c.rate(t);
        c.on_loss(t, t, None);
        let read = c.estimate().0;
        for &at in &sent[answered..] {
            c.on_accepted(at + rtt, at);
        }
        let cut = t;
        for _ in 0..5 {
            t += ms(100);
            c.on_loss(t, t, None);
            if accepting && t - rtt >= cut {
                c.on_accepted(t, t - rtt);
            }
        }
        (read, c.estimate().0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_far_searchs_second_is_read_again_once_its_acceptances_are_in() {
        // A window of 10 a second that counts refusals: full, it refuses
        // everything.
        let (read, again) = far_search(10, false);
        assert!(read < 9.0, "the first reading misses what was in flight: {read}");
        assert!(again >= 10.0, "read again: {again}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_far_searchs_second_is_not_read_again_at_the_limit() {
        // A GCRA of 10/s spent a burst of 10 in that second, and accepts
        // its rate since: the meter measures that, and the second before
        // the refusal is no rate.
        let (read, again) = far_search(20, true);
        assert!(again <= read, "{read} then {again}");
    }

    /// A search frozen at `pace` over an estimate of 109/s, its sends set
    /// by a concurrency limit of 20 at 50 ms (400/s in waves), is refused
    /// once after 1.5 s: the estimate then, and the highest pace of the
    /// two seconds after.
    fn frozen_search_refused_in_waves(pace: f64) -> (f64, f64) {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.basis = Basis::Measured;
        c.estimate = 109.0;
        c.pace = pace;
        let rtt = ms(50);
        let mut t = t0;
        for wave in 0..30 {
            t = t0 + rtt * wave;
            for _ in 0..20 {
                c.on_send(t);
                if wave > 0 {
                    c.on_accepted(t, t - rtt);
                }
            }
        }
        // The pace held nothing back: the concurrency limit set the sends.
        c.on_loss(t, t - rtt, None);
        let held = c.estimate().0;
        let mut top: f64 = 0.0;
        for step in 1..=40 {
            let now = t + ms(50) * step;
            c.bound_at = Some(now);
            top = top.max(c.rate(now).unwrap_or(0.0));
        }
        (held, top)
    }

    #[tokio::test(start_paused = true)]
    async fn a_frozen_search_its_waves_kept_under_its_pace_is_probed_toward_that_pace() {
        let (held, top) = frozen_search_refused_in_waves(689.0);
        assert!((390.0..=420.0).contains(&held), "what it accepted: {held}");
        assert!(top > 1.2 * held, "probed toward 689/s at once: {top}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_frozen_search_sent_at_its_pace_is_not_probed_at_once() {
        // The same sends under a pace of 450/s came at nine tenths of it:
        // the pace was in charge, and its refusal a limit.
        let (held, top) = frozen_search_refused_in_waves(450.0);
        assert!((390.0..=420.0).contains(&held), "what it accepted: {held}");
        assert!(top <= held, "held at the estimate: {top}");
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_with_nothing_accepted_trickle_until_the_window_drains_and_it_sets_the_pace() {
        // A window of 10 s at 20/s that counts refusals: 200 accepted in
        // the first second, then full; nothing is accepted at any pace over
        // its average until it drains.
        let t0 = Instant::now();
        let mut c = RateControl::new(0.5, t0);
        for i in 0..200 {
            let t = t0 + ms(5 * i);
            c.on_accepted(t, t);
        }
        // Held at 48/s from second 2 (after a second of nothing accepted,
        // nothing reads as a rate to step back to).
        c.force_rate(t0 + ms(2000), 48.0);
        // Refused at the pace until `until`; when the pace last changed.
        let refuse_until = |c: &mut RateControl, mut t: Instant, until: Instant| {
            let mut changed = None;
            while t < until {
                let rate = c.rate(t).expect("paced");
                t += Duration::from_secs_f64(1.0 / rate);
                c.on_loss(t, t, None);
                if c.rate(t) != Some(rate) {
                    changed = Some(t);
                }
            }
            (t, changed)
        };
        let (t, cut_at) = refuse_until(&mut c, t0 + ms(2000), t0 + ms(3500));
        let cut_at = cut_at.expect("cut");
        assert!(cut_at >= t0 + ms(3000), "not before a second of refusals");
        let trickle = c.rate(t).expect("paced");
        assert!(
            (trickle - 1.5).abs() < 0.01,
            "a trickle, a thirty-second: {trickle}/s"
        );
        // The next cut waits for a second and eight refusals more (5.3 s
        // at this trickle), and halves.
        let (t, changed) = refuse_until(&mut c, t, cut_at + ms(4500));
        assert_eq!(
            changed.map(|c| c - cut_at),
            None,
            "no second cut before eight refusals"
        );
        let (t, _) = refuse_until(&mut c, t, cut_at + ms(6000));
        let halved = c.rate(t).expect("paced");
        assert!((halved - 0.75).abs() < 0.01, "{trickle} -> {halved}/s");
        // Drained, about 10 s after the first send: the window's 200 over
        // the cycle is its rate, held.
        let (t, _) = refuse_until(&mut c, t, t0 + ms(10_000));
        c.on_accepted(t, t);
        let held = c.rate(t).expect("paced");
        assert!(
            (17.0..=20.0).contains(&held),
            "the cycle's rate, held: {held}/s (the trickle was {halved}/s)"
        );
        // Probed as after any cut (400 answers at the held rate, 30 s at
        // the least), not after 400 answers at the trickle's rate.
        let wait = c.probe_after.saturating_duration_since(t);
        assert!(wait <= Duration::from_secs(31), "next probe in {wait:?}");
    }
}
