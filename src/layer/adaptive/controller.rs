//! One host's controller: admission (a permit of the concurrency limit and
//! a slot of the pace) and what each answer teaches both. Whichever limit
//! binds wins.
//!
//! Over 400 lines: the one place the parts' state is joined, the
//! answer's routing to them most of it (each part's rules live in its own
//! file, the tests in `controller_tests.rs`).

use std::time::Duration;

use tokio::time::Instant;

use super::concurrency::Concurrency;
use super::depths::Depths;
use super::fit::SEARCH_STEP;
use super::named_slots::NamedSlots;
use super::pacer::Pacer;
use super::rate::{Basis, RateControl};
use super::{AdaptiveConfig, Admit, Limits, Outcome};
use crate::layer::precise_wait::EXACT_BELOW;
use crate::layer::signal::Signal;
use crate::retry_after::Announced;

/// The gaps a limiter without a burst needs kept that are waited for to
/// the microsecond (see [`Controller::slots_to_the_microsecond`]).
const PRECISE_GAPS_FROM: Duration = Duration::from_millis(1);
const PRECISE_GAPS_TO: Duration = Duration::from_millis(50);

/// One host's controller.
#[derive(Debug)]
pub(crate) struct Controller {
    concurrency: Concurrency,
    pace: RateControl,
    pacer: Pacer,
    /// The mean depth successes and losses were sent at, lately.
    depths: Depths,
    /// The slots the host's refusals named exactly, once one did.
    named: Option<Box<NamedSlots>>,
}

impl Controller {
    pub(crate) fn new(cfg: AdaptiveConfig, now: Instant) -> Self {
        Self {
            concurrency: Concurrency::new(&cfg, now),
            pace: RateControl::new(cfg.min_rate, now),
            pacer: Pacer::new(now),
            depths: Depths::default(),
            named: None,
        }
    }

    /// Asks to send at `now`: takes a pacing slot and a permit, or says
    /// what to wait for. `lead` is what an earlier [`Admit::At`] returned.
    pub(crate) fn admit(&mut self, now: Instant, lead: Option<u64>) -> Admit {
        let leading = self.pacer.is_leader(lead);
        if self.pacer.has_leader() && !leading {
            return Admit::Queued;
        }
        if !self.concurrency.has_permit() || self.concurrency.holds_for_answers(now, self.pace.last_refusal())
        {
            // The concurrency limit binds, or a hold waits for the answers
            // in flight: the lead goes to whoever comes next, and this
            // request waits for a permit.
            if leading {
                self.pacer.pass_lead();
            }
            return Admit::Full;
        }
        if let Some((slot, interval)) = self.next_slot(now) {
            if slot > now {
                self.pace.bound_at = Some(now);
                self.pacer.promise(slot);
                return Admit::At(self.look_again_at(slot, now), self.pacer.lead(lead));
            }
            self.pacer.take(slot, now, interval);
        }
        if leading {
            self.pacer.pass_lead();
        }
        self.send(now);
        Admit::Now
    }

