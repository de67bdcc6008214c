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
//! * **Rate** — off until the first loss (a 429, a 503, or an inner error such
//!   as a timeout). A loss measures the host's *accepted* rate (2xx answers
//!   in the last second, which under saturation is the server's capacity),
//!   anchors the cubic at it (`w_max`) and cuts the rate to
//!   `decrease_ratio × w_max`. Growth follows `w_max + c·(τ − K)³`, where τ
//!   counts only time during which pacing actually held requests back (no
//!   growth while the limit is not in use). `c` is large while the rate is
//!   far below the highest capacity seen in the last minute (recover fast
//!   after a dip) and small near it (probe rarely a capacity already
//!   known, so a steady server sees few 429s).
//! * **Concurrency** — starts at `initial_concurrency` and doubles every
//!   round trip (slow start) until the first sign of congestion; then grows
//!   by one per round trip while round-trip times stay within
//!   `rtt_tolerance` of their recent minimum and the limit is in use. A
//!   loss multiplies it by `decrease_ratio`; a queueing delay (smoothed RTT
//!   above `rtt_tolerance × min_rtt` and more than 2 ms above it) multiplies
//!   it by 0.9. After any decrease, growth waits for a jittered 0.5–1.5 s, so
//!   many clients do not probe in lockstep and a server sitting at its knee
//!   sees rare probes.
//! * **At most one decrease per round trip**: an answer counts as loss only
//!   when its request was sent after the previous decrease, so the answers
//!   of requests already in flight do not cut twice.
//! * **Server hints feed it directly**: `Retry-After` pauses the host (as in
//!   `Wait`), and the IETF `RateLimit` field (`r` remaining, `t` seconds to
//!   reset) caps the rate at `r / t` so the quota lasts its window.
//!
//! State is a few numbers per host, updated under that host's own mutex for
//! a constant-time section.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::ConfigError;

/// Settings of [`GatePolicy::Adaptive`](crate::layer::GatePolicy::Adaptive).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AdaptiveConfig {
    /// Concurrency limit of a new host (4).
    pub initial_concurrency: usize,
    /// Highest concurrency limit per host (500).
    pub max_concurrency: usize,
    /// Factor applied to the rate and the limit on loss (0.8).
    pub decrease_ratio: f64,
    /// Round-trip time, as a multiple of the recent minimum, above which the
    /// host counts as queueing (1.5).
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
    /// 429, 503, or an inner error (timeout, refused, reset).
    Loss,
    /// Any other answer: says nothing about load.
    Neutral,
}

/// Relative cubic steepness far below the remembered ceiling (fast).
const C_FAST: f64 = 0.01;
/// Relative cubic steepness near the ceiling (rare probes).
const C_SLOW: f64 = 0.0005;
/// How long the ceiling is remembered.
const CEILING_MEMORY: Duration = Duration::from_secs(60);
/// Window of the accepted-rate meter.
const METER_WINDOW: Duration = Duration::from_secs(1);
const METER_SLOTS: usize = 8;

/// Counts answers in fixed slots over [`METER_WINDOW`].
#[derive(Debug, Clone)]
struct Meter {
    slots: [u32; METER_SLOTS],
    slot_start: Instant,
    head: usize,
}

impl Meter {
    fn new(now: Instant) -> Self {
        Self {
            slots: [0; METER_SLOTS],
            slot_start: now,
            head: 0,
        }
    }

    fn slot_len() -> Duration {
        METER_WINDOW / METER_SLOTS as u32
    }

    fn advance(&mut self, now: Instant) {
        let mut steps = 0;
        while now.saturating_duration_since(self.slot_start) >= Self::slot_len() && steps <= METER_SLOTS {
            self.head = (self.head + 1) % METER_SLOTS;
            self.slots[self.head] = 0;
            self.slot_start += Self::slot_len();
            steps += 1;
        }
        if steps > METER_SLOTS {
            self.slot_start = now;
        }
    }

    fn add(&mut self, now: Instant) {
        self.advance(now);
        self.slots[self.head] = self.slots[self.head].saturating_add(1);
    }

    /// Answers per second over the window.
    fn rate(&mut self, now: Instant) -> f64 {
        self.advance(now);
        f64::from(self.slots.iter().sum::<u32>()) / METER_WINDOW.as_secs_f64()
    }
}

/// When a request may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Now: a permit is taken.
    Now,
    /// A pacing slot is reserved at this instant; come back then with the
    /// epoch (a rate cut in between voids the reservation).
    At(Instant, u64),
    /// When a permit is given back (concurrency).
    Full,
}

