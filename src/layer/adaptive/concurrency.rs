//! The concurrency half of a host's controller: a limit on requests in
//! flight, moved Vegas-style by the delay signal (`delay.rs`) and cut on
//! loss. Slow start grows it to the knee, probes test one step above it
//! rarely, and at most one decrease happens per round trip.

use std::time::Duration;

use tokio::time::Instant;

use super::delay::{DelaySignal, Verdict};
use super::AdaptiveConfig;
use crate::layer::signal::Signal;

/// Probes failing at the same limit at most double the quiet time this
/// many times.
const MAX_QUIET_DOUBLINGS: u32 = 3;

/// Jittered quiet time after a decrease, before the next probe: 0.5–1.5 s,
/// so many clients do not probe in lockstep.
fn quiet_time() -> Duration {
    Duration::from_millis(500 + fastrand::u64(0..=1000))
}

/// The longest a hold for the answers in flight lasts after the latest
/// refusal (see [`Concurrency::holds_for_answers`]).
const HOLD_AT_MOST: Duration = Duration::from_secs(2);

/// A host's concurrency limit and the requests holding its permits.
#[derive(Debug)]
pub(crate) struct Concurrency {
    max: f64,
    decrease_ratio: f64,
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
    /// The ceiling was set by refusals past a depth, not by queueing.
    refused_ceiling: bool,
    /// No permit until the answers in flight are in (see
    /// [`holds_for_answers`](Self::holds_for_answers)).
    held_for_answers: bool,
    delay: DelaySignal,
    last_decrease: Option<Instant>,
    grow_after: Instant,
    /// Woken when a permit is given back or the limit grows.
    pub(crate) released: Signal,
}

impl Concurrency {
    pub(crate) fn new(cfg: &AdaptiveConfig, now: Instant) -> Self {
        Self {
            max: cfg.max_concurrency as f64,
            decrease_ratio: cfg.decrease_ratio,
            limit: cfg.initial_concurrency as f64,
            in_flight: 0,
            slow_start: true,
            slow_start_good: 0,
            frontier: None,
            probing: false,
            probe_ceiling: f64::MAX,
            probe_after: now,
            failed_probes: 0,
            refused_ceiling: false,
            held_for_answers: false,
            delay: DelaySignal::new(cfg.rtt_tolerance, now),
            last_decrease: None,
            grow_after: now,
            released: Signal::default(),
        }
    }

    /// The limit now.
    pub(crate) fn limit(&self) -> usize {
        (self.limit.floor() as usize).clamp(1, self.max as usize)
    }

    /// Requests holding a permit now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether a permit is free.
    #[inline]
    pub(crate) fn has_permit(&self) -> bool {
        self.in_flight < self.limit()
    }

    /// No permit until the requests in flight now are answered: the host
    /// refused a round's worth before it accepted anything (see
    /// `Controller::on_answer`).
    pub(crate) fn hold_for_answers(&mut self) {
        self.held_for_answers = self.in_flight > 0;
    }

    /// The answer coming in (its permit not yet given back) is the last
    /// one a hold waits for.
    pub(crate) fn last_held_answer(&self) -> bool {
        self.held_for_answers && self.in_flight <= 1
    }

    /// Whether a request at `now` waits for the answers a hold waits for
    /// (see [`hold_for_answers`](Self::hold_for_answers)), the host having
    /// last refused at `refused_at`. Each answer wakes a waiter, as for a
    /// permit, and the hold's end wakes them all. It ends
    /// [`HOLD_AT_MOST`] after the latest refusal, answered or not, for the
    /// first request that asks then (and so for those waiting): a server
    /// that keeps one request unanswered and refuses the others holds the
    /// host no longer. Requests that all wait for it with nothing new
    /// asking go when an answer, or their own timeout, ends their wait.
    #[inline]
    pub(crate) fn holds_for_answers(&mut self, now: Instant, refused_at: Option<Instant>) -> bool {
        if !self.held_for_answers {
            return false;
        }
        let recent = refused_at.is_some_and(|at| now.saturating_duration_since(at) < HOLD_AT_MOST);
        if self.in_flight > 0 && recent {
            return true;
        }
        self.held_for_answers = false;
        self.released.notify_waiters();
        false
    }

    /// A request takes a permit and goes out at `now`.
    pub(crate) fn on_send(&mut self, now: Instant) {
        self.in_flight += 1;
        self.delay.on_send(now);
        if self.slow_start {
            self.watch_frontier(now, true);
        }
    }

