//! The limits that are not rates: in-flight requests ([`Concurrency`]) and
//! none at all ([`Unlimited`]).

use http::StatusCode;
use tokio::time::Instant;

use super::{Decision, Limiter};

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
