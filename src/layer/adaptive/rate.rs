//! The send rate of one host: an estimate of the rate it allows, learned
//! from its answers, and the pace derived from it.
//!
//! Over 400 lines: the rules below in one place, and the state they all
//! read and set (the struct's documented fields). Each rule's code is a
//! child module's `impl` block, which sees those fields: `loss.rs`,
//! `counts.rs`, `noise.rs`, `window.rs`, `ban.rs`, `cycles.rs`, `slow.rs`,
//! `probe.rs`, `named.rs`, `fleet.rs`; their tests are in `tests/`, by the same
//! rules (`noise.rs` keeps its own).
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
//!   Nor is a fit whose burst passes what refused the opening flood, and
//!   a few sends: two cycles can also cross far below the rate. The gaps
//!   of a limiter without a burst, counted up to the refused send,
//!   measure it when they read well over the estimate.
//! * **Resume paced.** After a pause the host is paced, never released at
//!   once: a small-burst limiter refuses everything past its burst.
//! * **Keep a limiter without a burst's sends apart.** A host that
//!   accepted one of the requests sent together first and refused the
//!   others gets no send sooner than one interval of its estimate (of the
//!   pace, if faster) after the last one (`min_gap`): the pacer otherwise
//!   catches up a late wake-up by sending the next one sooner, which such
//!   a limiter refuses.
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
//!   step past it). After a `Retry-After` pause, a request waiting for a
//!   slot more than two steps off looks again each step, so the sends
//!   keep up with the pace (`Controller::look_again_at`). The second
//!   before that refusal is read again two round trips later: refusals
//!   come back at once and acceptances a served round trip later, so far
//!   away the first reading missed the last ones (unless the host both
//!   accepts and refuses since: at its limit, the meter measures it).
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
//!   pace drains at half the estimate, for half a second or until eight
//!   refusals with nothing accepted, then at a sixteenth while the window
//!   refuses through it with nothing accepted, up to a second (HAProxy's
//!   counter weighs the previous period by the time left in the current
//!   one; each refusal stays counted), then holds at 97 % of it (such a
//!   window holds the pace's jitter). The estimate is read again then,
//!   with every acceptance of the first second answered, and over the
//!   second that ended at the first refusal (far away, the last second
//!   misses the first acceptances; not within two round trips of a cut,
//!   when a far GCRA's refusals come back before its acceptances and read
//!   three to one too). A window longer
//!   than a second stays full at any pace over its average, and every
//!   refusal stays in it for a window: refusals with nothing accepted for
//!   a second drain as above first (when the second before the episode's
//!   first refusal was accepted at four or more: at a few a second no
//!   second at the hold holds eight answers), then cut the pace to a
//!   trickle (a thirty-second, then halves
//!   after each second with eight refusals more) until the window drains;
//!   what it accepted over the cycle until then, about a window's worth
//!   over a window's length, is the rate held. The window may be shorter
//!   than the cycle: read to the latest refusal, or weighed as HAProxy's
//!   counter weighs its periods (a cycle refused as often as accepted
//!   reopens half a period late), a round length shorter than the
//!   cycle gives a ceiling that probes climb toward (`window.rs`). The
//!   trickle's refusals hold such a window shut past its length, so the
//!   cycle reads long; the latest 64 sends tell the length instead when a
//!   round one makes a log that counts them hold fewer than the opening
//!   took before each acceptance and as many before each refusal. A host
//!   never paced, refused eight times in a row over a second with
//!   nothing accepted lately, starves the same way from the rate it was
//!   sent to: a slow scheduler's demand alone keeps such a window full.
//! * **Rates per minute** (`slow.rs`): `Retry-After` cycles of fewer than
//!   eight requests in a row are one streak, whose count over its span
//!   bounds a GCRA's rate when no pause in it could have filled the
//!   bucket.
//! * **Refusals that do not follow the pace** (a server that refuses some
//!   requests whatever the rate: their share, 10 % or more, stays after
//!   a cut of 30 % or more, judged against the reference the decline
//!   began under) say nothing about a rate. Under 60 % they are noise
//!   (`noise.rs`): the estimate goes back to where they began cutting
//!   it, probes climb from it, and each answer then earns a little more
//!   than the noise's share of a refusal, which an untold refusal spends
//!   instead of teaching; more leave the host unpaced for 10 s. A small
//!   share (a refusal in fifty) steps the estimate down a little at a
//!   time instead, and a decline whose share comes back as large well
//!   under where it began is noise the same way.
//! * **Bans** (`ban.rs`): a limiter that, once passed, refuses everything
//!   for a while whatever the pace (fail2ban; HAProxy's abuse flag,
//!   renewed by each refused request) reads as a window that counts
//!   refusals. When the host accepts again, the estimate held before the
//!   stretch of refusals, for longer than the stretch lasted, is held
//!   again if the cycle reads well under it (half of it if the stretch
//!   began soon after such a return). The trickle never rises to its
//!   floor, halves on down to `min_rate` once nothing accepted outlasts
//!   any window of a minute, and starts there the next time. A ban the
//!   opening sets off reads as a window of the opening's few requests,
//!   and is held so.
//! * **Quotas set the pace directly**: `remaining / time to reset`, and no
//!   send before the reset once the quota is spent (`quota.rs`).
//! * **In a fleet, the fleet's answers bound the paces together**: a
//!   process's own reading of the host is its share of a race. When the
//!   fleet was refused lately, with no `Retry-After` pause in its answers'
//!   span, and the live processes' paces summed to more than the most the
//!   fleet was accepted in a second, each measured estimate is cut by the
//!   same factor (`on_fleet_load`, `fleet::answers`). A measured estimate
//!   far under its share of the most the fleet was accepted in a second
//!   that held refusals starts from that share, as far as the room the
//!   paces together leave goes (`on_fleet_limit`): where refusals pause
//!   nobody, no fleet cycle measures the host. Probes
//!   chain in a fleet only while its host has paused none of it.

