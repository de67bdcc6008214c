//! The adaptive controller of [`GatePolicy::Adaptive`](crate::GatePolicy::Adaptive): per host, a
//! concurrency limit and a send rate, moved by every answer.
//!
//! # Why this design
//!
//! Crawlee's `AutoscaledPool` moves 5 % every 10 s, so it needs minutes to
//! find a server's capacity or to back off (crawlee-python #1224, apify/crawlee
//! #660 and #1306). The published alternatives each cover half the problem:
//!
//! * **AIMD** (Netflix `AIMDLimit`, Vector's ARC) reacts to loss but only on a
//!   concurrency limit. Against a fast server that limits *requests per
//!   second* (a loopback round trip takes 0.1 ms here), one request in flight
//!   already sends thousands a second, so no concurrency limit can hold it to
//!   its rate.
//! * **Vegas / Gradient2** read queueing from round-trip times; Gradient2
//!   ignores drops, and neither paces.
//! * **CUBIC as the AWS SDKs' adaptive retry mode uses it** paces a token
//!   bucket whose rate is cut by a factor on throttling and then grows along
//!   a cubic curve: fast back toward the rate where the loss happened, flat
//!   near it, then probing beyond.
//!
//! So the controller keeps both limits and whichever binds wins:
//!
//! * **Rate** (`rate.rs`) — off until a refusal gives evidence of one.
//!   Built for the limiters servers run (nginx's GCRA with a small burst,
//!   windows that count refusals, quota headers, token buckets): at the
//!   limit a GCRA accepts exactly its rate, so the accepted rate of slots in
//!   which the host both accepted and refused is its estimate; between
//!   `Retry-After` pauses, where nothing can be measured at the limit, two
//!   cycles of sending are fitted as a GCRA (the rate at which both end at
//!   the same excess, whatever the burst), and time paused never counts.
//!   A guess (a lower bound) is searched upward 1.25× per 100 ms; a
//!   measured rate is held at 97 % and probed rarely. Refusals that keep
//!   coming below the accepted rate drain the pace (a window that counts
//!   refusals); refusals whose share does not follow the pace are ignored
//!   for a while (a hostile or broken server). Quota headers set the pace
//!   directly. A 429 moves only the rate; a 503 or an error also cuts the
//!   concurrency limit.
//! * **Pacing is a queue with one leader**: the request at its head holds
//!   the next slot and sleeps until it; the others wait their turn. A rate
//!   change therefore reaches the very next send (reserving a slot per
//!   waiting request kept thousands of sends at an old rate for seconds).
//! * **Concurrency** — Vegas-style, on a delay signal (`delay.rs`): an answer
//!   is late when its round trip exceeds `rtt_tolerance ×` the windowed
//!   minimum, and once per round trip the cohort of requests sent in it is
//!   judged queueing when more than one in eight was late. Slow start
//!   (+1 per answer on time, but at most a quarter past the largest depth
//!   answered on time: 1.25× per round trip rather than doubling, so few
//!   requests go past a knee while the first late answer is on its way)
//!   ends at the first late answer, or as soon as the first request sent
//!   deeper than any answered on time has been out longer than the
//!   tolerance, back at the largest number in flight that was still
//!   answered on time: at the knee, not at the overshoot. Afterwards the limit
//!   grows by one per clear round in which it bound, after a jittered quiet
//!   time of 0.5–1.5 s following any decrease (many clients do not probe in
//!   lockstep). A probe that queues goes back one step at its first late
//!   answer; failing at the same limit again doubles the quiet time (up to
//!   8×), so a host held at its knee sees a probe every few seconds. A loss
//!   multiplies the limit by `decrease_ratio`. Delay while the limit does
//!   not bind (the rate does) is not this limit's doing and cuts nothing.
//! * **At most one decrease per round trip**: an answer counts as loss only
//!   when its request was sent after the previous decrease, so the answers
//!   of requests already in flight do not cut twice.
//! * **Server hints feed it directly**: `Retry-After` pauses the host (as in
//!   `Wait`), and the IETF `RateLimit` field (`r` remaining, `t` seconds to
//!   reset) caps the rate at `r / t` so the quota lasts its window. Without
//!   `Retry-After` there is no pause on top of the controller's own cut
//!   (`Wait`'s back-off would idle a host the rate already slowed).
//!
//! State is a fixed ~650 bytes per host (a test bounds it at 1 KiB),
//! updated under that host's own mutex for a constant-time section,
//! twice per request (admission; the answer and the permit's return).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::ConfigError;