/// Burst credit: a slot may lag `now` by this much, so timer granularity
/// does not cost throughput after a short idle spell.
const BURST: Duration = Duration::from_millis(5);

/// One host's controller.
#[derive(Debug)]
pub(crate) struct Controller {
    cfg: AdaptiveConfig,
    // Concurrency.
    limit: f64,
    in_flight: usize,
    slow_start: bool,
    min_rtt: Option<Duration>,
    min_rtt_at: Instant,
    srtt: Option<Duration>,
    last_decrease: Option<Instant>,
    grow_after: Instant,
    next_growth: Instant,
    // Rate.
    rate: Option<f64>,
    w_max: f64,
    cut_rate: f64,
    steepness: f64,
    grow_time: Duration,
    grow_clock: Instant,
    bound_at: Option<Instant>,
    next_send: Instant,
    epoch: u64,
    ceiling: f64,
    ceiling_at: Instant,
    accepted: Meter,
    quota_cap: Option<(f64, Instant)>,
    /// Woken when a permit is given back.
    pub(crate) released: Arc<Notify>,
}

impl Controller {
    pub(crate) fn new(cfg: AdaptiveConfig, now: Instant) -> Self {
        Self {
            cfg,
            limit: cfg.initial_concurrency as f64,
            in_flight: 0,
            slow_start: true,
            min_rtt: None,
            min_rtt_at: now,
            srtt: None,
            last_decrease: None,
            grow_after: now,
            next_growth: now,
            rate: None,
            w_max: 0.0,
            cut_rate: 0.0,
            steepness: 0.0,
            grow_time: Duration::ZERO,
            grow_clock: now,
            bound_at: None,
            next_send: now,
            epoch: 0,
            ceiling: 0.0,
            ceiling_at: now,
            accepted: Meter::new(now),
            quota_cap: None,
            released: Arc::new(Notify::new()),
        }
    }

    /// The concurrency limit now.
    pub(crate) fn limit(&self) -> usize {
        (self.limit.floor() as usize).clamp(1, self.cfg.max_concurrency)
    }

    /// The paced rate now (requests per second), if pacing.
    pub(crate) fn rate(&mut self, now: Instant) -> Option<f64> {
        let cubic = self.rate.map(|_| self.cubic_rate(now));
        self.rate = cubic;
        let quota = match self.quota_cap {
            Some((r, until)) if now < until => Some(r),
            _ => None,
        };
        match (cubic, quota) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn cubic_rate(&mut self, now: Instant) -> f64 {
        // τ only runs while pacing binds.
        let binding = self
            .bound_at
            .is_some_and(|at| now.saturating_duration_since(at) < METER_WINDOW);
        if binding {
            self.grow_time += now.saturating_duration_since(self.grow_clock);
        }
        self.grow_clock = now;
        let c = self.steepness.max(f64::MIN_POSITIVE);
        let k = ((self.w_max - self.cut_rate).max(0.0) / c).cbrt();
        let t = self.grow_time.as_secs_f64() - k;
        let r = self.w_max + c * t * t * t;
        r.clamp(self.cfg.min_rate, self.w_max.max(self.cfg.min_rate) * 8.0)
    }

    /// Asks to send at `now`: takes a pacing slot and a permit, or says
    /// what to wait for. `reserved` is the epoch of a slot reserved earlier.
    pub(crate) fn admit(&mut self, now: Instant, reserved: Option<u64>) -> Admit {
        let holds_slot = reserved == Some(self.epoch);
        if !holds_slot {
            if let Some(rate) = self.rate(now) {
                let interval = Duration::from_secs_f64(1.0 / rate.max(self.cfg.min_rate));
                let earliest = now.checked_sub(BURST).unwrap_or(now);
                let slot = self.next_send.max(earliest);
                self.next_send = slot + interval;
                if slot > now {
                    self.bound_at = Some(now);
                    return Admit::At(slot, self.epoch);
                }
            }
        }
        if self.in_flight >= self.limit() {
            if !holds_slot && self.rate.is_some() {
                // Keep the slot just taken for when a permit comes back.
                return Admit::At(now, self.epoch);
            }
            return Admit::Full;
        }
        self.in_flight += 1;
        Admit::Now
    }

    /// Gives back a permit taken by [`admit`](Self::admit).
    pub(crate) fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.released.notify_one();
    }

