//! The fixed window with quota headers ([`FixedWindow`], [`QuotaHeaders`]),
//! and the wall clock it and the other header-sending models read.

use std::time::{Duration, SystemTime};

use http::StatusCode;
use tokio::time::Instant;

use super::{Decision, Limiter};

/// Which quota headers a fixed window sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaHeaders {
    /// IETF httpapi: `RateLimit-Policy: "default";q=Q;w=T` and
    /// `RateLimit: "default";r=R;t=S` (seconds to the reset).
    Ietf,
    /// GitHub's: `X-RateLimit-Limit`, `-Remaining`, `-Used`, and `-Reset` in
    /// UTC epoch seconds, with a `Date` header.
    GitHub,
    /// No quota headers, and `Retry-After` (to the reset) on a refusal
    /// only: a counter a server keeps itself (`INCR` and `EXPIRE` in Redis)
    /// that says when to come back.
    RetryAfter,
    /// Nothing at all: a bare 429 until the window resets.
    Bare,
}

/// A fixed window of `quota` requests every `window`, aligned to the
/// server's start, with quota headers on every answer and a 429 with
/// `Retry-After` (to the reset) once the quota is spent, or less (see
/// [`QuotaHeaders`]). Refusals do not count.
#[derive(Debug)]
pub struct FixedWindow {
    quota: u64,
    window: Duration,
    headers: QuotaHeaders,
    epoch: Instant,
    wall_epoch: SystemTime,
    index: u64,
    used: u64,
}

impl FixedWindow {
    /// `quota` requests per `window` (at least 1 s), announced in `headers`.
    pub fn new(quota: u64, window: Duration, headers: QuotaHeaders, now: Instant) -> Self {
        Self {
            quota,
            window: window.max(Duration::from_secs(1)),
            headers,
            epoch: now,
            wall_epoch: wall_epoch(),
            index: 0,
            used: 0,
        }
    }
}

impl Limiter for FixedWindow {
    fn arrive(&mut self, now: Instant) -> Decision {
        let since = now.saturating_duration_since(self.epoch);
        let index = (since.as_nanos() / self.window.as_nanos()) as u64;
        if index != self.index {
            self.index = index;
            self.used = 0;
        }
        let reset_at = self.window * (index as u32 + 1);
        let to_reset = reset_at.saturating_sub(since);
        let served = self.used < self.quota;
        if served {
            self.used += 1;
        }
        let remaining = self.quota - self.used;
        let mut d = if served {
            Decision::ok()
        } else if self.headers == QuotaHeaders::Bare {
            Decision::refused(StatusCode::TOO_MANY_REQUESTS)
        } else {
            let secs = to_reset.as_secs_f64().ceil().max(1.0) as u64;
            Decision::refused(StatusCode::TOO_MANY_REQUESTS).header("retry-after", secs.to_string())
        };
        // Whole seconds, rounded up, as servers send them.
        let t = to_reset.as_secs_f64().ceil() as u64;
        match self.headers {
            QuotaHeaders::Ietf => {
                d = d
                    .header(
                        "ratelimit-policy",
                        format!("\"default\";q={};w={}", self.quota, self.window.as_secs()),
                    )
                    .header("ratelimit", format!("\"default\";r={remaining};t={t}"));
            }
            QuotaHeaders::GitHub => {
                // The server's own wall clock runs with its (maybe paused) clock.
                let wall_now = self.wall_epoch + since;
                let reset_epoch = (self.wall_epoch + reset_at)
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs_f64().ceil() as u64);
                d = d
                    .header("x-ratelimit-limit", self.quota.to_string())
                    .header("x-ratelimit-remaining", remaining.to_string())
                    .header("x-ratelimit-used", self.used.to_string())
                    .header("x-ratelimit-reset", reset_epoch.to_string())
                    .header("date", httpdate::fmt_http_date(wall_now));
            }
            QuotaHeaders::RetryAfter | QuotaHeaders::Bare => {}
        }
        d
    }
}

/// The phase of the second at which new fixed windows' wall clocks start,
/// in ms (`u64::MAX`: the real clock's). See [`set_wall_phase_ms`].
static WALL_PHASE_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);

/// Starts the wall clock of the fixed windows made from now on (in this
/// process) at a given phase of a second, `ms` past a whole second, instead
/// of at the real clock's: the epoch `Reset` (whole seconds, rounded up)
/// and the `Date` header (rounded down) then round the same way on every
/// run. `None` goes back to the real clock, whose phase varies run to run.
pub fn set_wall_phase_ms(ms: Option<u64>) {
    WALL_PHASE_MS.store(
        ms.map_or(u64::MAX, |ms| ms % 1000),
        std::sync::atomic::Ordering::Relaxed,
    );
}

pub(super) fn wall_epoch() -> SystemTime {
    match WALL_PHASE_MS.load(std::sync::atomic::Ordering::Relaxed) {
        u64::MAX => SystemTime::now(),
        ms => SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms),
    }
}