mod delay;
mod meter;
mod permit;
mod rate;

pub(crate) use permit::{AdaptivePermit, Lead};

use delay::{DelaySignal, Verdict};
use rate::RateControl;

/// Settings of [`GatePolicy::Adaptive`](crate::layer::GatePolicy::Adaptive).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AdaptiveConfig {
    /// Concurrency limit of a new host (4).
    pub initial_concurrency: usize,
    /// Highest concurrency limit per host (500).
    pub max_concurrency: usize,
    /// Factor applied to the concurrency limit on loss, and to the rate when
    /// the loss gives only a guess of the host's capacity (0.8). A capacity
    /// measured at the limit cuts the rate to 95 % of it, or to this factor
    /// if it is higher.
    pub decrease_ratio: f64,
    /// Round-trip time, as a multiple of the recent minimum, above which an
    /// answer counts as late (1.5); a round trip with more than one late
    /// answer in eight counts as queueing.
    pub rtt_tolerance: f64,
    /// Lowest paced rate, requests per second (1.0).
    pub min_rate: f64,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            initial_concurrency: 4,
            max_concurrency: 500,
            decrease_ratio: 0.8,
            rtt_tolerance: 1.5,
            min_rate: 1.0,
        }
    }
}

impl AdaptiveConfig {
    /// Checks each value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, value: String, allowed: &str| ConfigError::Invalid {
            field,
            value,
            allowed: allowed.to_owned(),
        };
        if self.max_concurrency == 0 || self.max_concurrency > 1_000_000 {
            return Err(invalid(
                "max_concurrency",
                self.max_concurrency.to_string(),
                "1 ..= 1000000",
            ));
        }
        if self.initial_concurrency == 0 || self.initial_concurrency > self.max_concurrency {
            return Err(invalid(
                "initial_concurrency",
                self.initial_concurrency.to_string(),
                "1 ..= max_concurrency",
            ));
        }
        if !(self.decrease_ratio > 0.0 && self.decrease_ratio < 1.0) {
            return Err(invalid(
                "decrease_ratio",
                self.decrease_ratio.to_string(),
                "(0, 1)",
            ));
        }
        if !(self.rtt_tolerance >= 1.0 && self.rtt_tolerance <= 100.0) {
            return Err(invalid(
                "rtt_tolerance",
                self.rtt_tolerance.to_string(),
                "1 ..= 100",
            ));
        }
        if !(self.min_rate > 0.0 && self.min_rate <= 1e6) {
            return Err(invalid("min_rate", self.min_rate.to_string(), "(0, 1000000]"));
        }
        Ok(())
    }
}

/// How an answer went, for the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx or 3xx.
    Success,
    /// 429: the host's rate is spent. Moves the send rate only: a rate
    /// limiter refuses whatever the concurrency, and cutting it on every
    /// 429 serialised a crawl into one pause per request.
    Throttled,
    /// 503, or an inner error (timeout, refused, reset): overload, which
    /// cuts the concurrency limit as well as the rate.
    Loss,
    /// Any other answer: says nothing about load.
    Neutral,
}

/// A host's limits as [`Controller::snapshot`] reads them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) concurrency: usize,
    pub(crate) in_flight: usize,
    pub(crate) rate: Option<f64>,
    pub(crate) estimate: Option<f64>,
    pub(crate) measured: bool,
}