use std::time::Duration;

use tokio::time::Instant;

use super::fit::SEARCH_STEP;
use super::fleet_fit::FleetCycles;
use super::meter::Meter;
use super::quota::QuotaWindows;
use super::recovery::{Recovery, PAUSES_APART};
use super::spacing::Spacing;
use crate::retry_after::QuotaWindow;
use counts::{IGNORED_FROM, IN_BLOCKS_FROM};
use noise::Noise;

/// The pace as a share of a measured rate.
pub(crate) const HOLD: f64 = 0.98;
/// The slowest pace a search (a guess, grown while the pace binds) starts
/// from. A search steps as answers come, and under one a second it has too
/// few to grow on; a rate measured below it (nginx's `rate=30r/m`) is held.
const SEARCH_FLOOR: f64 = 1.0;
/// The pace under a limiter that counts refusals: its window holds the
/// jitter of the pace, so it needs more room. At 95 % the steady table of
/// HAProxy counters and sliding logs (3-2 000/s) read 93.5 %, at 97 %
/// 94.5 %, with 0.35 and 0.43 % refused.
const COUNTING_HOLD: f64 = 0.97;
/// A probe raises the pace this much over the hold.
const PROBE_GROWTH: f64 = 1.03;
/// A loss that set the estimate this far under the pace it refused leaves
/// a wide range for the rate (see `probe.rs`, `answers_between_probes`).
const REFUSED_FAR_ABOVE: f64 = 1.5;
/// Quiet time before a probe when losses cost nothing but themselves.
const PROBE_WAIT_CHEAP: Duration = Duration::from_secs(4);
/// A refused probe of a chain this large or larger is followed by one of
/// half its step (in ratio).
const BISECT_FROM: f64 = 1.1;
/// The longest wait for a probe, after the longest pauses.
const PROBE_WAIT_LONGEST: Duration = Duration::from_secs(3600);
/// The most send times a cycle keeps (the latest).
const CYCLE_LOG: usize = 4096;
/// A fit whose cycles allow rates this far above it is confirmed by a
/// probe to their top.
const TOP_PROBE_OVER: f64 = 1.04;
/// The farthest such a probe goes over the hold.
const TOP_PROBE_MAX: f64 = 1.25;
/// A cycle held at the estimate that ends in a pause sooner than this was
/// more than a little too fast.
const SHORT_CYCLE: f64 = 2.0;
/// Answers needed before a share of refusals means anything.
const MIN_EVIDENCE: u32 = 8;

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

/// A rate over the estimate that probes go toward. Single precision keeps
/// the controller under its 1 KiB bound.
#[derive(Debug, Clone, Copy)]
struct Ceiling {
    rate: f32,
    /// Where it came from: the pace a search froze at that never bound
    /// (a burst may hide a probe toward it, which then holds as long as a
    /// chain's), or the highest rate a limiter without a burst may have,
    /// by the gaps it refused (see [`Spacing::no_burst_rates`]; nothing
    /// hides a probe there).
    frozen: bool,
}