    /// Gives a permit back.
    pub(crate) fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.released.notify_one();
    }

    /// A request sent at `sent_at` was dropped before its answer.
    pub(crate) fn cancelled(&mut self, sent_at: Instant) {
        self.forget(sent_at);
        self.release();
    }

    /// Whether a loss of a request sent at `sent_at` is a new event: sent
    /// after the latest decrease, so the answers of requests already in
    /// flight then do not cut twice.
    pub(crate) fn is_fresh(&self, sent_at: Instant) -> bool {
        self.last_decrease.is_none_or(|d| sent_at >= d)
    }

    /// An answer that says nothing about load.
    pub(crate) fn forget(&mut self, sent_at: Instant) {
        self.delay.forget(sent_at);
        self.frontier_done(sent_at);
    }

    /// A loss (503, an inner error): a fresh one multiplies the limit by
    /// `decrease_ratio`.
    pub(crate) fn on_loss(&mut self, now: Instant, sent_at: Instant) {
        let fresh = self.is_fresh(sent_at);
        self.forget(sent_at);
        if fresh {
            self.decrease(now, self.decrease_ratio);
        }
    }

    /// A loss that follows the depth (a limit on requests in flight, such
    /// as nginx's `limit_conn`): a fresh one goes back below the depth it
    /// was sent at, as a probe that queued does, and the next probe to
    /// that depth waits longer each time it fails there.
    pub(crate) fn on_depth_loss(&mut self, now: Instant, sent_at: Instant, depth: usize) {
        let fresh = self.is_fresh(sent_at);
        self.forget(sent_at);
        if fresh {
            if !self.probing {
                // Past a limit the server keeps: later probes to it wait.
                self.probing = true;
                self.limit = self.limit.max(depth as f64);
            }
            self.on_queueing(now, depth.saturating_sub(1));
            self.refused_ceiling = true;
        }
    }

    /// An answer (a success or a 429) to a request sent at `sent_at` at
    /// `depth`: its round trip says whether requests queue.
    pub(crate) fn on_answer(&mut self, now: Instant, sent_at: Instant, depth: usize) {
        let rtt = now.saturating_duration_since(sent_at);
        let (on_time, verdict) = self.delay.observe(now, sent_at, rtt, depth);
        // Queueing while the limit is not what holds requests back (the rate
        // does, or demand is low) is not this limit's doing: only a binding
        // limit is cut for delay.
        let binding = (self.in_flight as f64) + 1.0 >= self.limit.floor();
        if self.slow_start {
            self.frontier_done(sent_at);
            if on_time {
                self.slow_start_good = self.slow_start_good.max(depth);
                self.grow_slow_start();
                self.watch_frontier(now, false);
            } else if binding {
                self.end_slow_start(now);
            }
            return;
        }
        // A probe ends at its first late answer at the new depth: the
        // cohort's verdict would come half a round trip later, and every
        // request sent meanwhile at that depth would queue.
        if self.probing && !on_time && binding && depth as f64 >= self.limit.floor() {
            self.on_queueing(now, 0);
            return;
        }
        match verdict {
            Verdict::Queueing { good_depth } if binding => self.on_queueing(now, good_depth),
            Verdict::Queueing { .. } => self.probing = false,
            Verdict::Clear => {
                if self.probing && self.limit.floor() >= self.probe_ceiling {
                    // A probe at or above the known ceiling held: the
                    // ceiling is gone. Refusals set it, so it was no limit
                    // on requests in flight (a rate limiter with a small
                    // burst refusing the tail of a wave): slow start again,
                    // not one step per round (100 ms away, 500/s took
                    // ten seconds to reach its fifty in flight).
                    if std::mem::take(&mut self.refused_ceiling) {
                        self.slow_start = true;
                        self.slow_start_good = self.limit.floor() as usize;
                        self.frontier = None;
                    }
                    self.failed_probes = 0;
                    self.probe_ceiling = f64::MAX;
                }
                self.probing = false;
                self.grow(now);
            }
            Verdict::Pending => {}
        }
    }

    /// Slow start watches the first request sent deeper than any answered
    /// on time (the frontier). Once it is out longer than the lateness
    /// threshold it is late, answered or not: slow start ends then, instead
    /// of when its answer arrives, which past a knee can take many times
    /// longer while the limit keeps growing. Only a send (`sending`) marks
    /// a new frontier: marked at an answer, it would wait for a request
    /// that was never sent, and end slow start a threshold later.
    fn watch_frontier(&mut self, now: Instant, sending: bool) {
        match self.frontier {
            Some((sent, _)) => {
                let out = now.saturating_duration_since(sent);
                let binding = (self.in_flight as f64) + 1.0 >= self.limit.floor();
                if out > self.delay.late_threshold() && binding {
                    self.end_slow_start(now);
                }
            }
            None if sending && self.in_flight > self.slow_start_good => {
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

    /// Whether the limit is in use (at least half of it): no growth
    /// otherwise.
    fn in_use(&self) -> bool {
        (self.in_flight as f64) * 2.0 >= self.limit.floor()
    }

    /// Slow start: one more per answer on time, but at most a quarter (and
    /// one) beyond the largest depth answered on time, so the limit grows
    /// 1.25× per round trip instead of doubling, and while the first late
    /// answer is on its way only a few requests go past a knee.
    fn grow_slow_start(&mut self) {
        let verified = self.slow_start_good as f64;
        if self.in_use() && self.limit < verified + (verified / 4.0).max(1.0) {
            self.raise_by_one();
        }
    }

    /// The first late answer ends slow start. Its verdict would come a round
    /// trip later, when the limit has grown again, so the limit goes back
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
        if self.limit < self.max {
            let before = self.limit();
            self.limit = (self.limit + 1.0).min(self.max);
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
        self.refused_ceiling = false;
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
}

#[cfg(test)]
#[path = "concurrency_tests.rs"]
mod tests;
