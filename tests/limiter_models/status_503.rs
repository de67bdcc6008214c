//! Limiters that answer 503: nginx `limit_req` at its default status, with
//! and without `Retry-After`, and `limit_conn` on requests in flight.

use std::time::Duration;

use testkit::{RetryAfter, Spec};
use tower_snapshotter::GatePolicy;

use crate::harness::{run, run_503};
use crate::models::gcra;
use crate::targets::{check, check_at_least, SECS};

#[tokio::test(start_paused = true)]
async fn a_far_limiter_answering_503_with_retry_after_is_paced_not_cut() {
    // nginx `limit_req` answers 503 by default; with `Retry-After` added
    // the host is paused, and the refusal is one of rate. Each such 503
    // also cut the concurrency limit as an overload: 100 ms away it fell
    // to a few in flight, 21 % of 500/s with a one-request burst and 65 %
    // with a burst of 10. Paced as a 429 is, both are held at their rate.
    for burst in [1, 10] {
        let spec = gcra(500.0, burst, RetryAfter::Static(1));
        let r = run_503(spec, SECS, Duration::from_millis(100)).await;
        check(spec, r);
    }
}

#[tokio::test(start_paused = true)]
async fn a_limiter_answering_503_without_retry_after_is_paced_where_it_accepts() {
    // nginx `limit_req` as shipped: 503, no `Retry-After`, a one-request
    // burst. Each 503 also cut the concurrency limit as an overload, and a
    // host 20-50 ms away settled at three in flight: 12-30 % of 500/s.
    // Refused at the depths it also accepts at, it is a limiter of rate.
    // At 200/s the sends went in waves under the concurrency limit, a
    // wave's tail was refused after a lull, and the pace stepped back from
    // a reading taken while it ramped: 57 %. And 50 ms away at 500/s, a
    // search frozen at 689/s while the concurrency limit sent 400/s was
    // refused at a wave's tail and held at 400/s, one run in four (79 %):
    // the pace it froze at, never in charge, is probed toward.
    for (rate, latency) in [(500.0, 20), (500.0, 50), (200.0, 50)] {
        let spec = gcra(rate, 1, RetryAfter::Absent);
        let r = run_503(spec, SECS, Duration::from_millis(latency)).await;
        check(spec, r);
    }
}

#[tokio::test(start_paused = true)]
async fn a_far_limiter_answering_503_is_found_past_the_ceiling_its_waves_set() {
    // The same nginx 100 ms away: the opening wave's tail refused at depth
    // reads as a limit on requests in flight, and the concurrency limit
    // then grew one request per round once a probe past it held: ten
    // seconds to the fifty in flight 500/s needs, 6-27 % of the rate. A
    // probe that holds past a ceiling refusals set starts slow start
    // again. (85-96 % over eight runs: the opening's probes wait a jittered
    // quiet time.)
    let spec = gcra(500.0, 1, RetryAfter::Absent);
    let r = run_503(spec, 30.0, Duration::from_millis(100)).await;
    check_at_least(spec, r, 0.75, 0.01);
}

#[tokio::test(start_paused = true)]
async fn a_limit_on_requests_in_flight_moves_the_concurrency_not_the_pace() {
    // nginx `limit_conn`: 503 past C in flight, no `Retry-After`. Its
    // refusals follow the depth, not the rate: the concurrency limit finds
    // C and a probe one above it costs one step back.
    for limit in [4, 16] {
        let spec = Spec::Concurrency { limit };
        let r = run(spec, Some(GatePolicy::Adaptive), SECS, Duration::from_millis(20)).await;
        check(spec, r);
    }
}
