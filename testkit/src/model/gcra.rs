//! nginx's `limit_req` model ([`Gcra`]), with and without `nodelay`.

use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use super::{Decision, Limiter, RetryAfter};

/// nginx `limit_req` with `nodelay`: GCRA kept, as nginx keeps it, as an
/// `excess` in thousandths of a request and the time of the last served
/// request in milliseconds. A request is refused when the excess it would
/// leave is above `burst`; a refusal leaves the books as they were.
///
/// [`Gcra::delaying`] drops `nodelay` (nginx's default when `burst=` is
/// set): a request within the burst is held `excess / rate` before it is
/// served, so served requests leave at the rate and the burst is a queue.
#[derive(Debug)]
pub struct Gcra {
    /// Requests per second, in thousandths (nginx's `ctx->rate`).
    rate_milli: u64,
    burst_milli: u64,
    retry_after: RetryAfter,
    status: StatusCode,
    epoch: Instant,
    excess: i64,
    last_ms: Option<u64>,
    delaying: bool,
}

impl Gcra {
    /// `rate` per second with `burst` requests of excess allowed; refusals
    /// answer 429 with `retry_after`.
    pub fn new(rate: f64, burst: u32, retry_after: RetryAfter, now: Instant) -> Self {
        Self {
            rate_milli: (rate * 1000.0).round().max(1.0) as u64,
            burst_milli: u64::from(burst) * 1000,
            retry_after,
            status: StatusCode::TOO_MANY_REQUESTS,
            epoch: now,
            excess: 0,
            last_ms: None,
            delaying: false,
        }
    }

    /// Without `nodelay`: requests within the burst are queued to the
    /// rate (held `excess / rate`) instead of served at once.
    pub fn delaying(mut self) -> Self {
        self.delaying = true;
        self
    }

    /// Refusals answer `status` instead of 429 (nginx's default is 503).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl Limiter for Gcra {
    fn arrive(&mut self, now: Instant) -> Decision {
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let Some(last) = self.last_ms else {
            self.last_ms = Some(now_ms);
            self.excess = 0;
            return Decision::ok();
        };
        let ms = now_ms.saturating_sub(last);
        let drained = (self.rate_milli as u128 * ms as u128 / 1000).min(i64::MAX as u128) as i64;
        let excess = (self.excess.saturating_sub(drained) + 1000).max(0);
        if excess as u64 > self.burst_milli {
            // Time until the excess has drained to the burst.
            let over = (excess as u64 - self.burst_milli) as f64;
            let wait = Duration::from_secs_f64(over / self.rate_milli as f64);
            return self.retry_after.apply(Decision::refused(self.status), wait);
        }
        self.excess = excess;
        self.last_ms = Some(now_ms);
        let mut d = Decision::ok();
        if self.delaying {
            // nginx: `(excess - delay) * 1000 / rate` ms, `delay=0` here.
            d.delay = Duration::from_millis(excess as u64 * 1000 / self.rate_milli);
        }
        d
    }
}