/// When a request may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Now: a permit is taken.
    Now,
    /// The caller leads the pacing queue: the next slot is at this instant;
    /// come back then with this lead. One request at a time holds the lead,
    /// so a rate change reaches the next send, not one queued long ago.
    At(Instant, u64),
    /// Another request leads: wait on [`Controller::paced`], which is
    /// notified each time the lead is passed on.
    Queued,
    /// When a permit is given back (concurrency).
    Full,
}

/// Probes failing at the same limit at most double the quiet time this
/// many times.
const MAX_QUIET_DOUBLINGS: u32 = 3;

/// Jittered quiet time after a decrease, before the next probe: 0.5–1.5 s,
/// so many clients do not probe in lockstep.
fn quiet_time() -> Duration {
    Duration::from_millis(500 + fastrand::u64(0..=1000))
}

/// tokio's timer granularity: how far a slot may lag `now`.
const TICK: Duration = Duration::from_millis(1);

/// One host's controller.
#[derive(Debug)]
pub(crate) struct Controller {
    cfg: AdaptiveConfig,
    // Concurrency.
    limit: f64,
    in_flight: usize,
    slow_start: bool,
    /// The largest depth answered on time during slow start.
    slow_start_good: usize,
    /// Slow start's frontier: the first request sent deeper than
    /// `slow_start_good`, with its depth, until it ends.
    frontier: Option<(Instant, usize)>,
    /// The limit was just raised and its cohort not judged yet.
    probing: bool,
    /// The lowest limit at which a probe failed lately (`MAX`: none).
    probe_ceiling: f64,
    /// No probe to `probe_ceiling` before this.
    probe_after: Instant,
    /// Probes that failed at the same limit in a row.
    failed_probes: u32,
    delay: DelaySignal,
    last_decrease: Option<Instant>,
    grow_after: Instant,
    // Rate.
    pace: RateControl,
    /// The latest send slot taken.
    last_slot: Instant,
    /// The request that leads the pacing queue, if one waits for a slot.
    leader: Option<u64>,
    next_lead: u64,
    /// Woken when a permit is given back.
    pub(crate) released: Arc<Notify>,
    /// Woken when the pacing lead is passed on.
    pub(crate) paced: Arc<Notify>,
}

impl Controller {
    pub(crate) fn new(cfg: AdaptiveConfig, now: Instant) -> Self {
        Self {
            cfg,
            limit: cfg.initial_concurrency as f64,
            in_flight: 0,
            slow_start: true,
            slow_start_good: 0,
            frontier: None,
            probing: false,
            probe_ceiling: f64::MAX,
            probe_after: now,
            failed_probes: 0,
            delay: DelaySignal::new(cfg.rtt_tolerance, now),
            last_decrease: None,
            grow_after: now,
            pace: RateControl::new(cfg.min_rate, now),
            last_slot: now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
            leader: None,
            next_lead: 0,
            released: Arc::new(Notify::new()),
            paced: Arc::new(Notify::new()),
        }
    }

    /// The concurrency limit now.
    pub(crate) fn limit(&self) -> usize {
        (self.limit.floor() as usize).clamp(1, self.cfg.max_concurrency)
    }

    /// The paced rate now (requests per second), if pacing.
    pub(crate) fn rate(&mut self, now: Instant) -> Option<f64> {
        self.pace.rate(now)
    }

