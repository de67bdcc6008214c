//! Capacity that changes under the layer: a rate that falls to a fifth and
//! comes back, and one raised fivefold.

use std::time::Duration;

use testkit::model::{Gcra, Phases, TokenBucket};
use testkit::{Limiter, RetryAfter};
use tokio::time::Instant;
use tower_snapshotter::GatePolicy;

use crate::harness::{run_model, Load, Run};
use crate::targets::LATENCY;

/// Capacity that falls to a fifth from second 15 to 35 and comes back,
/// refusing without `Retry-After`: what the model saw from second `from`
/// to `until`, as a share of `allowed`.
async fn falls_and_comes_back(
    limiter: impl Fn(f64, Instant) -> Box<dyn Limiter>,
    (from, until): (f64, f64),
    allowed: f64,
) -> Run {
    let secs = Duration::from_secs;
    let build = |now| -> Box<dyn Limiter> {
        Box::new(Phases::new(
            now,
            vec![
                (secs(0), limiter(500.0, now)),
                (secs(15), limiter(100.0, now)),
                (secs(35), limiter(500.0, now)),
            ],
        ))
    };
    let load = Load {
        allowed,
        demand: 1500.0,
        secs: until,
        from,
        until: Some(until),
        refuse_with: None,
        workers: None,
    };
    run_model(build, load, Some(GatePolicy::Adaptive), LATENCY).await
}

#[tokio::test(start_paused = true)]
async fn capacity_that_falls_and_comes_back_is_climbed_back_to_within_seconds() {
    // A GCRA with a small burst, with and without `Retry-After: 1`, and a
    // one-second bucket: after 20 s at a fifth, the pace climbs back in
    // doublings once the rate returns (before, a probe of 3 % after a wait
    // of 30 s, each held 5 s: 20 % of the rate 10 s after the return), and
    // the probes that found the rate still low cost few refusals. Under
    // `Retry-After` the fall itself takes pauses (each cycle refused at the
    // hold cuts 2, 4, 8, then 15 %), so less of the low rate is served.
    type Model = dyn Fn(f64, Instant) -> Box<dyn Limiter>;
    let gcra = |rate, now| -> Box<dyn Limiter> { Box::new(Gcra::new(rate, 10, RetryAfter::Absent, now)) };
    let told = |rate, now| -> Box<dyn Limiter> { Box::new(Gcra::new(rate, 10, RetryAfter::Static(1), now)) };
    let bucket =
        |rate, now| -> Box<dyn Limiter> { Box::new(TokenBucket::new(rate, rate, RetryAfter::Absent, now)) };
    let cases: [(&str, &Model, f64); 3] = [
        ("gcra b10", &gcra, 0.9),
        ("gcra b10 RA 1", &told, 0.4),
        ("bucket", &bucket, 0.9),
    ];
    for (name, limiter, while_low) in cases {
        let back = falls_and_comes_back(limiter, (45.0, 55.0), 500.0).await;
        assert!(
            back.goodput >= 0.9 && back.refused <= 0.01,
            "{name}: {:.1} % of the full rate 10 s after its return, {:.2} % refused",
            100.0 * back.goodput,
            100.0 * back.refused
        );
        let low = falls_and_comes_back(limiter, (17.0, 35.0), 100.0).await;
        assert!(
            low.goodput >= while_low && low.refused <= 0.01,
            "{name}: {:.1} % of the low rate while low, {:.2} % refused",
            100.0 * low.goodput,
            100.0 * low.refused
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_raised_fivefold_is_found_in_seconds_not_minutes() {
    // A GCRA of 100/s, raised to 500/s at second 15 (an operator lifts a
    // limit, another client's share is freed): probes that hold are followed
    // at once by ones twice as far, each held for less time, and a refused
    // one by one halfway. What the layer gets in seconds 80–90, against
    // 65 % (no `Retry-After`) and 77 % (`Retry-After: 1`) with probes of
    // 3, 6, 12 % … each held 5 s and 5 s apart.
    let secs = Duration::from_secs;
    for (ra, least) in [(RetryAfter::Absent, 0.9), (RetryAfter::Static(1), 0.8)] {
        let build = |now| -> Box<dyn Limiter> {
            Box::new(Phases::new(
                now,
                vec![
                    (secs(0), Box::new(Gcra::new(100.0, 10, ra, now))),
                    (secs(15), Box::new(Gcra::new(500.0, 10, ra, now))),
                ],
            ))
        };
        let load = Load {
            allowed: 500.0,
            demand: 1500.0,
            secs: 90.0,
            from: 80.0,
            until: None,
            refuse_with: None,
            workers: None,
        };
        let r = run_model(build, load, Some(GatePolicy::Adaptive), LATENCY).await;
        assert!(
            r.goodput >= least && r.refused <= 0.01,
            "{ra:?}: {:.1} % of the raised rate, {:.2} % refused",
            100.0 * r.goodput,
            100.0 * r.refused
        );
    }
}
