//! The tests of the models that wrap other limiters: `Phases`.

use std::time::Duration;

use testkit::model::{Phases, TokenBucket};
use testkit::{Limiter, RetryAfter};
use tokio::time::Instant;

use super::steady;

// ---------------------------------------------------------------- Phases

#[tokio::test(start_paused = true)]
async fn phases_serve_each_limiter_from_its_start_on() {
    let now = Instant::now();
    let bucket =
        |rate: f64| -> Box<dyn Limiter> { Box::new(TokenBucket::new(rate, 1.0, RetryAfter::Absent, now)) };
    let secs = Duration::from_secs;
    let mut p = Phases::new(
        now,
        vec![
            (secs(0), bucket(100.0)),
            (secs(10), bucket(20.0)),
            (secs(20), bucket(100.0)),
        ],
    );
    // Every 5 ms is 200/s: each phase serves its own rate (a little less
    // at 20/s, where the refill per arrival is not exact in binary).
    let (fast, _) = steady(&mut p, Duration::from_millis(5), secs(10)).await;
    let (slow, _) = steady(&mut p, Duration::from_millis(5), secs(10)).await;
    let (back, _) = steady(&mut p, Duration::from_millis(5), secs(10)).await;
    assert!((995..=1001).contains(&fast), "{fast}");
    assert!((180..=201).contains(&slow), "{slow}");
    assert!((995..=1001).contains(&back), "{back}");
}
