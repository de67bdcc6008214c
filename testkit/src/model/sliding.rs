//! The models that count over a window sliding with time: the sliding log
//! ([`SlidingWindow`]), the moving window ([`MovingWindow`]) and HAProxy's
//! two-period counter ([`FreqCounter`]).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use tokio::time::Instant;

use super::fixed_window::wall_epoch;
use super::{Decision, Limiter, RetryAfter};

/// A sliding one-second log that counts every request, refused ones too
/// (HAProxy's `http_req_rate` tracked before the deny rule, sliding-log
/// limiters in Redis). A client sending above the rate stays refused; no
/// `Retry-After`.
#[derive(Debug)]
pub struct SlidingWindow {
    limit: usize,
    window: Duration,
    log: VecDeque<Instant>,
}

/// The most arrivals a sliding log keeps (older ones are forgotten).
const MAX_LOG: usize = 1 << 20;

impl SlidingWindow {
    /// At most `rate` requests, refused ones included, in any `window`.
    pub fn new(rate: usize, window: Duration) -> Self {
        Self {
            limit: rate.max(1),
            window,
            log: VecDeque::new(),
        }
    }
}

/// Drops the instants of `log` (oldest first) that `window` no longer
/// holds at `now`.
fn forget_older(log: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while log
        .front()
        .is_some_and(|&t| now.saturating_duration_since(t) >= window)
    {
        log.pop_front();
    }
}

impl Limiter for SlidingWindow {
    fn arrive(&mut self, now: Instant) -> Decision {
        forget_older(&mut self.log, now, self.window);
        if self.log.len() >= MAX_LOG {
            self.log.pop_front();
        }
        self.log.push_back(now);
        if self.log.len() > self.limit {
            Decision::refused(StatusCode::TOO_MANY_REQUESTS)
        } else {
            Decision::ok()
        }
    }
}

/// A moving window of the requests it served: at most `limit` served in
/// any `window`, refusals not counted, and a refusal's `Retry-After` the
/// time until the oldest served one leaves the window, in whole seconds
/// rounded up. The `limits`
/// library's moving-window strategy (Flask-Limiter, slowapi) and Caddy's
/// `rate_limit` keep one so. A client sending past the rate is refused
/// until the window slides, then served again at once.
#[derive(Debug)]
pub struct MovingWindow {
    limit: usize,
    window: Duration,
    retry_after: RetryAfter,
    served: VecDeque<Instant>,
    /// Flask-Limiter's headers (see [`MovingWindow::with_headers`]).
    headers: Option<(Instant, SystemTime)>,
}

impl MovingWindow {
    /// At most `limit` requests served in any `window`.
    pub fn new(limit: usize, window: Duration, retry_after: RetryAfter) -> Self {
        Self {
            limit: limit.clamp(1, MAX_LOG),
            window,
            retry_after,
            served: VecDeque::new(),
            headers: None,
        }
    }

    /// Flask-Limiter's headers (`headers_enabled=True`) on every answer,
    /// served or refused: `X-RateLimit-Limit`, `-Remaining` (what the
    /// window has room for), `-Reset` (the epoch second after the one in
    /// which the oldest served request leaves), a `Date`, and
    /// `Retry-After` the whole seconds from now to that reset, rounded
    /// down: `0` within its last second. `retry_after` is then unused.
    pub fn with_headers(mut self, now: Instant) -> Self {
        self.headers = Some((now, wall_epoch()));
        self
    }

    /// Flask-Limiter's headers on `d`: `limits`' window stats give the
    /// oldest entry's expiry, and Flask-Limiter sends `int(1 + expiry)`
    /// and `int(reset - time())`.
    fn flask_headers(
        &self,
        d: Decision,
        (epoch, wall): (Instant, SystemTime),
        oldest: Instant,
        now: Instant,
    ) -> Decision {
        let wall_now = wall + now.saturating_duration_since(epoch);
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        let expiry = secs(wall + (oldest + self.window).saturating_duration_since(epoch));
        let reset = (1.0 + expiry) as u64;
        let retry = (reset as f64 - secs(wall_now)).max(0.0) as u64;
        d.header("x-ratelimit-limit", self.limit.to_string())
            .header(
                "x-ratelimit-remaining",
                (self.limit - self.served.len().min(self.limit)).to_string(),
            )
            .header("x-ratelimit-reset", reset.to_string())
            .header("retry-after", retry.to_string())
            .header("date", httpdate::fmt_http_date(wall_now))
    }
}

impl Limiter for MovingWindow {
    fn arrive(&mut self, now: Instant) -> Decision {
        forget_older(&mut self.served, now, self.window);
        let full = self.served.len() >= self.limit;
        let d = if full {
            Decision::refused(StatusCode::TOO_MANY_REQUESTS)
        } else {
            self.served.push_back(now);
            Decision::ok()
        };
        match (self.headers, self.served.front()) {
            (Some(clock), Some(&oldest)) => self.flask_headers(d, clock, oldest, now),
            (None, Some(&oldest)) if full => {
                // Whole seconds rounded up, as Caddy sends them: never `0`
                // while the window is full.
                let wait = (oldest + self.window).saturating_duration_since(now);
                let wait = Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
                self.retry_after.apply(d, wait)
            }
            _ => d,
        }
    }
}

/// HAProxy's stick-table rate, `http_req_rate(period)` tracked before a
/// `deny` rule: not a log but two counters, the current period's and the
/// previous one's, read as `current + previous × (time left in the
/// current period) / period` (HAProxy's `freq_ctr`, `read_freq_ctr_period`
/// in `src/freq_ctr.c`). Periods follow one another from the first
/// request; a period with no request forgets the one before. Every request
/// counts, refused ones too, and one is refused when the reading,
/// itself included, passes the limit. Unlike an exact sliding log, a
/// refusal late in a period weighs less and less through the next one,
/// and the counter never holds more than two periods. No `Retry-After`.
#[derive(Debug)]
pub struct FreqCounter {
    limit: u64,
    period: Duration,
    /// The current period's start, once a request came.
    started: Option<Instant>,
    current: u64,
    previous: u64,
}

impl FreqCounter {
    /// More than `limit` requests, refused ones included, over a `period`
    /// (as HAProxy weighs it) are refused.
    pub fn new(limit: usize, period: Duration) -> Self {
        Self {
            limit: limit.max(1) as u64,
            period: period.max(Duration::from_millis(1)),
            started: None,
            current: 0,
            previous: 0,
        }
    }

    /// Moves the periods on to the one holding `now`.
    fn rotate(&mut self, now: Instant) -> Duration {
        let start = *self.started.get_or_insert(now);
        let since = now.saturating_duration_since(start);
        let periods = (since.as_nanos() / self.period.as_nanos()) as u32;
        if periods >= 1 {
            self.previous = if periods == 1 { self.current } else { 0 };
            self.current = 0;
            let moved = self.period * periods;
            self.started = Some(start + moved);
            since - moved
        } else {
            since
        }
    }
}

impl Limiter for FreqCounter {
    fn arrive(&mut self, now: Instant) -> Decision {
        let into = self.rotate(now);
        self.current += 1;
        let left = self.period.saturating_sub(into).as_nanos();
        let weighed = u128::from(self.previous) * left / self.period.as_nanos();
        if u128::from(self.current) + weighed > u128::from(self.limit) {
            Decision::refused(StatusCode::TOO_MANY_REQUESTS)
        } else {
            Decision::ok()
        }
    }
}
