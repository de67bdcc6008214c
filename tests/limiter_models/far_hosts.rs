//! Slow and far hosts: a few requests a second, servers 100 ms away, and
//! slow backends whose answers come in waves.

use std::time::Duration;

use testkit::RetryAfter;
use tower_snapshotter::GatePolicy;

use crate::harness::run;
use crate::models::{gcra, sliding};
use crate::targets::{check, check_at_least, LATENCY, SECS};

#[tokio::test(start_paused = true)]
async fn a_slow_host_is_paced_not_hammered() {
    // A few requests a second: refusals come before eight answers were
    // accepted. Unpaced, the client sent its whole demand into a window
    // that counts refusals (all refused) or a one-request burst (a third
    // refused, a 1 s pause each). What the host accepted is still a lower
    // bound to pace from and search upward.
    for spec in [sliding(5.0), gcra(5.0, 1, RetryAfter::Absent)] {
        let r = run(spec, Some(GatePolicy::Adaptive), SECS, LATENCY).await;
        check_at_least(spec, r, 0.85, 0.01);
    }
    // With `Retry-After: 1` each refusal costs a second: pauses in a row
    // after short cycles cut the estimate deeper each time. At 2/s a
    // refusal is 3 % of the answers in the usual 15 s, so a minute. (The
    // pauses' jitter draws at random: 84–100 % of the rate; a third of the
    // requests refused and two thirds of the rate before.)
    let spec = gcra(2.0, 1, RetryAfter::Static(1));
    let r = run(spec, Some(GatePolicy::Adaptive), 60.0, LATENCY).await;
    check_at_least(spec, r, 0.75, 0.05);
}

#[tokio::test(start_paused = true)]
async fn a_far_server_is_held_at_its_rate() {
    // 100 ms away, refused at once and served after its latency: a 429's
    // round trip is not a served request's, and answers to requests sent
    // in one moment arrive a round trip apart. Before, the limit fell to
    // one in flight (10/s) or measured the rate a round trip short.
    for spec in [
        gcra(500.0, 1, RetryAfter::Absent),
        gcra(500.0, 50, RetryAfter::Exact),
        // Cycles between `Retry-After` pauses sent in waves of a round trip
        // fit a rate far too low unless a fit must end each cycle at its
        // fullest (20 % of the rate before).
        gcra(500.0, 1, RetryAfter::Static(1)),
        // A search refused with nothing to fit yet held at its average
        // rate, far below where it was refused, for the 30 s between
        // probes (44 % of the rate before).
        gcra(500.0, 10, RetryAfter::Static(1)),
    ] {
        let r = run(spec, Some(GatePolicy::Adaptive), SECS, Duration::from_millis(100)).await;
        check(spec, r);
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_backend_sending_in_waves_is_measured_with_the_pace_in_charge() {
    // Served after 200 ms, refused at once: the concurrency limit lets
    // requests go in waves a round trip apart, and a one-request burst
    // refuses each wave's tail however slow the average. What a slot
    // accepted then is a wave's share: held as the rate, 88 % of it here
    // and 37 % at 500/s (95.5 % now). The search restarts from it instead,
    // and a search frozen above its estimate that nothing refused keeps
    // what it was accepted at (it fell from 1 900/s to 400/s at 2 000/s).
    let spec = gcra(100.0, 1, RetryAfter::Absent);
    let r = run(spec, Some(GatePolicy::Adaptive), SECS, Duration::from_millis(200)).await;
    check(spec, r);
    // With `Retry-After: 1`, a search refused in waves was held at its
    // waves' peak as if past the limit (64 % of 500/s with a burst of 10);
    // it is a lower bound, searched upward from. Each refusal still costs
    // a second's pause, and the search takes a few: the 95 % is
    // not met here (84 %).
    let spec = gcra(500.0, 10, RetryAfter::Static(1));
    let r = run(spec, Some(GatePolicy::Adaptive), SECS, Duration::from_millis(200)).await;
    check_at_least(spec, r, 0.8, 0.01);
}
