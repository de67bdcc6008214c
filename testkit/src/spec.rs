//! A limiter described by value: what the `crawl` example's flags and the
//! scenario harness choose from.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::model::{
    Concurrency, FixedWindow, FreqCounter, Gcra, Limiter, MovingWindow, QuotaHeaders, RetryAfter,
    SlidingWindow, SpringGateway, TokenBucket, Traefik,
};

/// One limiter model with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spec {
    /// (a) nginx `limit_req`: GCRA at `rate` with `burst`, `nodelay`.
    Gcra {
        /// Requests per second.
        rate: f64,
        /// Requests of excess allowed.
        burst: u32,
        /// `Retry-After` on a refusal.
        retry_after: RetryAfter,
    },
    /// nginx `limit_req` as it runs by default with `burst=`, without
    /// `nodelay`: GCRA at `rate`, requests within `burst` queued to the
    /// rate (served late), past it refused.
    GcraDelayed {
        /// Requests per second.
        rate: f64,
        /// Requests that may wait in the queue.
        burst: u32,
        /// `Retry-After` on a refusal.
        retry_after: RetryAfter,
    },
    /// (b) a sliding window counting refused requests too: one second in
    /// the matrix; HAProxy's examples use ten.
    Sliding {
        /// Requests per second over a window.
        rate: f64,
        /// The window.
        window: Duration,
    },
    /// HAProxy's `http_req_rate(window)` counter as it reads: the previous
    /// period weighed by the time left in the current one, refused
    /// requests counted too.
    Haproxy {
        /// Requests per second over a window.
        rate: f64,
        /// The counter's period.
        window: Duration,
    },
    /// A moving window of served requests (refusals not counted), as the
    /// `limits` library (Flask-Limiter, slowapi) and Caddy's `rate_limit`
    /// keep one.
    Moving {
        /// Requests per second over a window.
        rate: f64,
        /// The window.
        window: Duration,
        /// `Retry-After` on a refusal (`exact`: until the oldest served
        /// request leaves the window).
        retry_after: RetryAfter,
        /// Flask-Limiter's `X-RateLimit-*` headers and its `Retry-After`
        /// on every answer instead.
        headers: bool,
    },
    /// (c) a fixed window of `rate × window` requests with quota headers.
    Window {
        /// Requests per second over a window.
        rate: f64,
        /// The window.
        window: Duration,
        /// Which quota headers.
        headers: QuotaHeaders,
    },
    /// (d) a token bucket with a one-second burst.
    Bucket {
        /// Requests per second (and the burst).
        rate: f64,
        /// `Retry-After` on a refusal.
        retry_after: RetryAfter,
    },
    /// Traefik's `rateLimit`: a token bucket of `burst` that serves late
    /// what comes within half an interval, and refuses the rest with
    /// `Retry-After` rounded up and the exact `X-Retry-In`.
    Traefik {
        /// Requests per second (`average` over `period`).
        rate: f64,
        /// Tokens (`burst`, at least one).
        burst: u32,
    },
    /// Spring Cloud Gateway's `RequestRateLimiter`: a token bucket
    /// refilled at each second of the server's clock, refusals free, the
    /// bucket named in headers on every answer (unless `headers` is off).
    Spring {
        /// Requests per second (`replenishRate`).
        rate: f64,
        /// Requests the bucket holds (`burstCapacity`, at least a second's).
        burst: u32,
        /// `includeHeaders`.
        headers: bool,
    },
    /// (e) a concurrency limit: 503 past `limit` in flight.
    Concurrency {
        /// Requests in flight.
        limit: usize,
    },
}

/// A limiter named on a command line that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(pub String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SpecError {}

impl Spec {
    /// Builds the model on the server's clock.
    pub fn build(&self, now: Instant) -> Box<dyn Limiter> {
        match *self {
            Spec::Gcra {
                rate,
                burst,
                retry_after,
            } => Box::new(Gcra::new(rate, burst, retry_after, now)),
            Spec::GcraDelayed {
                rate,
                burst,
                retry_after,
            } => Box::new(Gcra::new(rate, burst, retry_after, now).delaying()),
            Spec::Sliding { rate, window } => {
                let limit = (rate * window.as_secs_f64()).round().max(1.0) as usize;
                Box::new(SlidingWindow::new(limit, window))
            }
            Spec::Haproxy { rate, window } => {
                let limit = (rate * window.as_secs_f64()).round().max(1.0) as usize;
                Box::new(FreqCounter::new(limit, window))
            }
            Spec::Moving {
                rate,
                window,
                retry_after,
                headers,
            } => {
                let limit = (rate * window.as_secs_f64()).round().max(1.0) as usize;
                let moving = MovingWindow::new(limit, window, retry_after);
                Box::new(if headers { moving.with_headers(now) } else { moving })
            }
            Spec::Window {
                rate,
                window,
                headers,
            } => {
                let quota = (rate * window.as_secs_f64()).round().max(1.0) as u64;
                Box::new(FixedWindow::new(quota, window, headers, now))
            }
            Spec::Bucket { rate, retry_after } => Box::new(TokenBucket::new(rate, rate, retry_after, now)),
            Spec::Traefik { rate, burst } => Box::new(Traefik::new(rate, burst)),
            Spec::Spring { rate, burst, headers } => Box::new(SpringGateway::new(rate, burst, headers, now)),
            Spec::Concurrency { limit } => Box::new(Concurrency::new(limit)),
        }
    }

