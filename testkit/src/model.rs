//! The limiter models: each decides, on the server's own clock, whether one
//! arriving request is served, and with which headers.
//!
//! Every model is a behaviour class servers really run (see the crate docs):
//! the client never learns the rate except through the answers.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue, StatusCode};
use tokio::time::Instant;

/// What the server answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// 200 when served; 429 or 503 when refused.
    pub status: StatusCode,
    /// Headers the limiter adds (`Retry-After`, quota fields).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// How long the limiter holds a served request before the server
    /// works on it (nginx `limit_req` without `nodelay` queues excess
    /// requests to its rate); zero for the others.
    pub delay: Duration,
}

impl Decision {
    fn ok() -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    fn refused(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// Whether the request was served.
    pub fn served(&self) -> bool {
        self.status.is_success()
    }

    fn header(mut self, name: &'static str, value: String) -> Self {
        if let Ok(v) = HeaderValue::from_str(&value) {
            self.headers.push((HeaderName::from_static(name), v));
        }
        self
    }

    /// The first value of a header, as text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
    }
}

/// A rate limiter in front of a server.
pub trait Limiter: Send {
    /// A request arrives at `now`.
    fn arrive(&mut self, now: Instant) -> Decision;
    /// A request that was served leaves at `now` (only concurrency limits
    /// care).
    fn depart(&mut self, _now: Instant) {}
}

/// Which `Retry-After` a refusal carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// None at all (nginx's own behaviour).
    Absent,
    /// The same whole number of seconds on every refusal
    /// (`add_header Retry-After 1 always`).
    Static(u32),
    /// The time until the limiter would serve the next request, in whole
    /// seconds rounded to the nearest (HTTP allows no fraction): `0` on a
    /// fast limiter, which tells the client to come back at once.
    Exact,
}

impl RetryAfter {
    fn apply(self, d: Decision, wait: Duration) -> Decision {
        match self {
            RetryAfter::Absent => d,
            RetryAfter::Static(s) => d.header("retry-after", s.to_string()),
            RetryAfter::Exact => {
                let secs = (wait.as_secs_f64()).round() as u64;
                d.header("retry-after", secs.to_string())
            }
        }
    }
}

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

fn wall_epoch() -> SystemTime {
    match WALL_PHASE_MS.load(std::sync::atomic::Ordering::Relaxed) {
        u64::MAX => SystemTime::now(),
        ms => SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms),
    }
}

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

/// nginx `limit_conn`: 503 past `limit` requests in flight, no
/// `Retry-After`.
#[derive(Debug)]
pub struct Concurrency {
    limit: usize,
    in_flight: usize,
}

impl Concurrency {
    /// At most `limit` requests in flight.
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            in_flight: 0,
        }
    }
}

impl Limiter for Concurrency {
    fn arrive(&mut self, _now: Instant) -> Decision {
        if self.in_flight >= self.limit {
            return Decision::refused(StatusCode::SERVICE_UNAVAILABLE);
        }
        self.in_flight += 1;
        Decision::ok()
    }

    fn depart(&mut self, _now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }
}

/// No limit at all.
#[derive(Debug, Default)]
pub struct Unlimited;

impl Limiter for Unlimited {
    fn arrive(&mut self, _now: Instant) -> Decision {
        Decision::ok()
    }
}

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
/// Cloudflare's rate limiting sends.
pub struct PenaltyBox {
    inner: Box<dyn Limiter>,
    ban: Duration,
    sticky: bool,
    tells: bool,
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
            banned_until: None,
        }
    }

    /// Each refusal says, in `Retry-After`, the whole seconds left in the
    /// ban, rounded up.
    pub fn telling(mut self) -> Self {
        self.tells = true;
        self
    }

    fn refused(&self, now: Instant, status: StatusCode) -> Decision {
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
