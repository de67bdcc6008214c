//! The token buckets: the plain one ([`TokenBucket`]), Traefik's
//! ([`Traefik`], with [`go_duration`]) and Spring Cloud Gateway's ([`SpringGateway`]).

use std::time::{Duration, SystemTime};

use http::StatusCode;
use tokio::time::Instant;

use super::fixed_window::wall_epoch;
use super::{Decision, Limiter, RetryAfter};

/// A token bucket of `rate` tokens a second holding up to `capacity`
/// (one second's worth by default: the flattering case), 429 with
/// `Retry-After` when empty.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
    retry_after: RetryAfter,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilled at `rate` a second.
    pub fn new(rate: f64, capacity: f64, retry_after: RetryAfter, now: Instant) -> Self {
        Self {
            rate,
            capacity: capacity.max(1.0),
            tokens: capacity.max(1.0),
            last: now,
            retry_after,
        }
    }
}

impl Limiter for TokenBucket {
    fn arrive(&mut self, now: Instant) -> Decision {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Decision::ok();
        }
        let wait = Duration::from_secs_f64((1.0 - self.tokens) / self.rate);
        self.retry_after
            .apply(Decision::refused(StatusCode::TOO_MANY_REQUESTS), wait)
    }
}

/// Traefik's `rateLimit` middleware: a token bucket of Go's
/// `golang.org/x/time/rate` (`average` a second, `burst` at least one,
/// full at first). A request that finds no token reserves one ahead and
/// is served that late if the wait is at most `maxDelay` (half an
/// interval: `1 s / (2 × ⌊rate⌋)`, 500 ms under 1/s); past it the
/// reservation is cancelled, so refusals cost nothing on the books, and
/// the answer is a 429 with `Retry-After` the wait rounded up to whole
/// seconds and `X-Retry-In` the exact wait as Go prints a duration
/// (traefik/traefik, `pkg/middlewares/ratelimiter/rate_limiter.go`).
#[derive(Debug)]
pub struct Traefik {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
    max_delay: Duration,
}

impl Traefik {
    /// `rate` a second with `burst` tokens.
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        let max_delay = if rate < 1.0 {
            Duration::from_millis(500)
        } else {
            Duration::from_nanos(1_000_000_000 / (2 * rate as u64))
        };
        Self {
            rate,
            burst,
            tokens: burst,
            last: None,
            max_delay,
        }
    }
}

impl Limiter for Traefik {
    fn arrive(&mut self, now: Instant) -> Decision {
        let tokens = match self.last {
            Some(last) => {
                (self.tokens + now.saturating_duration_since(last).as_secs_f64() * self.rate).min(self.burst)
            }
            None => self.burst,
        };
        let left = tokens - 1.0;
        let wait = Duration::from_secs_f64((-left).max(0.0) / self.rate);
        if wait > self.max_delay {
            return Decision::refused(StatusCode::TOO_MANY_REQUESTS)
                .header("retry-after", format!("{:.0}", wait.as_secs_f64().ceil()))
                .header("x-retry-in", go_duration(wait));
        }
        self.tokens = left;
        self.last = Some(now);
        let mut d = Decision::ok();
        d.delay = wait;
        d
    }
}

/// Spring Cloud Gateway's `RequestRateLimiter` with its `RedisRateLimiter`
/// (spring-cloud/spring-cloud-gateway, `RedisRateLimiter.java` and
/// `request_rate_limiter.lua`): a token bucket of `burst_capacity` tokens,
/// full at first, refilled by `replenish_rate` tokens for each whole
/// second of the Redis server's clock (`TIME`'s seconds) since the last
/// request, so in steps at each second. A request takes
/// `requested_tokens` (rates under one a second are written with more
/// than one); a refusal takes none. Every answer, refusals too, names
/// the bucket in `X-RateLimit-Remaining` (tokens left),
/// `X-RateLimit-Replenish-Rate`, `X-RateLimit-Burst-Capacity` and
/// `X-RateLimit-Requested-Tokens` unless `includeHeaders` is off; a
/// refusal is a bare 429, without `Retry-After`.
#[derive(Debug)]
pub struct SpringGateway {
    replenish_rate: u64,
    burst_capacity: u64,
    requested_tokens: u64,
    headers: bool,
    tokens: u64,
    /// The second of the last request, on the server's clock.
    refreshed: Option<u64>,
    epoch: Instant,
    /// Where in its second the server's clock stood at `epoch`.
    phase: Duration,
}