/// The cycles between `Retry-After` pauses that a fit reads (`cycles.rs`).
#[derive(Debug, Default)]
struct CycleLogs {
    /// The previous cycles' send times, each up to its refusal, the
    /// latest last (at most `CYCLES_KEPT`).
    previous: Vec<Vec<f32>>,
    /// The opening flood's sends up to its refusal (unpaced, alone): the
    /// excess it was refused at bounds the burst of every fit after it.
    flood: Option<Vec<f32>>,
    /// Short cycles in a row (see `slow.rs`).
    slow: Option<slow::SlowStreak>,
    /// The meter's count of acceptances when the current cycle began.
    from_total: u32,
    /// The latest cycle ended by a pause, while its answers come in (see
    /// `cycles.rs`).
    answering: Option<cycles::Answering>,
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
    /// Refusals that do not follow the pace (boxed: it keeps the
    /// controller under its 1 KiB bound).
    noise: Box<Noise>,
    /// The pace last held requests back at this time.
    pub(crate) bound_at: Option<Instant>,
    pub(crate) meter: Meter,
    /// Recent sends' gaps and outcomes: a limiter without a burst.
    spacing: Spacing,
    /// How long a served request takes, about.
    served_rtt: Duration,
    /// The current cycle: when sending resumed, and its send times.
    cycle: Option<(Instant, Vec<f32>)>,
    /// The cycles a fit reads: the latest ones, and the opening flood
    /// (boxed: a host's state stays small).
    logs: Box<CycleLogs>,
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
    /// A loss set the estimate far under the pace it refused, and no probe
    /// was refused since: the next probe comes sooner (see
    /// [`answers_between_probes`](Self::answers_between_probes)).
    refused_far_above: bool,
    /// Refusals below the estimate: half the pace for a while (boxed: it
    /// keeps the controller under its 1 KiB bound).
    drain: Option<Box<window::Drain>>,
    /// A rate over the estimate that probes go halfway to, one after
    /// another, while set.
    ceiling: Option<Ceiling>,
    /// Nothing accepted for a while: the pace trickles until the host
    /// accepts again.
    starving: bool,
    /// Since when, and from which of the meter's accepted answers, the
    /// current cycle of a window that starves the pace is counted, and
    /// its refusals and errors so far (`u32`s, modulo 2³² for the first:
    /// they keep the controller under its 1 KiB bound).
    starve_cycle: (Instant, u32, u32),
    /// The latest fresh loss not told to pause.
    last_loss: Option<Instant>,
    /// When the first refused request of the latest episode was sent.
    episode_sent: Option<Instant>,
    /// What the host accepted of the requests sent in the second before
    /// that one, read while the meter still holds that second.
    episode_took: u16,
    /// What the latest stretch of refusals began from, and how the latest
    /// ban ended (boxed: it keeps the controller under its 1 KiB bound).
    ban: Box<ban::Ban>,
    /// What a search's first refusal read over the second before it (that
    /// second ended at `cut_at`), with the acceptances still in flight
    /// missing; 0 when there is nothing to read again (see
    /// [`reread_second`](Self::reread_second)). A bare `f32` keeps the
    /// controller under its 1 KiB bound.
    reread: f32,
    /// The quota the server announces, if any: a pace cap and a reset,
    /// and a rate it announces outright (boxed: it keeps the controller
    /// under its 1 KiB bound).
    quota: Box<QuotaWindows>,
    /// The rate held before the host's capacity fell, probed back to.
    recovery: Recovery,
    /// In a fleet: whether others send to the host too, its seed, and the
    /// cycles the processes share (boxed: most layers have no fleet).
    fleet: Option<Box<FleetCycles>>,
    /// The pace is a trial's (`rate/trial.rs`), no refusal's yet: the
    /// basis, estimate and pace it replaced.
    on_trial: Option<Box<(Basis, f32, f32)>>,
    /// A reading a trickle's end gave, to test (`rate/window_test.rs`;
    /// boxed: it keeps the controller under its 1 KiB bound).
    window_test: Option<Box<window_test::WindowTest>>,
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
            noise: Box::default(),
            bound_at: None,
            meter: Meter::new(now),
            spacing: Spacing::new(now),
            served_rtt: Duration::ZERO,
            cycle: Some((now, Vec::new())),
            logs: Box::default(),
            told_at: None,
            short_cycles: 0,
            resume_pending: false,
            resumed_at: now,
            cycle_refused: 0,
            probe_after: now,
            probe_wait: PROBE_WAIT_CHEAP,
            probing: false,
            refused_far_above: false,
            probe_step: PROBE_GROWTH,
            chained: false,
            top_probe: false,
            drain: None,
            ceiling: None,
            starving: false,
            starve_cycle: (now, 0, 0),
            last_loss: None,
            episode_sent: None,
            episode_took: 0,
            ban: Box::default(),
            reread: 0.0,
            quota: Box::default(),
            recovery: Recovery::default(),
            fleet: None,
            on_trial: None,
            window_test: None,
        }
    }

    /// The slowest pace (`AdaptiveConfig::min_rate`).
    pub(crate) fn min_rate(&self) -> f64 {
        self.min_rate
    }

    /// The slowest a search starts from: [`SEARCH_FLOOR`], or `min_rate`
    /// if higher. A measured rate may lie below it; a guess may not.
    pub(super) fn search_floor(&self) -> f64 {
        self.min_rate.max(SEARCH_FLOOR)
    }

    /// When the host last refused, if it has.
    pub(crate) fn last_refusal(&self) -> Option<Instant> {
        self.last_loss
    }

    /// The answers a hold waited for are in, the last one accepted (see
    /// `Concurrency::hold_for_answers`): what the host accepted of the
    /// opening is the guess the next refusal would make. Made only then,
    /// the requests the hold had kept back went unpaced, and a GCRA of
    /// 2/s with a burst of one refused two more of them. Returns whether
    /// it made the guess (not for a host paced already, or that accepted
    /// nothing).
    pub(crate) fn guess_after_flood(&mut self, now: Instant) -> bool {
        if self.basis != Basis::None {
            return false;
        }
        let (count, span) = self.meter.accepted_since(now, self.resumed_at);
        if count == 0 {
            return false;
        }
        self.estimate = (f64::from(count) / span.as_secs_f64().max(1.0)).max(self.search_floor());
        self.basis = Basis::Guess;
        self.settle(now);
        true
    }

    /// How many times the host refused before it accepted anything, with
    /// no pace: its refusals came back before any acceptance (see
    /// `Concurrency::hold_for_answers`). Zero once it accepted.
    pub(crate) fn refused_before_accepting(&self) -> u32 {
        if self.basis == Basis::None && self.meter.total() == 0 {
            self.since_cut.1
        } else {
            0
        }
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
            _ => Some(match self.drain.as_deref() {
                Some(d) if d.draining(now) => d.pace(now, self.estimate).max(self.min_rate),
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

    /// Whether the pace is a search that a `Retry-After` pause came
    /// before: the pause let a window that counts requests drain, and the
    /// search may go as fast as it grows.
    pub(crate) fn searching_after_pause(&self) -> bool {
        self.basis == Basis::Guess && self.told_at.is_some()
    }

    /// Whether the pace trickles into a host that refuses everything: the
    /// first acceptance may raise it many times over (see
    /// `ban.rs`, `search_after_a_ban`).
    pub(crate) fn trickling(&self) -> bool {
        self.starving
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
            self.trim_answered();
            self.logs.from_total = self.meter.total() as u32;
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
        // Declines and the noise's credit are a measured estimate's: an
        // unpaced host's answers do not reach the boxed state.
        if self.basis == Basis::Measured {
            if let Some(top) = self.noise.count(false, self.estimate) {
                self.refusals_are_noise(now, top);
            }
            // A suspicion ends on acceptances too: a pace held below a
            // limit hears no refusal.
            if sent_at >= self.cut_at {
                self.weigh_suspicion(now);
            }
        }
        self.reread_second(now);
        self.spacing.record(sent_at, true);
        // The round trip of a served request, for the meter's slots to be
        // complete: the latest, or a slowly fading maximum.
        let rtt = now.saturating_duration_since(sent_at);
        // 0.95 of it, in whole nanoseconds (no float round trip).
        self.served_rtt = rtt.max(self.served_rtt - self.served_rtt / 20);
        self.recovery.on_accepted();
        if self.last_loss.is_some() {
            self.stretch_ended(now, sent_at);
        }
        if let Some(d) = self.drain.as_mut() {
            d.on_accepted(now, sent_at);
        }
        if sent_at >= self.cut_at {
            if self.starving {
                self.fed(now);
            }
            self.grow_search_after_a_ban(now);
            self.since_cut.0 = self.since_cut.0.saturating_add(1);
            self.ok_span = Some((self.ok_span.map_or(now, |(first, _)| first), now));
        }
    }

    /// A refusal (429, 503) or an error, of a request sent at `sent_at`;
    /// `pause` is the `Retry-After` pause it began for the host, if any.
    pub(crate) fn on_loss(&mut self, now: Instant, sent_at: Instant, pause: Option<Duration>) {
        if pause.is_none() && self.is_noise(now) {
            return;
        }
        self.starve_cycle.2 = self.starve_cycle.2.saturating_add(1);
        let held =
            (self.basis == Basis::Measured && !self.probing && !self.counting_window && !self.starving)
                .then_some(self.estimate);
        let quiet_for = now.saturating_duration_since(self.quiet_since());
        let (probing, step) = (self.probing, self.probe_step);
        let before = (self.basis, self.estimate);
        self.learn_from_loss(now, sent_at, pause);
        if (before.0, self.basis) == (Basis::Measured, Basis::Measured) {
            self.noise.on_fall(before.1, self.estimate);
        }
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
        let fell = self.recovery.on_loss(held, quiet_for, self.estimate);
        if fell || (self.recovery.active() && !self.probing) {
            // Capacity fell: probe back soon, not after the half minute a
            // lasting refusal waits (see `recovery.rs` for what a refused
            // probe costs and how the waits grow).
            self.probe_wait = self.recovery.wait(pause);
            let due = now + self.probe_wait.max(self.answers_between_probes());
            self.probe_after = self.probe_after.min(due);
        }
    }

    /// Since when no loss came: the latest loss, or the latest pause's end.
    fn quiet_since(&self) -> Instant {
        self.last_loss
            .map_or(self.resumed_at, |at| at.max(self.resumed_at))
    }

    /// The shortest gap between two sends, for a limiter without a burst
    /// (see [`Spacing::opened_without_burst`]): one interval of the
    /// estimate (of the pace, when it is faster). Such a limiter refuses
    /// a send sooner than that after the last it accepted; a pace that
    /// caught up late wake-ups by sending sooner got 58-61 % of nginx
    /// without `burst=` at 100/s with `Retry-After: 1` in real time, and
    /// without it had up to 17 % of its requests refused. Kept for the
    /// host's life, as the opening that tells it. None while other
    /// processes of a fleet send to the host too (their sends come
    /// between), as for [`gap_rates`](Self::gap_rates); a process alone in
    /// its fleet keeps its gaps. None either before the host has a rate of
    /// its own: a quota's headers pace it then, and a gap of `min_rate`'s
    /// interval held a request 100 s where Flask-Limiter's "1 per second"
    /// asked for 2 (the headers, not a refusal, set the pace; the one
    /// request it took of the four sent together read as a limiter without
    /// a burst).
    pub(crate) fn min_gap(&self) -> Option<Duration> {
        let own = self.estimate.max(self.pace);
        if !self.spacing.opened_without_burst() || self.shared() || own <= 0.0 {
            return None;
        }
        Some(Duration::from_secs_f64(1.0 / own.max(self.min_rate)))
    }

    /// The rates a limiter without a burst may have, by the gaps of this
    /// process's sends (see [`Spacing::no_burst_rates`]). None in a fleet:
    /// one process's gaps are not what the limiter sees, and with two
    /// refusals enough to tell, the interleaved sends of others could
    /// pass for a clean separation.
    fn gap_rates(&self, now: Instant) -> Option<(f64, f64)> {
        self.gap_rates_of_sends_before(self.answered_before(now))
    }

    /// [`gap_rates`](Self::gap_rates) of the sends before `before`.
    pub(super) fn gap_rates_of_sends_before(&self, before: Instant) -> Option<(f64, f64)> {
        if self.shared() {
            return None;
        }
        self.spacing.no_burst_rates(before)
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

    /// Sets the pace from the estimate after a loss.
    fn settle(&mut self, now: Instant) {
        let pace_before = self.pace;
        self.pace = match self.basis {
            Basis::Guess => self.estimate,
            _ => self.estimate * self.hold(),
        }
        .max(self.min_rate);
        self.refused_far_above |= pace_before >= REFUSED_FAR_ABOVE * self.estimate;
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
            // A decline refused a large share (not blocks of a counting
            // window's) keeps judging by the reference it began under,
            // the counts restarted: a server that refuses a fifth of all
            // requests stepped the pace down a seventh a cut, and a
            // reference made at each cut was never 0.7 behind it (3 200/s
            // fell to 2/s).
            let share = f64::from(r) / f64::from(a + r);
            let declining = self.before_cut.is_some_and(|(_, p, _)| pace_before < p);
            if !(declining && (IGNORED_FROM..IN_BLOCKS_FROM).contains(&share)) {
                let accepted = self.accepted_since_reference(now);
                self.before_cut = Some((share, pace_before, accepted));
            }
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

mod announced;
mod ban;
mod counts;
mod cycles;
mod fleet;
mod loss;
mod named;
mod noise;
mod probe;
mod slow;
mod suspicion;
mod trial;
mod window;
mod window_test;

#[cfg(test)]
mod tests;