    /// Learns from one answer to a request sent at `sent_at`.
    pub(crate) fn on_answer(&mut self, now: Instant, sent_at: Instant, outcome: Outcome) {
        let rtt = now.saturating_duration_since(sent_at);
        let fresh = self.last_decrease.is_none_or(|d| sent_at >= d);
        match outcome {
            Outcome::Success => {
                self.accepted.add(now);
                self.observe_rtt(now, rtt);
                let congested = self.congested();
                if congested && fresh {
                    self.decrease(now, 0.9);
                } else if !congested {
                    self.grow(now);
                }
            }
            Outcome::Loss => {
                if fresh {
                    self.on_loss(now);
                }
            }
            Outcome::Neutral => {}
        }
    }

    fn observe_rtt(&mut self, now: Instant, rtt: Duration) {
        // The minimum is forgotten after 30 s so a route that got slower is
        // not judged against a stale best.
        let stale = now.saturating_duration_since(self.min_rtt_at) > Duration::from_secs(30);
        if stale || self.min_rtt.is_none_or(|m| rtt < m) {
            self.min_rtt = Some(rtt);
            self.min_rtt_at = now;
        }
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(s) => (s * 3 + rtt) / 4,
        });
    }

    fn congested(&self) -> bool {
        match (self.srtt, self.min_rtt) {
            (Some(s), Some(m)) => {
                s.as_secs_f64() > m.as_secs_f64() * self.cfg.rtt_tolerance
                    && s.saturating_sub(m) > Duration::from_millis(2)
            }
            _ => false,
        }
    }

    fn grow(&mut self, now: Instant) {
        // No growth while the limit is not in use (less than half of it).
        if (self.in_flight as f64) * 2.0 < self.limit.floor() {
            return;
        }
        if self.slow_start {
            self.limit = (self.limit + 1.0).min(self.cfg.max_concurrency as f64);
            return;
        }
        if now < self.grow_after || now < self.next_growth {
            return;
        }
        self.limit = (self.limit + 1.0).min(self.cfg.max_concurrency as f64);
        self.next_growth = now + self.srtt.unwrap_or(Duration::from_millis(10));
    }

    fn decrease(&mut self, now: Instant, factor: f64) {
        self.slow_start = false;
        self.limit = (self.limit * factor).max(1.0);
        self.last_decrease = Some(now);
        // Jittered quiet time before the next probe.
        self.grow_after = now + Duration::from_millis(500 + fastrand::u64(0..=1000));
    }

    fn on_loss(&mut self, now: Instant) {
        let measured = self.accepted.rate(now);
        let current = self.rate(now);
        self.decrease(now, self.cfg.decrease_ratio);
        // Anchor the cubic at the accepted rate: under saturation it is the
        // host's capacity. Without answers yet, cut what we were sending.
        let w_max = if measured > 0.0 {
            measured
        } else {
            current.unwrap_or(self.cfg.min_rate * 10.0) * self.cfg.decrease_ratio
        };
        let w_max = w_max.max(self.cfg.min_rate);
        if now.saturating_duration_since(self.ceiling_at) > CEILING_MEMORY {
            self.ceiling = 0.0;
        }
        if w_max >= self.ceiling {
            self.ceiling = w_max;
            self.ceiling_at = now;
        }
        let far_below = w_max < 0.8 * self.ceiling;
        self.steepness = if far_below {
            C_FAST * self.ceiling
        } else {
            C_SLOW * w_max
        };
        self.w_max = w_max;
        self.cut_rate = (w_max * self.cfg.decrease_ratio).max(self.cfg.min_rate);
        if let Some(cur) = current {
            self.cut_rate = self.cut_rate.min(cur);
        }
        self.rate = Some(self.cut_rate);
        self.grow_time = Duration::ZERO;
        self.grow_clock = now;
        // Slots reserved at the old rate are void: their holders re-reserve.
        self.epoch += 1;
        self.next_send = now;
    }

    /// Takes the `RateLimit` field's remaining quota `r` and reset `t`:
    /// no faster than `r / t` until the reset.
    pub(crate) fn on_quota(&mut self, now: Instant, remaining: u64, reset: Duration) {
        let until = now + reset;
        if remaining == 0 {
            // Nothing left: hold back until the reset.
            self.next_send = self.next_send.max(until);
            self.quota_cap = Some((self.cfg.min_rate, until));
        } else {
            let rate = remaining as f64 / reset.as_secs_f64().max(0.001);
            self.quota_cap = Some((rate, until));
        }
        self.epoch += 1;
    }

    /// Current limits, for dashboards.
    pub(crate) fn snapshot(&mut self, now: Instant) -> (usize, usize, Option<f64>) {
        (self.limit(), self.in_flight, self.rate(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_doubles_per_round_trip_then_a_loss_cuts() {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        // One round trip at the limit: each answer grows the limit by one.
        let mut now = t0;
        for _ in 0..4 {
            assert_eq!(c.admit(now, None), Admit::Now);
        }
        assert_eq!(c.admit(now, None), Admit::Full);
        now += ms(10);
        // Each answer is followed by the next request, as in a busy client.
        for _ in 0..4 {
            c.on_answer(now, now - ms(10), Outcome::Success);
            c.release();
            while c.admit(now, None) == Admit::Now {}
        }
        assert_eq!(c.limit(), 8, "doubled in one round trip");
        // An idle client (nothing in flight) does not grow the limit.
        let mut idle = Controller::new(AdaptiveConfig::default(), t0);
        idle.on_answer(now, now - ms(10), Outcome::Success);
        assert_eq!(idle.limit(), 4);
        // A loss multiplies by 0.8 and starts pacing at 0.8 × accepted rate.
        c.on_answer(now, now - ms(5), Outcome::Loss);
        assert_eq!(c.limit(), 6);
        let rate = c.rate(now).expect("pacing after a loss");
        assert!(
            (rate - 4.0 * 0.8).abs() < 1e-9,
            "4 answers in the last second → {rate}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn answers_of_requests_sent_before_a_decrease_do_not_cut_again() {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        c.limit = 100.0;
        let now = t0 + ms(100);
        c.on_answer(now, t0, Outcome::Loss);
        assert_eq!(c.limit(), 80);
        c.on_answer(now + ms(1), t0 + ms(50), Outcome::Loss);
        assert_eq!(c.limit(), 80, "sent before the decrease: same congestion event");
        c.on_answer(now + ms(20), now + ms(10), Outcome::Loss);
        assert_eq!(c.limit(), 64, "sent after it: a new event");
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_spaces_sends_at_the_rate() {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        c.limit = 1000.0;
        c.rate = Some(100.0);
        c.w_max = 100.0;
        c.cut_rate = 100.0;
        c.steepness = C_SLOW * 100.0;
        let now = t0 + Duration::from_secs(1);
        let mut sent = 0;
        let mut t = now;
        let mut reserved = None;
        while t < now + Duration::from_secs(1) {
            match c.admit(t, reserved.take()) {
                Admit::Now => sent += 1,
                Admit::At(at, epoch) => {
                    t = at;
                    reserved = Some(epoch);
                }
                Admit::Full => unreachable!(),
            }
        }
        assert!((99..=102).contains(&sent), "{sent} sends in one second at 100/s");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_grows_only_while_pacing_binds_and_returns_to_the_anchor() {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        for i in 0..500 {
            c.accepted.add(t0 + Duration::from_micros(i * 1900));
        }
        let loss_at = t0 + ms(950);
        c.on_answer(loss_at, loss_at, Outcome::Loss);
        let cut = c.rate(loss_at).expect("pacing");
        assert!((cut - 400.0).abs() < 1.0, "0.8 × 500 accepted/s, got {cut}");
        // Idle for 10 s: no growth.
        let later = loss_at + Duration::from_secs(10);
        assert!((c.rate(later).expect("pacing") - cut).abs() < 1e-6);
        // Binding for 10 s: back at (or just past) the anchor, not beyond 2×.
        let mut t = later;
        for _ in 0..1000 {
            t += ms(10);
            c.bound_at = Some(t);
            c.rate(t);
        }
        let r = c.rate(t).expect("pacing");
        assert!(r > 480.0 && r < 700.0, "{r}");
    }

    #[tokio::test(start_paused = true)]
    async fn queueing_delay_shrinks_the_limit_once_per_round_trip() {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        c.limit = 20.0;
        c.slow_start = false;
        let mut now = t0;
        for _ in 0..10 {
            now += ms(5);
            c.on_answer(now, now - ms(5), Outcome::Success);
        }
        assert_eq!(c.limit(), 20);
        now += ms(30);
        c.on_answer(now, now - ms(30), Outcome::Success);
        c.on_answer(now + ms(1), now - ms(29), Outcome::Success);
        c.on_answer(now + ms(2), now - ms(28), Outcome::Success);
        assert_eq!(c.limit(), 18, "one decrease by 0.9 for one congested round trip");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_field_caps_the_rate_until_its_reset() {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        c.on_quota(t0, 50, Duration::from_secs(10));
        assert_eq!(c.rate(t0), Some(5.0));
        assert_eq!(c.rate(t0 + Duration::from_secs(11)), None);
        c.on_quota(t0, 0, Duration::from_secs(3));
        match c.admit(t0, None) {
            Admit::At(at, _) => assert!(at >= t0 + Duration::from_secs(3)),
            other => panic!("expected to wait for the reset, got {other:?}"),
        }
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