impl SpringGateway {
    /// `rate` requests a second with a burst of `burst` requests, written
    /// as Spring's settings are: a whole `replenishRate` and, under one
    /// request a second, `requestedTokens` of more than one;
    /// `burstCapacity` is never under `replenishRate` (Spring refuses
    /// such a setting). `headers`: `includeHeaders`.
    pub fn new(rate: f64, burst: u32, headers: bool, now: Instant) -> Self {
        let (replenish_rate, requested_tokens) = if rate >= 1.0 {
            (rate.round() as u64, 1)
        } else {
            (1, (1.0 / rate.max(1e-6)).round() as u64)
        };
        let burst_capacity = (u64::from(burst.max(1)) * requested_tokens).max(replenish_rate);
        let phase = wall_epoch()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(Duration::ZERO, |d| {
                Duration::from_nanos(u64::from(d.subsec_nanos()))
            });
        Self {
            replenish_rate,
            burst_capacity,
            requested_tokens,
            headers,
            tokens: burst_capacity,
            refreshed: None,
            epoch: now,
            phase,
        }
    }
}

impl Limiter for SpringGateway {
    fn arrive(&mut self, now: Instant) -> Decision {
        let second = (now.saturating_duration_since(self.epoch) + self.phase).as_secs();
        let filled = match self.refreshed {
            Some(last) => {
                (self.tokens + second.saturating_sub(last) * self.replenish_rate).min(self.burst_capacity)
            }
            None => self.burst_capacity,
        };
        let served = filled >= self.requested_tokens;
        self.tokens = if served {
            filled - self.requested_tokens
        } else {
            filled
        };
        self.refreshed = Some(second);
        let d = if served {
            Decision::ok()
        } else {
            Decision::refused(StatusCode::TOO_MANY_REQUESTS)
        };
        if !self.headers {
            return d;
        }
        d.header("x-ratelimit-remaining", self.tokens.to_string())
            .header("x-ratelimit-replenish-rate", self.replenish_rate.to_string())
            .header("x-ratelimit-burst-capacity", self.burst_capacity.to_string())
            .header("x-ratelimit-requested-tokens", self.requested_tokens.to_string())
    }
}

/// A duration as Go's `time.Duration.String` writes it: `0s`, `999ns`,
/// `850µs`, `12.345678ms`, `1.5s`, `2m3s`, `1h0m0s`.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    // `whole` units of 10^`digits` ns, the fraction's trailing zeros cut.
    let decimal = |v: u128, digits: u32| {
        let unit = 10u128.pow(digits);
        let fraction = format!("{:0w$}", v % unit, w = digits as usize);
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            format!("{}", v / unit)
        } else {
            format!("{}.{fraction}", v / unit)
        }
    };
    match ns {
        0 => "0s".into(),
        1..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{}µs", decimal(ns, 3)),
        1_000_000..=999_999_999 => format!("{}ms", decimal(ns, 6)),
        _ => {
            let (h, m, s) = (
                ns / 3_600_000_000_000,
                ns / 60_000_000_000 % 60,
                ns % 60_000_000_000,
            );
            let s = format!("{}s", decimal(s, 9));
            match (h, m) {
                (0, 0) => s,
                (0, m) => format!("{m}m{s}"),
                (h, m) => format!("{h}h{m}m{s}"),
            }
        }
    }
}
