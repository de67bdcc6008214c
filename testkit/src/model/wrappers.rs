//! The models that wrap other limiters: random refusals ([`Noisy`]), bans
//! ([`PenaltyBox`]) and schedules ([`Phases`]).

use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use super::{Decision, Limiter};

/// A limiter that also refuses one request in `every` of those it
/// serves, whatever the rate, with a 429 and no `Retry-After`: one bad
/// backend among many behind a balancer, a bot check, a limiter other
/// clients fill. Slowing down removes none of these refusals.
pub struct Noisy {
    inner: Box<dyn Limiter>,
    every: u64,
    served: u64,
}

impl Noisy {
    /// `inner`, with one served request in `every` refused (none for 0).
    pub fn new(inner: Box<dyn Limiter>, every: u64) -> Self {
        Self {
            inner,
            every,
            served: 0,
        }
    }
}

impl Limiter for Noisy {
    fn arrive(&mut self, now: Instant) -> Decision {
        let d = self.inner.arrive(now);
        if !d.served() || self.every == 0 {
            return d;
        }
        self.served += 1;
        if self.served.is_multiple_of(self.every) {
            // Spent at the limiter, refused behind it.
            self.inner.depart(now);
            return Decision::refused(StatusCode::TOO_MANY_REQUESTS);
        }
        d
    }

    fn depart(&mut self, now: Instant) {
        self.inner.depart(now);
    }
}

/// A ban after a refusal: once `inner` refuses a request, every request
/// is refused for `ban`, whatever the rate (Cloudflare's rate-limiting
/// rules block for a "mitigation timeout"; fail2ban's `bantime`). When
/// `sticky`, each request refused during the ban starts it again: HAProxy's
/// documented abuse pattern (a `gpc0` flag in a stick table whose entry's
/// `expire` each tracked request renews) lets a client out only after it
/// kept quiet for the whole `ban`. Refusals carry no `Retry-After`, or,
/// with [`PenaltyBox::telling`], the whole seconds left in the ban, as
/// Cloudflare's rate limiting sends. With [`PenaltyBox::forbidding`],
/// every refusal is a bare 403, as Apache's `mod_evasive` and web
/// application firewalls' rate rules (AWS WAF's default action) answer.
pub struct PenaltyBox {
    inner: Box<dyn Limiter>,
    ban: Duration,
    sticky: bool,
    tells: bool,
    forbids: bool,
    banned_until: Option<Instant>,
}

impl PenaltyBox {
    /// `inner`, whose refusals ban every request for `ban` (renewed by each
    /// request refused during it when `sticky`).
    pub fn new(inner: Box<dyn Limiter>, ban: Duration, sticky: bool) -> Self {
        Self {
            inner,
            ban,
            sticky,
            tells: false,
            forbids: false,
            banned_until: None,
        }
    }

    /// Each refusal says, in `Retry-After`, the whole seconds left in the
    /// ban, rounded up.
    pub fn telling(mut self) -> Self {
        self.tells = true;
        self
    }

    /// Every refusal, the one that starts a ban included, is a 403
    /// without any header.
    pub fn forbidding(mut self) -> Self {
        self.forbids = true;
        self
    }

    fn refused(&self, now: Instant, status: StatusCode) -> Decision {
        if self.forbids {
            return Decision::refused(StatusCode::FORBIDDEN);
        }
        let d = Decision::refused(status);
        match self.banned_until {
            Some(until) if self.tells => {
                let left = until.saturating_duration_since(now).as_secs_f64().ceil() as u64;
                d.header("retry-after", left.max(1).to_string())
            }
            _ => d,
        }
    }
}

impl Limiter for PenaltyBox {
    fn arrive(&mut self, now: Instant) -> Decision {
        if self.banned_until.is_some_and(|until| now < until) {
            if self.sticky {
                self.banned_until = Some(now + self.ban);
            }
            return self.refused(now, StatusCode::TOO_MANY_REQUESTS);
        }
        let d = self.inner.arrive(now);
        if !d.served() {
            self.banned_until = Some(now + self.ban);
            return self.refused(now, d.status);
        }
        d
    }

    fn depart(&mut self, now: Instant) {
        self.inner.depart(now);
    }
}

/// Capacity that changes on a schedule: each phase's limiter decides from
/// its start on (another client takes a share of a limit and leaves, a
/// backend degrades and heals, an operator lowers a rate for an incident).
pub struct Phases {
    started: Instant,
    /// Each phase's start, from `started`, and its limiter; in order.
    phases: Vec<(Duration, Box<dyn Limiter>)>,
}

impl Phases {
    /// `phases` in order of their start, the first at zero, counted from
    /// `now`.
    pub fn new(now: Instant, phases: Vec<(Duration, Box<dyn Limiter>)>) -> Self {
        Self { started: now, phases }
    }

    fn current(&mut self, now: Instant) -> Option<&mut Box<dyn Limiter>> {
        let at = now.saturating_duration_since(self.started);
        self.phases
            .iter_mut()
            .rev()
            .find(|(from, _)| *from <= at)
            .map(|(_, limiter)| limiter)
    }
}

impl Limiter for Phases {
    fn arrive(&mut self, now: Instant) -> Decision {
        match self.current(now) {
            Some(limiter) => limiter.arrive(now),
            None => Decision::ok(),
        }
    }

    fn depart(&mut self, now: Instant) {
        if let Some(limiter) = self.current(now) {
            limiter.depart(now);
        }
    }
}
