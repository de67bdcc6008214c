//! What a refusal without `Retry-After` teaches: a measurement at the
//! limit, a search frozen past it, a step back at the hold, or a window
//! that counts refusals.
//!
//! Over 400 lines, two fifths of them comments: the readings of one
//! refusal are one function (`learn_from_loss`), each branch a rule with
//! the measurement that made it.

use std::time::Duration;

use tokio::time::Instant;

use super::suspicion::Ignore;
use super::{Basis, Ceiling, RateControl, MIN_EVIDENCE, PROBE_GROWTH, TOP_PROBE_OVER};

/// Answers needed in slots at the limit for a measurement.
const MIN_AT_LIMIT: u32 = 8;
/// How long a search frozen at its first loss waits for a measurement.
const FREEZE: Duration = Duration::from_millis(600);
/// The least time a count of answers is read as a rate over.
const MIN_SPAN: Duration = Duration::from_millis(500);
/// How long refusals that ignore the pace are ignored in turn, when they
/// are [`NOISE_UNDER`] of the answers or more.
const INDIFFERENT: Duration = Duration::from_secs(10);
/// Refusals that ignore the pace under this share of the answers are
/// held as noise; more leave the host unpaced for [`INDIFFERENT`]. Half
/// refused at random was held at 25/s of 3 200/s unpaced, and served at
/// full speed as noise.
const NOISE_UNDER: f64 = 0.6;
/// Sends under this share of the pace over a second were set by something
/// else (the concurrency limit): the pace was not in charge.
const WAVES_SHARE: f64 = 0.8;
/// The least time since the cut over which two acceptances, refused
/// three to one, step a hold back (see `refused_slowly_at_hold`): faster
/// hosts reach the usual four acceptances within it.
const SLOW_HOLD: Duration = Duration::from_secs(2);
/// How near half the pace a frozen search's measurement must be to read
/// as a limiter without a burst's (see `ceiling_at_the_pace_refused`).
const HALF_THE_PACE: f64 = 0.05;
/// How long refusals below the estimate drain at half the pace.
pub(super) const DRAIN: Duration = Duration::from_millis(500);

/// How far over what the host accepted in the last second its gaps may
/// put a limiter without a burst (sent to at 125 % of its rate, such a
/// limiter accepts half of it, and its gaps say up to twice that).
const GAPS_OVER_ACCEPTED: f64 = 4.0;

impl RateControl {
    /// Whether refusals are ignored as not following the pace (see
    /// [`refusals_ignore_the_pace`](Self::refusals_ignore_the_pace)): for
    /// [`INDIFFERENT`] after that was found, unless the host refuses nine
    /// in ten since. Such a host is not refusing some requests whatever
    /// the pace but nearly all of them, and an unpaced host refused at
    /// once is sent to as fast as answers come back: a moving window of
    /// 30 a second, its quota headers dropped, was sent thousands of
    /// requests in one paused instant.
    fn indifferent(&self, now: Instant) -> bool {
        let (a, r) = self.since_cut;
        let all_refused = a + r >= 2 * MIN_EVIDENCE && r > 9 * a;
        self.noise.indifferent_until.is_some_and(|until| now < until) && !all_refused
    }

    /// Refusals that ignore the pace, [`NOISE_UNDER`] of the answers or
    /// more: no pace from them for [`INDIFFERENT`] (the concurrency limit
    /// still holds the host).
    pub(super) fn ignore_refusals(&mut self, now: Instant) {
        self.before_cut = None;
        self.basis = Basis::None;
        self.noise.indifferent_until = Some(now + INDIFFERENT);
    }