    /// Whether [`admit`](Self::admit) with `lead` would send at `now`;
    /// changes nothing but the search's step. A fleet's slot is asked for
    /// only then, so none is spent on a request the pace holds back.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn would_admit(&mut self, now: Instant, lead: Option<u64>) -> bool {
        if self.pacer.has_leader() && !self.pacer.is_leader(lead) {
            return false;
        }
        self.concurrency.has_permit() && self.next_slot(now).is_none_or(|(slot, _)| slot <= now)
    }

    /// Takes a permit and a send slot at `now` if both are free and no
    /// request leads the pacing queue; changes nothing otherwise.
    #[inline]
    pub(crate) fn try_admit_now(&mut self, now: Instant) -> bool {
        if self.pacer.has_leader()
            || !self.concurrency.has_permit()
            || self.concurrency.holds_for_answers(now, self.pace.last_refusal())
        {
            return false;
        }
        if let Some((slot, interval)) = self.next_slot(now) {
            if slot > now {
                return false;
            }
            self.pacer.take(slot, now, interval);
        }
        self.send(now);
        true
    }

    /// When the leader waiting for `slot` looks again: at the slot, or a
    /// search step on while a search after a `Retry-After` pause grows the
    /// pace each step and the slot is more than two steps off. A slot is
    /// set at the pace of its time: a search from 1/s waited out its first
    /// interval, a second, while the pace grew ninefold, and its refused
    /// send came 135 ms after that wait (nginx at 5/s without `burst=`,
    /// `Retry-After: 1`): the search's cycle read 1.8/s, and the host was
    /// held there, at 34 % of its rate. Not without a pause: the opening
    /// flood may still fill a window that counts a second, and a search
    /// that went at once was refused there and held at 81 % of 3/s.
    /// Nor for a slot two steps off or nearer: at a few a second and more
    /// the search's sends keep up with it. A trickle's slot, too: the
    /// answer that ends the trickle may raise the pace a hundredfold, and
    /// a search after a ban waited out the trickle's 18 s before its first
    /// send.
    fn look_again_at(&self, slot: Instant, now: Instant) -> Instant {
        let may_rise = self.pace.searching_after_pause() || self.pace.trickling();
        if may_rise && slot > now + 2 * SEARCH_STEP {
            now + SEARCH_STEP
        } else {
            slot
        }
    }

    /// The next send slot, and the pace's interval, when the host is paced.
    fn next_slot(&mut self, now: Instant) -> Option<(Instant, Duration)> {
        let named = self.named.as_ref().and_then(|n| n.not_before(now));
        let not_before = self.pace.not_before(now).max(named);
        let Some(rate) = self.pace.rate(now) else {
            // Unpaced: only a spent quota or a named slot holds a send back.
            let at = not_before.filter(|&at| at > now)?;
            return Some((at, Duration::ZERO));
        };
        let interval = Duration::from_secs_f64(1.0 / rate.max(self.pace.min_rate()));
        let slot = self.pacer.next_slot(now, interval, not_before);
        Some((self.pacer.apart(slot, self.pace.min_gap()), interval))
    }

    fn send(&mut self, now: Instant) {
        self.concurrency.on_send(now);
        self.pace.on_send(now);
        if let Some(named) = self.named.as_mut() {
            named.on_send(now);
        }
    }

    /// The paced rate now, if pacing (steps the search).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn rate(&mut self, now: Instant) -> Option<f64> {
        self.pace.rate(now)
    }

    /// Starts from a rate learned elsewhere (by the fleet), if this host
    /// has none of its own yet.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn seed(&mut self, now: Instant, rate: f64, measured: bool) {
        self.pace.seed(now, rate, measured);
    }

    /// Another process of the fleet was refused with `Retry-After`, and
    /// the host is paused here too (see [`RateControl::on_fleet_pause`]).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn on_fleet_pause(&mut self, now: Instant) {
        self.pace.on_fleet_pause(now);
    }

    /// Something other than this pace (a fleet's budget) held a request
    /// back at `now`, where the pace would have: the search and the probes
    /// go on.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn pace_bound(&mut self, now: Instant) {
        self.pace.bound_at = Some(now);
    }

    /// In a fleet, this process's share of the host (see
    /// [`RateControl::set_share`]).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn set_share(&mut self, share: f64) {
        self.pace.set_share(share);
    }

    /// The rate control, for a fleet's shared cycles (see `fleet_fit.rs`).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn rate_control(&mut self) -> &mut RateControl {
        &mut self.pace
    }

    /// Whether the pace holds below a measured rate (not a search).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn rate_is_measured(&self) -> bool {
        self.pace.estimate().1 == Basis::Measured
    }

    /// Whether the rate estimate is this controller's own finding (not a
    /// rate seeded from elsewhere).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn estimate_is_own(&self) -> bool {
        self.pace.estimate_is_own()
    }

    /// What a request told [`Admit::Queued`] or [`Admit::Full`] waits on.
    pub(crate) fn waits_on(&self, admit: Admit) -> Option<&Signal> {
        match admit {
            Admit::Queued => Some(&self.pacer.paced),
            Admit::Full => Some(&self.concurrency.released),
            Admit::Now | Admit::At(..) => None,
        }
    }

    /// Whether a wait for this host's next slot must end on it to the
    /// microsecond, not at the timer's next millisecond: a limiter without
    /// a burst refuses a send sooner than one interval after the last,
    /// and its sends are kept that far apart from when each went, so each
    /// millisecond a timer wakes late is lost to the rate. Sends 1 to
    /// 50 ms apart: faster, the pacer sends in bunches of a tick; slower,
    /// a millisecond is under 2 % of the rate.
    pub(crate) fn slots_to_the_microsecond(&self) -> bool {
        self.pace
            .min_gap()
            .is_some_and(|gap| (PRECISE_GAPS_FROM..=PRECISE_GAPS_TO).contains(&gap))
    }

    /// Wakes the next request in the pacing queue.
    pub(crate) fn wake_next_paced(&self) {
        self.pacer.paced.notify_one();
    }

    /// Gives up the lead `id` if it still holds it (its request was
    /// dropped).
    pub(crate) fn abandon(&mut self, id: u64) {
        self.pacer.abandon(id);
    }

    /// A request sent at `sent_at` was dropped before its answer.
    pub(crate) fn cancelled(&mut self, sent_at: Instant) {
        self.concurrency.cancelled(sent_at);
        self.pace.on_fleet_flood_answer(false);
    }

    /// Gives back a permit taken by [`admit`](Self::admit).
    pub(crate) fn release(&mut self) {
        self.concurrency.release();
    }

    /// Requests holding a permit now (the depth a request just admitted
    /// was sent at).
    pub(crate) fn in_flight(&self) -> usize {
        self.concurrency.in_flight()
    }

    /// Learns from one answer to a request sent at `sent_at` with `depth`
    /// requests in flight (itself included).
    /// `pause` is what the answer's `Retry-After` asked, if anything. A
    /// wait under [`EXACT_BELOW`] is an exact one (`X-Retry-In`,
    /// `retry-after-ms`): the limiter's next slot, which holds the next
    /// send here (the layer does not pause the host for it), and the pace
    /// learns the refusal as one without a hint. Learned as a pause, the
    /// cycles between pauses (`rate/cycles.rs`) ended every few
    /// milliseconds and none was fitted: against Traefik's 30/s with a
    /// burst of 50 the pace held at a guess of 75/s, and half the
    /// requests were refused.
    pub(crate) fn on_answer(
        &mut self,
        now: Instant,
        sent_at: Instant,
        depth: usize,
        outcome: Outcome,
        pause: Option<Duration>,
    ) {
        let named_wait = pause.filter(|&wait| wait < EXACT_BELOW);
        let (pause, measured) = match named_wait {
            Some(wait) => (None, self.slot_named(now + wait, sent_at)),
            None if matches!(outcome, Outcome::Success | Outcome::Served) => (
                pause,
                self.named.as_mut().and_then(|named| named.on_accepted(sent_at)),
            ),
            None => (pause, None),
        };
        match outcome {
            Outcome::Success => {
                self.depths.success_at(depth);
                self.pace.on_accepted(now, sent_at);
                if self.concurrency.last_held_answer() && self.pace.guess_after_flood(now) {
                    // The flood spent what the host takes at once: the
                    // first paced send waits an interval, as if one went
                    // now (at once, it was refused).
                    if let Some((_, interval)) = self.next_slot(now) {
                        self.pacer.take(now, now, interval);
                    }
                }
                self.concurrency.on_answer(now, sent_at, depth);
            }
            // A 429 spends the rate, not the server, and says nothing of
            // queueing either: a limiter refuses before the work, so its
            // round trip is the network's alone. Taken as an answer, a
            // far server's fast refusals set the minimum round trip and
            // every served request looked late (100 ms away, the limit
            // fell to one in flight).
            Outcome::Throttled => {
                self.refused_for_rate(now, sent_at, pause);
                // Refused a round's worth (as many as the limit lets go at
                // once) before anything was accepted, with no pace yet: a
                // limiter answers its refusals at once and its acceptances
                // a round trip later, and each refusal freed a permit for
                // the next send at once. Against a window of 3/s, a closed
                // loop of 64 sent twelve requests in its first millisecond,
                // nine refused, each one counted by a window that counts
                // refusals, which then held the host at a third of its
                // rate. The answers in flight tell what it accepted; no
                // send until they are in. (Not after fewer: an open loop
                // 200 ms away sent a few more between its refusals, which
                // the host took, and those told the search where to start.
                // Nor for a 503, whose depths tell a limit on requests in
                // flight, and the round sent together once the hold ended
                // read as one: a GCRA of 500/s 20 ms away was held at two
                // in flight.)
                if self.pace.refused_before_accepting() >= self.concurrency.limit() as u32 {
                    self.concurrency.hold_for_answers();
                }
            }
            // A 503 that says when to come back is a refusal for rate too
            // (nginx `limit_req` answers 503 by default): the pause and the
            // pace answer it. Cut as an overload as well, a far host's
            // concurrency fell with each refusal, to a few in flight: 21 %
            // of 500/s with a one-request burst 100 ms away.
            Outcome::Loss if pause.is_some() => self.refused_for_rate(now, sent_at, pause),
            Outcome::Loss => {
                // Refused deeper than successes are sent, and not told to
                // pause: a limit on requests in flight, which the
                // concurrency limit finds. A rate limiter answering 503
                // (nginx `limit_req`'s default) refuses at the depths it
                // also accepts at: a refusal for rate, as a 429 is. Cut as
                // an overload too, a host 50 ms away with a one-request
                // burst settled at three in flight, 12 % of its rate.
                self.depths.loss_at(depth);
                if pause.is_none() && self.depths.losses_follow_depth(depth) {
                    self.concurrency.on_depth_loss(now, sent_at, depth);
                } else {
                    self.refused_for_rate(now, sent_at, pause);
                }
            }
            Outcome::Failed => {
                self.pace.on_loss(now, sent_at, None);
                self.concurrency.on_loss(now, sent_at);
            }
            Outcome::Served => {
                self.pace.on_accepted(now, sent_at);
                self.concurrency.forget(sent_at);
            }
            Outcome::Neutral => self.concurrency.forget(sent_at),
        }
        let refused = matches!(outcome, Outcome::Throttled) || (outcome == Outcome::Loss && pause.is_some());
        self.pace.on_fleet_flood_answer(refused);
        if let Some(rate) = measured {
            self.pace.measured_by_named_slots(now, rate);
        }
        if let Some(wait) = named_wait {
            self.pace.guess_from_named_wait(now, wait);
        }
    }

    /// A refusal of a request sent at `sent` named the limiter's next
    /// slot: no send before it (see `named_slots.rs`). Returns the rate an
    /// earlier stretch between two refusals measured, if one did.
    fn slot_named(&mut self, slot: Instant, sent: Instant) -> Option<f64> {
        match self.named.as_mut() {
            Some(named) => named.named(slot, sent),
            None => {
                self.named = Some(Box::new(NamedSlots::new(slot, sent)));
                None
            }
        }
    }

    /// A refusal that spends the rate, not the server (see `on_answer`).
    fn refused_for_rate(&mut self, now: Instant, sent_at: Instant, pause: Option<Duration>) {
        self.pace.on_loss(now, sent_at, pause);
        self.concurrency.forget(sent_at);
    }

    /// Takes what the answer to a request sent at `sent_at` announced of
    /// the host's limit: a quota, a rate. `depth` is how many requests
    /// were in flight when this answer's was sent: with those in flight
    /// now, they may have overtaken it.
    pub(crate) fn on_announced(
        &mut self,
        now: Instant,
        sent_at: Instant,
        announced: &Announced,
        depth: usize,
    ) {
        if let Some(quota) = &announced.quota {
            let overtaken = (depth + self.concurrency.in_flight()) as u64;
            self.pace.on_quota(now, sent_at, quota, overtaken);
        }
        if let Some(rate) = announced.rate {
            self.pace.on_announced_rate(now, rate);
        }
    }

    /// Current limits, for dashboards. Reads without moving anything: a
    /// dashboard's reading must not step the rate's search.
    pub(crate) fn snapshot(&self, now: Instant) -> Limits {
        let (estimate, basis) = self.pace.estimate();
        Limits {
            concurrency: self.concurrency.limit(),
            in_flight: self.concurrency.in_flight(),
            rate: self.pace.peek_rate(now),
            estimate: (basis != Basis::None).then_some(estimate),
            measured: basis == Basis::Measured,
        }
    }
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