    /// Asks to send at `now`: takes a pacing slot and a permit, or says
    /// what to wait for. `lead` is what an earlier [`Admit::At`] returned.
    pub(crate) fn admit(&mut self, now: Instant, lead: Option<u64>) -> Admit {
        let leading = lead.is_some() && self.leader == lead;
        if self.leader.is_some() && !leading {
            return Admit::Queued;
        }
        if self.in_flight >= self.limit() {
            // The concurrency limit binds: the lead goes to whoever comes
            // next, and this request waits for a permit.
            if leading {
                self.pass_lead();
            }
            return Admit::Full;
        }
        if let Some(slot) = self.next_slot(now) {
            if slot > now {
                self.pace.bound_at = Some(now);
                let id = match lead {
                    Some(id) if leading => id,
                    _ => {
                        self.next_lead = self.next_lead.wrapping_add(1);
                        self.next_lead
                    }
                };
                self.leader = Some(id);
                return Admit::At(slot, id);
            }
            self.last_slot = slot;
        }
        if leading {
            self.pass_lead();
        }
        self.send(now);
        Admit::Now
    }

    /// Takes a permit and a send slot at `now` if both are free and no
    /// request leads the pacing queue; changes nothing otherwise.
    #[inline]
    pub(crate) fn try_admit_now(&mut self, now: Instant) -> bool {
        if self.leader.is_some() || self.in_flight >= self.limit() {
            return false;
        }
        if let Some(slot) = self.next_slot(now) {
            if slot > now {
                return false;
            }
            self.last_slot = slot;
        }
        self.send(now);
        true
    }

    /// The next send slot when the host is paced.
    fn next_slot(&mut self, now: Instant) -> Option<Instant> {
        let rate = self.rate(now)?;
        let interval = Duration::from_secs_f64(1.0 / rate.max(self.cfg.min_rate));
        // After a stall the pace catches up by one timer tick (1 ms) or one
        // interval, whichever is less, never by a burst: a small-burst
        // limiter refuses what a catch-up bunches together.
        let earliest = now.checked_sub(interval.max(TICK)).unwrap_or(now);
        let mut slot = (self.last_slot + interval).max(earliest);
        if let Some(at) = self.pace.not_before(now) {
            slot = slot.max(at);
        }
        Some(slot)
    }

    /// A request goes out at `now` with a permit.
    fn send(&mut self, now: Instant) {
        self.in_flight += 1;
        self.delay.on_send(now);
        self.pace.on_send(now);
        if self.slow_start {
            self.watch_frontier(now);
        }
    }

    /// Slow start watches the first request sent deeper than any answered
    /// on time (the frontier). Once it is out longer than the lateness
    /// threshold it is late, answered or not: slow start ends then, instead
    /// of when its answer arrives, which past a knee can take many times
    /// longer while the limit keeps growing.
    fn watch_frontier(&mut self, now: Instant) {
        match self.frontier {
            Some((sent, _)) => {
                let out = now.saturating_duration_since(sent);
                let binding = (self.in_flight as f64) + 1.0 >= self.limit.floor();
                if out > self.delay.late_threshold() && binding {
                    self.end_slow_start(now);
                }
            }
            None if self.in_flight > self.slow_start_good => {
                self.frontier = Some((now, self.in_flight));
            }
            None => {}
        }
    }

    /// The frontier's request ended (answered, failed or dropped).
    fn frontier_done(&mut self, sent_at: Instant) {
        if self.frontier.is_some_and(|(sent, _)| sent == sent_at) {
            self.frontier = None;
        }
    }

    /// What a request told [`Admit::Queued`] or [`Admit::Full`] waits on.
    pub(crate) fn waits_on(&self, admit: Admit) -> Option<&Arc<Notify>> {
        match admit {
            Admit::Queued => Some(&self.paced),
            Admit::Full => Some(&self.released),
            Admit::Now | Admit::At(..) => None,
        }
    }

    /// The leader is done (sent, cancelled, or waiting for a permit): the
    /// next queued request takes the lead.
    fn pass_lead(&mut self) {
        self.leader = None;
        self.paced.notify_one();
    }

    /// Gives up the lead `id` if it still holds it (its request was
    /// dropped).
    pub(crate) fn abandon(&mut self, id: u64) {
        if self.leader == Some(id) {
            self.pass_lead();
        }
    }

