//! The tests of the limits that are not rates: `Concurrency` and `Unlimited`.

use std::time::Duration;

use http::StatusCode;
use testkit::model::{Concurrency, Unlimited};
use testkit::Limiter;
use tokio::time::{advance, Instant};

use super::{arrive, burst};

// ---------------------------------------------------------------- Concurrency

#[tokio::test(start_paused = true)]
async fn concurrency_refuses_past_the_limit_until_one_departs() {
    let mut c = Concurrency::new(2);
    assert!(arrive(&mut c).served());
    assert!(arrive(&mut c).served());
    let d = arrive(&mut c);
    assert_eq!(d.status, StatusCode::SERVICE_UNAVAILABLE, "third in flight");
    assert!(d.headers.is_empty(), "no Retry-After: {d:?}");
    // Refusals never held a slot; time alone frees nothing.
    advance(Duration::from_secs(60)).await;
    assert_eq!(burst(&mut c, 10), 0);
    c.depart(Instant::now());
    assert!(arrive(&mut c).served());
    assert!(!arrive(&mut c).served());
    c.depart(Instant::now());
    c.depart(Instant::now());
    assert_eq!(burst(&mut c, 10), 2);
}

#[tokio::test(start_paused = true)]
async fn unlimited_serves_everything() {
    assert_eq!(burst(&mut Unlimited, 100_000), 100_000);
}