    /// Parses the `crawl` example's flags: `kind` is one of `gcra`,
    /// `gcra-delay`, `sliding`, `haproxy`, `moving`, `moving-flask`, `window`, `window-github`, `bucket`, `traefik`, `spring`, `spring-bare`, `concurrency`;
    /// `retry_after` is `none`, `exact` or a whole number of seconds.
    pub fn parse(kind: &str, rate: f64, burst: u32, retry_after: &str) -> Result<Self, SpecError> {
        let ra = match retry_after {
            "none" | "0" => RetryAfter::Absent,
            "exact" => RetryAfter::Exact,
            s => RetryAfter::Static(s.parse().map_err(|_| {
                SpecError(format!(
                    "--retry-after: expected none, exact or whole seconds, got {s:?}"
                ))
            })?),
        };
        if !(0.01..=1e6).contains(&rate) {
            return Err(SpecError(format!(
                "--rate: expected 0.01 ..= 1000000, got {rate}"
            )));
        }
        Ok(match kind {
            "gcra" => Spec::Gcra {
                rate,
                burst,
                retry_after: ra,
            },
            "gcra-delay" => Spec::GcraDelayed {
                rate,
                burst,
                retry_after: ra,
            },
            "sliding" => Spec::Sliding {
                rate,
                window: Duration::from_secs(1),
            },
            "haproxy" => Spec::Haproxy {
                rate,
                window: Duration::from_secs(1),
            },
            "moving" => Spec::Moving {
                rate,
                window: Duration::from_secs(1),
                retry_after: ra,
                headers: false,
            },
            "moving-flask" => Spec::Moving {
                rate,
                window: Duration::from_secs(1),
                retry_after: ra,
                headers: true,
            },
            "window" => Spec::Window {
                rate,
                window: Duration::from_secs(5),
                headers: QuotaHeaders::Ietf,
            },
            "window-github" => Spec::Window {
                rate,
                window: Duration::from_secs(5),
                headers: QuotaHeaders::GitHub,
            },
            "bucket" => Spec::Bucket { rate, retry_after: ra },
            "traefik" => Spec::Traefik { rate, burst },
            "spring" | "spring-bare" => Spec::Spring {
                rate,
                burst,
                headers: kind == "spring",
            },
            "concurrency" => Spec::Concurrency {
                limit: burst.max(1) as usize,
            },
            other => {
                return Err(SpecError(format!(
                    "--limiter: expected gcra, gcra-delay, sliding, haproxy, moving, moving-flask, window, window-github, bucket, traefik, spring, spring-bare or concurrency, got {other:?}"
                )))
            }
        })
    }

    /// The same limiter over another window: a sliding window's length or
    /// a quota window's; other kinds are returned unchanged.
    pub fn with_window(self, length: Duration) -> Self {
        match self {
            Spec::Sliding { rate, .. } => Spec::Sliding { rate, window: length },
            Spec::Haproxy { rate, .. } => Spec::Haproxy { rate, window: length },
            Spec::Moving {
                rate,
                retry_after,
                headers,
                ..
            } => Spec::Moving {
                rate,
                window: length,
                retry_after,
                headers,
            },
            Spec::Window { rate, headers, .. } => Spec::Window {
                rate,
                window: length,
                headers,
            },
            other => other,
        }
    }

    /// The rate the server allows, if it limits a rate.
    pub fn rate(&self) -> Option<f64> {
        match *self {
            Spec::Gcra { rate, .. }
            | Spec::GcraDelayed { rate, .. }
            | Spec::Sliding { rate, .. }
            | Spec::Haproxy { rate, .. }
            | Spec::Moving { rate, .. }
            | Spec::Window { rate, .. }
            | Spec::Bucket { rate, .. }
            | Spec::Traefik { rate, .. }
            | Spec::Spring { rate, .. } => Some(rate),
            Spec::Concurrency { .. } => None,
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ra = |r: &RetryAfter| match r {
            RetryAfter::Absent => "no RA".to_string(),
            RetryAfter::Static(s) => format!("RA {s}"),
            RetryAfter::Exact => "RA exact".to_string(),
        };
        match self {
            Spec::Gcra {
                rate,
                burst,
                retry_after,
            } => write!(f, "gcra {rate}/s b{burst} {}", ra(retry_after)),
            Spec::GcraDelayed {
                rate,
                burst,
                retry_after,
            } => write!(f, "gcra-delay {rate}/s b{burst} {}", ra(retry_after)),
            Spec::Sliding { rate, window } if *window == Duration::from_secs(1) => {
                write!(f, "sliding {rate}/s")
            }
            Spec::Sliding { rate, window } => write!(f, "sliding {rate}/s w{}s", window.as_secs_f64()),
            Spec::Haproxy { rate, window } => write!(f, "haproxy {rate}/s w{}s", window.as_secs_f64()),
            Spec::Moving {
                rate,
                window,
                headers: true,
                ..
            } => write!(f, "moving {rate}/s w{}s Flask", window.as_secs_f64()),
            Spec::Moving {
                rate,
                window,
                retry_after,
                ..
            } => write!(
                f,
                "moving {rate}/s w{}s {}",
                window.as_secs_f64(),
                ra(retry_after)
            ),
            Spec::Window {
                rate,
                window,
                headers,
            } => {
                write!(f, "window {rate}/s w{}s {headers:?}", window.as_secs())
            }
            Spec::Bucket { rate, retry_after } => write!(f, "bucket {rate}/s {}", ra(retry_after)),
            Spec::Traefik { rate, burst } => write!(f, "traefik {rate}/s b{burst}"),
            Spec::Spring { rate, burst, headers } => {
                write!(
                    f,
                    "spring {rate}/s b{burst}{}",
                    if *headers { "" } else { " bare" }
                )
            }
            Spec::Concurrency { limit } => write!(f, "concurrency {limit}"),
        }
    }
}
