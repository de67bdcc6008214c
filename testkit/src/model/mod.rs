//! The limiter models: each decides, on the server's own clock, whether one
//! arriving request is served, and with which headers.
//!
//! Every model is a behaviour class servers really run (see the crate docs):
//! the client never learns the rate except through the answers.

mod buckets;
mod concurrency;
mod fixed_window;
mod gcra;
mod sliding;
mod wrappers;

pub use buckets::{go_duration, SpringGateway, TokenBucket, Traefik};
pub use concurrency::{Concurrency, Unlimited};
pub use fixed_window::{set_wall_phase_ms, FixedWindow, QuotaHeaders};
pub use gcra::Gcra;
pub use sliding::{FreqCounter, MovingWindow, SlidingWindow};
pub use wrappers::{Noisy, PenaltyBox, Phases};

use std::time::Duration;

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