    /// What a loss teaches (see [`RateControl::on_loss`]).
    pub(super) fn learn_from_loss(&mut self, now: Instant, sent_at: Instant, told: Option<Duration>) {
        // The pace is the refusals' from here (see `trial.rs`).
        self.on_trial = None;
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
        if told.is_some() {
            self.on_told(now, sent_at, told);
            return;
        }
        if sent_at >= self.cut_at {
            self.since_cut.1 = self.since_cut.1.saturating_add(1);
        }
        self.cycle_refused = self.cycle_refused.saturating_add(1);
        let last_ok = self.ok_span.map(|(_, last)| last);
        if let Some(d) = self.drain.as_mut() {
            d.on_refused_since(sent_at);
            if d.draining(now) {
                d.on_refused(sent_at, last_ok);
            }
        }
        if self.drained_into_a_gcra(now) {
            return;
        }
        // A loss of a request sent before the pace last changed was answered
        // by that change.
        if sent_at < self.cut_at
            || self.drain.as_ref().is_some_and(|d| d.draining(now))
            || self.indifferent(now)
            || self.drawn_out(now)
        {
            return;
        }
        // Refusals that seemed to ignore a deep cut: judged by the answers
        // at the pace held since, which nothing cuts meanwhile.
        if self.weigh_suspicion(now) {
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
        if !in_episode {
            self.episode_sent = Some(sent_at);
            self.episode_took = 0;
            self.note_held(now);
        }
        self.last_loss = Some(now);
        // What the host accepted of the requests sent in the second before
        // the episode's first refusal, as far as answered now.
        let took = self
            .episode_sent
            .and_then(|at| self.meter.accepted_in_second_to(now, at));
        if let Some(n) = took {
            self.episode_took = self.episode_took.max(u16::try_from(n).unwrap_or(u16::MAX));
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
        if was.is_none() && self.starved_unpaced(now, count == 0) {
            return;
        }
        let short = if count >= MIN_EVIDENCE && span >= Duration::from_millis(250) {
            last_second
        } else {
            0.0
        };
        // At the limit a GCRA accepts its rate; a limiter that accepts in
        // bursts (a sliding window) reads higher there than over the
        // second, and its second is the better measure: within a tenth of
        // it, and one request more (the second's count is whole: at 10/s,
        // 9 of them in the last 0.9 s read 9/s, and the slots at the limit
        // reading 10.7/s were passed over for 17 s while a burst of 100
        // held the estimate at 108/s and the pace drained at half of it,
        // refused four sends in five).
        let short_top = if short > 0.0 {
            1.1 * (f64::from(count) + 1.0) / span.as_secs_f64().max(1.0)
        } else {
            0.0
        };
        let at_limit = self
            .meter
            .at_limit(now, MIN_AT_LIMIT, self.cut_at, self.served_rtt)
            .filter(|&m| m <= short_top);
        // A limiter without a burst accepts well under its rate at the
        // limit; the gaps of what it accepted and refused measure it. Not
        // far over what the host accepted over the last second, though:
        // nginx counts whole milliseconds, and at 2 000/s with a burst of
        // one it accepted two sends 7 µs apart, which read 135 300/s and
        // left the host unpaced, refusing half its sends.
        let gaps = self
            .gap_rates(now)
            .filter(|&(r, _)| last_second == 0.0 || r <= GAPS_OVER_ACCEPTED * last_second);
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
            // them would only stall the crawl.
            // Under 60 % refused: noise of that share, the pace back where
            // they began cutting it (see `noise.rs`). Left unpaced
            // instead, a window that counts refusals under a fifth of
            // noise was flooded: 64 % refused. More: no pace from them for
            // a while (the concurrency limit still holds the host). Either
            // only once a second deep cut, held, confirms it (see
            // `suspicion.rs`).
            let then = match self.before_cut {
                Some((share, pace, _)) if share < NOISE_UNDER => Ignore::AsNoise {
                    share,
                    top: pace / self.hold(),
                },
                _ => Ignore::Unpaced,
            };
            return self.suspect(now, then);
        }
        // Refused far more than accepted at the hold (see
        // `refused_far_past_the_rate`): the acceptances bound the rate,
        // before any rule below reads the refusals as a window's.
        let at_hold = was.is_some_and(|r| !self.above_hold(r));
        if in_episode && at_hold && self.basis == Basis::Measured {
            if let Some(rate) = self.refused_far_past_the_rate(now).filter(|&r| r < self.estimate) {
                self.estimate = rate.max(self.min_rate);
                self.costly_probe();
                self.settle(now);
                return;
            }
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
            let window = took.map_or(0.0, |n| f64::from(n).min(cap));
            self.drain(now, short.max(window));
            return;
        }
        if holding && in_episode {
            // A search frozen past a GCRA's rate: the GCRA accepts one
            // request per interval there, and those steady acceptances
            // measure the rate long before the freeze ends. Not under what
            // the last second accepted: a sliding window accepts as its old
            // entries leave, at the pace of a window ago. They replace the
            // first reading, which the opening's flood can put over the
            // rate (30/s for 20/s with a burst of 20). (A burst of ten hid
            // a rate of 100/s until the search reached 175/s; frozen there
            // 600 ms, one request at a time, it refused 35 sends.)
            let steady = was.filter(|&r| self.above_hold(r)).and_then(|r| {
                self.accepted_steadily_since_cut(now)
                    .filter(|&s| short > 0.0 && s >= short && s < r)
            });
            match at_limit {
                // The slots at the limit measure it, up or down.
                Some(m) => {
                    self.estimate = m.max(self.min_rate);
                    self.bound_by_gaps(gaps);
                    self.ceiling_at_the_pace_refused(was);
                }
                None if steady.is_some() => {
                    self.estimate = steady.map_or(self.estimate, |s| s.max(self.min_rate));
                    self.ceiling_at_the_pace_refused(was);
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
                // Refused three to one at a slow hold: the interval
                // between its acceptances.
                None if let Some(slow) = was
                    .filter(|&r| !self.above_hold(r))
                    .and(self.refused_slowly_at_hold(now)) =>
                {
                    self.estimate = slow.min(self.estimate * self.hold()).max(self.min_rate);
                    self.costly_probe();
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
            self.ceiling = self.ceiling.and_then(|ceiling| {
                was.filter(|&c| c > TOP_PROBE_OVER * self.estimate)
                    .map(|c| Ceiling {
                        rate: c as f32,
                        ..ceiling
                    })
            });
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
            None if self.basis == Basis::None
                && self.since_cut.1 >= MIN_EVIDENCE
                && (self.meter.total() == 0 || (count == 0 && self.refused_in_a_flood(now))) =>
            {
                // Refused eight times before anything was accepted, or in a
                // flood with nothing accepted lately: a window that holds
                // fewer requests than the concurrency limit lets through, a
                // burst spent, or a host that refuses everything. Its
                // refusals come back before any acceptance, and each freed
                // a slot for the next send at once: against HAProxy's
                // counter at 3/s, a closed loop of 64 sent 100 000 requests
                // in a millisecond; against a bucket of three refilled each
                // second, 150 ms away, its burst accepted first, it sent on
                // without end, and no time passed. A search from the
                // slowest pace.
                self.estimate = self.search_floor();
                self.basis = Basis::Guess;
            }
            None if short == 0.0 && (self.basis != Basis::None || count == 0) => {
                // Too little accepted lately to guess a rate from: the pace
                // stays as it is (none before anything was accepted, up to
                // the eight refusals above: the concurrency limit holds the
                // host).
                return;
            }
            None if short == 0.0 => {
                // A slow host (a few requests a second) refuses before eight
                // answers: what it accepted over the last second is a lower
                // bound still, and no pace at all would send at the whole
                // demand into its refusals for ever.
                self.estimate = last_second.max(self.search_floor());
                self.basis = Basis::Guess;
            }
            None => {
                self.estimate = short.max(self.search_floor());
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

    /// A search frozen above the estimate was refused again: what the
    /// host accepted since the cut is a lower bound. When the sends fell
    /// well short of the frozen pace (`was`) over the last second, the
    /// concurrency limit set them, in waves, and that pace, never in
    /// charge, is a ceiling to probe toward. 50 ms away, a one-request
    /// burst at 500/s refused a wave's tail at 400/s under a pace of
    /// 689/s in one run of four, and was held there for the half minute a
    /// costly probe waits: 79 % of its rate.
    ///
    /// A limiter without a burst (its opening took one of the sends that
    /// went together) accepts one send in two just past its rate, so what
    /// it accepted while frozen reads half its rate: the frozen pace is a
    /// ceiling there too, probed toward as such a limiter's gaps are (a
    /// second holds). 100 ms away, nginx without `burst=` at 10/s was held
    /// at 5/s for the minute and more before a probe was due.
    pub(super) fn frozen_search_refused(&mut self, now: Instant, was: Option<f64>) {
        self.estimate = self.estimate.max(self.accepted_since_cut(now));
        let second = Duration::from_secs(1);
        let waves = now.saturating_duration_since(self.resumed_at) >= second
            && self.sent_share(now, second) < WAVES_SHARE;
        // Not at a request or so a second, where each refused probe is a
        // large share of the sends (Traefik's 1/s with a burst of one, a
        // closed loop, went from 9 to 24 % refused).
        let no_burst = self.spacing.opened_without_burst()
            && !self.shared()
            && self.estimate >= 1.5 * self.search_floor();
        if let Some(ceiling) = was.filter(|&r| (waves || no_burst) && r > TOP_PROBE_OVER * self.estimate) {
            self.ceiling = Some(Ceiling {
                rate: ceiling as f32,
                frozen: !no_burst,
            });
        }
    }

    /// Since the cut, four episodes' worth of refusals and sixteen for
    /// each acceptance, and something accepted: a GCRA whose burst the
    /// opening read as its rate, past that burst at a small fraction of
    /// the pace, accepting one request per interval. The rate between the
    /// first and the latest of two acceptances or more is its rate; one
    /// in the time since the cut (half a second at least) bounds it, at
    /// two in that time. nginx at 1/s with `burst=500`, its burst read as
    /// 501/s, refused 485 sends a second for 4 s while the eight
    /// acceptances that measure it at the hold came; a count since the
    /// cut, one in 1.25 s, read 0.8/s, and held it there. A window that
    /// counts refusals, shut, accepts nothing: the trickle is for it.
    /// (100 ms away, the same reading of 10/s with a burst of 500 drained
    /// at half of 440/s again and again for 13 s, as a window that counts
    /// refusals.)
    fn refused_far_past_the_rate(&self, now: Instant) -> Option<f64> {
        let (a, r) = self.since_cut;
        if a == 0 || r < 4 * MIN_EVIDENCE || r < 16 * a {
            return None;
        }
        let (first, last) = self.ok_span?;
        let between = last.saturating_duration_since(first).as_secs_f64();
        let since_cut = now.saturating_duration_since(self.cut_at);
        match a {
            1 if since_cut >= MIN_SPAN => Some(2.0 / since_cut.as_secs_f64()),
            1 => None,
            _ => (between > 0.0).then(|| f64::from(a - 1) / between),
        }
    }

    /// A frozen search measured at half the pace it was refused at, within
    /// [`HALF_THE_PACE`], and no ceiling from the gaps: a limiter without
    /// a burst's sign, so that pace is its ceiling, probed halfway (in
    /// ratio) at a time, each probe held a second. Such a limiter accepts
    /// every other send of a pace a little over its rate, half the pace,
    /// and under an open loop, whose sends never go together, the opening
    /// never tells it apart: nginx at 50/s without `burst=`, 50 ms away,
    /// was measured at 28.5/s from a search frozen at 56.8/s, and probed
    /// 3, 6, 12, 24 % over 25 s back to 43/s. Only from the slots at the
    /// limit and the steady acceptances, which read it exactly: a count
    /// since the cut reads it a tenth low or more (nginx at 10/s without
    /// `burst=`, 300 ms away: 5.15/s of 11.6/s), as near half as `burst=1`
    /// reads there (11.1/s of 22.7/s), whose probes toward such a ceiling
    /// were refused and stepped back to 7/s (72 % of its rate).
    ///
    /// Not in a fleet, even one Redis has left local: four processes on a
    /// sliding log of 500/s, each probing its share toward such a ceiling
    /// through a Redis outage, filled the host's one window (89-91 % with
    /// 0.8-2.6 % refused in three runs of five; none in five without).
    fn ceiling_at_the_pace_refused(&mut self, was: Option<f64>) {
        if self.ceiling.is_some() || self.fleet.is_some() {
            return;
        }
        self.ceiling = was
            .filter(|&w| (2.0 * self.estimate / w - 1.0).abs() <= HALF_THE_PACE)
            .map(|w| Ceiling {
                rate: w as f32,
                frozen: false,
            });
    }

    /// Since the cut, two acceptances or more and three refusals for each,
    /// over [`SLOW_HOLD`] or longer, the latest acceptance within two of
    /// their intervals: a hold far over a slow host's rate, whose
    /// acceptances come too seldom for the usual four. A GCRA driven past
    /// its rate accepts one request per interval: the rate between the
    /// first and the latest acceptance, a little under it (each came with
    /// the first send past its interval). nginx at `rate=6r/m` trickled
    /// into at 0.5/s accepted one send in five for 40 s while four
    /// acceptances came. (Taking half a send's gap out of each interval
    /// read a GCRA at 0.2/s with a burst of 50 over its rate: 23 % refused.)
    fn refused_slowly_at_hold(&self, now: Instant) -> Option<f64> {
        let (a, r) = self.since_cut;
        if r < 3 * a || now.saturating_duration_since(self.cut_at) < SLOW_HOLD {
            return None;
        }
        self.accepted_at_intervals_since_cut(now, 2)
    }

    /// Refusals at the hold, too few to measure: what the host accepted
    /// since the cut, if the pace was above it all along; a small step back
    /// otherwise, and when the cut is too recent for its count to be a rate
    /// (a window that counts refusals accepts in bursts). But a host that
    /// accepted steadily since the cut, one request per interval, measures
    /// its rate so however recent the cut: a GCRA driven past it. Stepped
    /// back 2 % a cut, every eight acceptances, a hold read twice too high
    /// (a crawl sending one request at a time, nginx at 100/s with
    /// `burst=10`, its opening burst counted in) came down over 3 s with
    /// every other request refused.
    pub(super) fn step_back_at_hold(&mut self, now: Instant) {
        let counted = now.saturating_duration_since(self.cut_at) >= MIN_SPAN;
        // Refused between steady acceptances, at least one in three: a
        // window that counts refusals refuses in blocks instead.
        let (a, r) = self.since_cut;
        let accepted = if counted && !self.count_spans_a_shut_window(now) {
            self.accepted_since_cut(now)
        } else if 2 * r >= a && !self.counting_window {
            self.accepted_steadily_since_cut(now).unwrap_or(f64::MAX)
        } else {
            f64::MAX
        };
        // A count of a few acceptances since the cut reads up to one
        // interval low (50 ms away, four in 0.46 s held 10/s at 8.5/s for
        // the half minute a costly probe waits); what the host accepted
        // over the episode, once it is long enough to count, is a floor.
        // So is the hold of an estimate settled before a window that
        // counts refusals shut (see `settled_floor`).
        let floor = self
            .accepted_in_episode(now)
            .unwrap_or(0.0)
            .max(self.settled_floor(now));
        // A drain since the cut that sent about what the host accepted
        // paced the acceptances, not the host: HAProxy's counter of a
        // second at 2 000/s, refused once past a drain of a sixteenth,
        // was cut to the drain's 110/s and held there.
        let drained = self
            .drain
            .as_ref()
            .is_some_and(|d| d.paced_since(self.cut_at, self.estimate, accepted));
        let accepted = if drained { f64::MAX } else { accepted };
        self.estimate = accepted
            .min(self.estimate * self.hold())
            .max(floor.min(self.estimate))
            .max(self.min_rate);
        self.costly_probe();
    }
}