    /// A request sent at `sent_at` was dropped before its answer.
    pub(crate) fn cancelled(&mut self, sent_at: Instant) {
        self.delay.forget(sent_at);
        self.frontier_done(sent_at);
        self.release();
    }

    /// Gives back a permit taken by [`admit`](Self::admit).
    pub(crate) fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.released.notify_one();
    }

    /// Requests holding a permit now (the depth a request just admitted
    /// was sent at).
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Learns from one answer to a request sent at `sent_at` with `depth`
    /// requests in flight (itself included).
    /// `pause` is what the answer's `Retry-After` asked, if anything.
    pub(crate) fn on_answer(
        &mut self,
        now: Instant,
        sent_at: Instant,
        depth: usize,
        outcome: Outcome,
        pause: Option<Duration>,
    ) {
        let fresh = self.last_decrease.is_none_or(|d| sent_at >= d);
        match outcome {
            Outcome::Success | Outcome::Throttled => {
                // A 429 spends the rate, not the server: for the
                // concurrency limit it is an answer like any other (its
                // round trip says whether requests queue).
                if outcome == Outcome::Success {
                    self.pace.on_accepted(now, sent_at);
                } else {
                    self.pace.on_loss(now, sent_at, pause.is_some());
                }
                let rtt = now.saturating_duration_since(sent_at);
                let (on_time, verdict) = self.delay.observe(now, sent_at, rtt, depth);
                // Queueing while the limit is not what holds requests back
                // (the rate does, or demand is low) is not this limit's
                // doing: only a binding limit is cut for delay.
                let binding = (self.in_flight as f64) + 1.0 >= self.limit.floor();
                if self.slow_start {
                    self.frontier_done(sent_at);
                    if on_time {
                        self.slow_start_good = self.slow_start_good.max(depth);
                        self.grow_slow_start();
                        self.watch_frontier(now);
                    } else if binding {
                        self.end_slow_start(now);
                    }
                    return;
                }
                // A probe ends at its first late answer at the new depth: the
                // cohort's verdict would come half a round trip later, and
                // every request sent meanwhile at that depth would queue.
                if self.probing && !on_time && binding && depth as f64 >= self.limit.floor() {
                    self.on_queueing(now, 0);
                    return;
                }
                match verdict {
                    Verdict::Queueing { good_depth } if binding => self.on_queueing(now, good_depth),
                    Verdict::Queueing { .. } => self.probing = false,
                    Verdict::Clear => {
                        if self.probing && self.limit.floor() >= self.probe_ceiling {
                            // A probe at or above the known ceiling held:
                            // the ceiling is gone.
                            self.failed_probes = 0;
                            self.probe_ceiling = f64::MAX;
                        }
                        self.probing = false;
                        self.grow(now);
                    }
                    Verdict::Pending => {}
                }
            }
            Outcome::Loss => {
                self.delay.forget(sent_at);
                self.frontier_done(sent_at);
                self.pace.on_loss(now, sent_at, pause.is_some());
                if fresh {
                    self.decrease(now, self.cfg.decrease_ratio);
                }
            }
            Outcome::Neutral => {
                self.delay.forget(sent_at);
                self.frontier_done(sent_at);
            }
        }
    }

    /// Whether the limit is in use (at least half of it): no growth
    /// otherwise.
    fn in_use(&self) -> bool {
        (self.in_flight as f64) * 2.0 >= self.limit.floor()
    }

    /// Slow start: one more per answer on time, so the limit doubles each
    /// round trip.
    fn grow_slow_start(&mut self) {
        // At most a quarter (and one) beyond the largest depth answered on
        // time: the limit grows 1.25× per round trip instead of doubling, so
        // while the first late answer is on its way only a few requests go
        // past a knee.
        let verified = self.slow_start_good as f64;
        if self.in_use() && self.limit < verified + (verified / 4.0).max(1.0) {
            self.raise_by_one();
        }
    }

    /// The first late answer ends slow start. Its verdict would come a round
    /// trip later, when the limit has doubled again, so the limit goes back
    /// at once to the largest depth answered on time.
    fn end_slow_start(&mut self, now: Instant) {
        self.slow_start = false;
        self.frontier = None;
        let good = (self.slow_start_good as f64).max(1.0);
        if good < self.limit {
            self.limit = good;
            self.last_decrease = Some(now);
        }
        self.delay.limit_changed(now);
    }

    /// Congestion avoidance: one more per clear round in which the limit
    /// bound, after the quiet time that follows a decrease.
    fn grow(&mut self, now: Instant) {
        if (self.in_flight as f64) + 1.0 < self.limit.floor() || now < self.grow_after {
            return;
        }
        // The next step reaches a level where probes failed: wait longer.
        if self.limit.floor() + 1.0 >= self.probe_ceiling && now < self.probe_after {
            return;
        }
        self.raise_by_one();
        self.probing = true;
        self.delay.limit_changed(now);
    }

    fn raise_by_one(&mut self) {
        let max = self.cfg.max_concurrency as f64;
        if self.limit < max {
            let before = self.limit();
            self.limit = (self.limit + 1.0).min(max);
            // A request waiting for a permit takes the new one now, not at
            // the next answer.
            if self.limit() > before {
                self.released.notify_one();
            }
        }
    }

    /// A round of late answers: back to the largest depth still answered on
    /// time (one less than now at least, half at most). The depth estimate
    /// ends slow start at the knee instead of at half an overshoot, and in
    /// steady state a probe one above the knee costs one step back.
    fn on_queueing(&mut self, now: Instant, good_depth: usize) {
        let below = self.limit.floor() - 1.0;
        let target = if good_depth > 0 {
            (good_depth as f64).min(below)
        } else {
            below
        };
        let new = target.max(self.limit * 0.5).max(1.0);
        // A probe that failed where the last one failed finds a known
        // ceiling: the next probe *to that level* waits twice as long (up to
        // 8×), so a host at its knee sees rare probes. Queueing at a limit
        // that held (noise, or a real drop) leaves the count alone: growing
        // back below the ceiling only waits the short quiet time.
        if self.probing {
            let at = self.limit.floor();
            if at == self.probe_ceiling {
                self.failed_probes = (self.failed_probes + 1).min(MAX_QUIET_DOUBLINGS);
            } else {
                self.probe_ceiling = at;
                self.failed_probes = 0;
            }
            self.probe_after = now + quiet_time() * (1 << self.failed_probes);
        }
        self.decrease(now, new / self.limit.max(1.0));
    }

    fn decrease(&mut self, now: Instant, factor: f64) {
        self.slow_start = false;
        self.limit = (self.limit * factor).max(1.0);
        self.last_decrease = Some(now);
        self.delay.limit_changed(now);
        self.probing = false;
        self.grow_after = now + quiet_time();
    }

    /// Takes a quota: `remaining` requests until a reset that lies in
    /// `(now + reset_lo, now + reset_hi]`.
    pub(crate) fn on_quota(&mut self, now: Instant, remaining: u64, reset_lo: Duration, reset_hi: Duration) {
        self.pace.on_quota(now, remaining, reset_lo, reset_hi);
    }

    /// Current limits, for dashboards.
    pub(crate) fn snapshot(&mut self, now: Instant) -> Limits {
        let (estimate, basis) = self.pace.estimate();
        Limits {
            concurrency: self.limit(),
            in_flight: self.in_flight,
            rate: self.rate(now),
            estimate: (basis != rate::Basis::None).then_some(estimate),
            measured: basis == rate::Basis::Measured,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_grows_a_quarter_past_what_was_on_time_then_a_loss_cuts() {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        // One round trip at the limit, sent at depths 1 to 4.
        let mut now = t0;
        for _ in 0..4 {
            assert_eq!(c.admit(now, None), Admit::Now);
        }
        assert_eq!(c.admit(now, None), Admit::Full);
        now += ms(10);
        // Each answer is followed by the next request, as in a busy client.
        for depth in 1..=4 {
            c.on_answer(now, now - ms(10), depth, Outcome::Success, None);
            c.release();
            while c.admit(now, None) == Admit::Now {}
        }
        assert_eq!(c.limit(), 5, "one past the 4 answered on time");
        // Depth 5 on time too: 5 + 5/4.
        c.on_answer(now + ms(10), now, 5, Outcome::Success, None);
        c.release();
        while c.admit(now + ms(10), None) == Admit::Now {}
        assert_eq!(c.limit(), 6);
        // An idle client (nothing in flight) does not grow the limit.
        let mut idle = Controller::new(AdaptiveConfig::default(), t0);
        idle.on_answer(now, now - ms(10), 1, Outcome::Success, None);
        assert_eq!(idle.limit(), 4);
        // A loss (503) multiplies the limit by 0.8; 5 answers accepted are
        // too few to guess a rate from, so no pacing yet.
        let later = now + ms(10);
        c.on_answer(later, later - ms(5), 1, Outcome::Loss, None);
        assert_eq!(c.limit(), 4, "6 × 0.8");
        assert_eq!(c.rate(later), None);
        // A 429 cuts no concurrency: the rate is what it spends.
        c.on_answer(later + ms(1), later, 1, Outcome::Throttled, None);
        assert_eq!(c.limit(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_of_requests_sent_before_a_decrease_do_not_cut_again() {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        c.limit = 100.0;
        let now = t0 + ms(100);
        c.on_answer(now, t0, 1, Outcome::Loss, None);
        assert_eq!(c.limit(), 80);
        c.on_answer(now + ms(1), t0 + ms(50), 1, Outcome::Loss, None);
        assert_eq!(c.limit(), 80, "sent before the decrease: same congestion event");
        c.on_answer(now + ms(20), now + ms(10), 1, Outcome::Loss, None);
        assert_eq!(c.limit(), 64, "sent after it: a new event");
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_ends_at_the_largest_depth_answered_on_time() {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        let mut now = t0;
        // Keep the limit full; answers on time (5 ms) up to depth 12, so the
        // limit grows to 12 + 12/4.
        let mut depth = 0;
        while c.limit() < 15 {
            while c.admit(now, None) == Admit::Now {}
            now += ms(1);
            depth = (depth % 12) + 1;
            c.on_answer(now, now - ms(5), depth, Outcome::Success, None);
            c.release();
        }
        assert!(c.slow_start);
        while c.admit(now, None) == Admit::Now {}
        // The first late answer (20 ms, sent at depth 20) ends it at 12.
        c.on_answer(now + ms(1), now - ms(19), 20, Outcome::Success, None);
        assert!(!c.slow_start);
        assert_eq!(c.limit(), 12);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_ends_when_its_frontier_is_overdue_not_when_it_answers() {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        // Depths 1–4 answered in 5 ms: the limit may reach 5.
        for _ in 0..4 {
            assert_eq!(c.admit(t0, None), Admit::Now);
        }
        let t1 = t0 + ms(5);
        for depth in (1..=4).rev() {
            c.on_answer(t1, t0, depth, Outcome::Success, None);
            c.release();
        }
        assert_eq!(c.limit(), 5);
        // Five sent at t1; the fifth (depth 5) is the frontier.
        for _ in 0..5 {
            assert_eq!(c.admit(t1, None), Admit::Now);
        }
        // 9 ms later (past the threshold: 1.5 × 5 ms, and at least 3 ms over
        // the minimum) it has not answered; another request, sent later,
        // answers on time: slow start ends at depth 4 now.
        c.on_answer(t1 + ms(9), t1 + ms(5), 2, Outcome::Success, None);
        assert!(!c.slow_start);
        assert_eq!(c.limit(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn queueing_while_the_rate_binds_does_not_cut_the_limit() {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        c.slow_start = false;
        c.limit = 10.0;
        let mut now = t0;
        // One request in flight at a time (the pacer holds the rest), with
        // round trips that go from 5 ms to 40 ms.
        for i in 0..400 {
            assert_eq!(c.admit(now, None), Admit::Now);
            let rtt = if i < 100 { ms(5) } else { ms(40) };
            now += rtt;
            c.on_answer(now, now - rtt, 1, Outcome::Success, None);
            c.release();
        }
        assert_eq!(c.limit(), 10, "the limit was never what held requests back");
    }

    #[test]
    fn state_per_host_is_small_and_fixed() {
        let size = std::mem::size_of::<Controller>();
        assert!(size <= 1024, "{size} bytes");
    }

    #[test]
    fn config_rules() {
        assert!(AdaptiveConfig::default().validate().is_ok());
        let bad = AdaptiveConfig {
            decrease_ratio: 1.0,
            ..AdaptiveConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field(), "decrease_ratio");
    }
}

#[cfg(test)]
mod simulation {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// What a run against the simulated knee showed.
    struct KneeRun {
        /// The limit every 100 ms.
        limits: Vec<usize>,
        /// Share of answers later than 1.5 × the base latency.
        late: f64,
        /// Answers per second.
        throughput: f64,
        /// Times the limit went up after slow start.
        probes: usize,
    }

    /// A server whose latency is `base` up to `knee` requests in flight
    /// and `base + step·(n − knee)` beyond, under unbounded demand.
    fn knee_run(seconds: u64) -> KneeRun {
        let (knee, base, step) = (16usize, Duration::from_millis(5), Duration::from_millis(5));
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        // (answer time, sent at, depth)
        let mut heap: BinaryHeap<Reverse<(Instant, Instant, usize)>> = BinaryHeap::new();
        let mut now = t0;
        let mut limits = Vec::new();
        let mut next_report = t0;
        let (mut late, mut done, mut probes) = (0u64, 0u64, 0usize);
        let end = t0 + Duration::from_secs(seconds);
        while now < end {
            while c.admit(now, None) == Admit::Now {
                let depth = c.in_flight();
                let n = heap.len() + 1;
                let lat = base + step * (n.saturating_sub(knee) as u32);
                heap.push(Reverse((now + lat, now, depth)));
            }
            let Some(Reverse((at, sent, depth))) = heap.pop() else {
                break;
            };
            now = at;
            if now - sent > base * 3 / 2 {
                late += 1;
            }
            done += 1;
            let before = (c.limit(), c.slow_start);
            c.on_answer(now, sent, depth, Outcome::Success, None);
            c.release();
            if !before.1 && c.limit() > before.0 {
                probes += 1;
            }
            while now >= next_report {
                limits.push(c.limit());
                next_report += Duration::from_millis(100);
            }
        }
        KneeRun {
            limits,
            late: late as f64 / done.max(1) as f64,
            throughput: done as f64 / seconds as f64,
            probes,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn settles_at_the_knee_and_probes_it_rarely() {
        let run = knee_run(30);
        let settled = &run.limits[10..];
        let mean = settled.iter().sum::<usize>() as f64 / settled.len() as f64;
        assert!(
            (15.0..=16.5).contains(&mean),
            "mean limit {mean}: {:?}",
            run.limits
        );
        // 16 in flight at 5 ms is 3 200/s.
        assert!(run.throughput > 0.92 * 3200.0, "{}/s", run.throughput);
        assert!(run.late < 0.01, "{} of answers late", run.late);
        // Quiet times of 0.5–1.5 s would give some 30 probes in 30 s;
        // failing at the same limit doubles them (up to 8×).
        assert!((2..=12).contains(&run.probes), "{} probes", run.probes);
    }
}
