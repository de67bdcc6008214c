//! GCRAs (nginx `limit_req`), with a burst and without one (`burst=`
//! unset), with `nodelay` and without, with and without `Retry-After`.

use std::time::Duration;

use testkit::{RetryAfter, Spec};
use tower_snapshotter::GatePolicy;

use crate::harness::{closed_loop_opening, run, run_from};
use crate::models::gcra;
use crate::targets::{check, check_at_least, holds, holds_at_least, LATENCY, SECS};

#[tokio::test(start_paused = true)]
async fn nginx_gcra_with_a_static_retry_after_is_held_at_its_rate() {
    holds(gcra(500.0, 50, RetryAfter::Static(1))).await;
    holds(gcra(500.0, 10, RetryAfter::Static(1))).await;
    // A one-request burst refuses requests bunched in one millisecond
    // below its rate: the search's cycle and the first flood meet at the
    // rate without crossing, and that is the fit (it was 16 % of it).
    holds(gcra(2000.0, 1, RetryAfter::Static(1))).await;
}

/// nginx at 1 500/s with a burst of one and `Retry-After: 1`: the search
/// and the opening flood allow 1 340-1 995/s, and their middle, held,
/// was refused at each resume by four sends in two milliseconds. Each
/// such cycle fitted the same range again, and the cut that followed
/// them held 3.6 % of the rate. A fit over the pace just refused now
/// halves the range below that pace.
#[tokio::test(start_paused = true)]
async fn a_fit_over_the_pace_it_held_when_refused_is_halved_below_it() {
    let spec = gcra(1500.0, 1, RetryAfter::Static(1));
    let r = run_from(spec, Some(GatePolicy::Adaptive), 30.0, LATENCY, 10.0).await;
    check_at_least(spec, r, 0.9, 0.01);
}

#[tokio::test(start_paused = true)]
async fn nginx_without_nodelay_queues_and_is_held_at_its_rate() {
    // nginx `limit_req … burst=N` without `nodelay` (its default) serves
    // what comes too fast late, at its rate, and refuses only past a queue
    // of N: round trips grow before anything is refused.
    let delayed = |rate, burst, retry_after| Spec::GcraDelayed {
        rate,
        burst,
        retry_after,
    };
    holds(delayed(500.0, 20, RetryAfter::Static(1))).await;
    holds(delayed(100.0, 5, RetryAfter::Absent)).await;
}

/// nginx's `burst=` of a hundred or five hundred at a few a second
/// (`nodelay`, no `Retry-After`) under a closed loop of 64: the opening
/// takes the burst at once, reads it as the rate, and the pace that
/// follows is refused nearly every send until the host's acceptances
/// measure it. At 10/s with a burst of 100 the slots at the limit read
/// 10.7/s and were passed over for 17 s (the last second's count, 9,
/// allowed no more than 9.9/s): 68 % of these 30 s refused, 14 % now. At
/// 1/s with a burst of 500, eight acceptances at the hold took 4 s of 485
/// refusals a second (74 %); two acceptances, or one in half a second,
/// now bound it (24 %: the opening's flood and drain). 100 ms away, 10/s
/// with a burst of 500 drained at half of 440/s for 13 s, read as a
/// window that counts refusals (79 %; 28 % now).
#[tokio::test(start_paused = true)]
async fn a_large_burst_read_as_the_rate_is_measured_by_the_few_acceptances_past_it() {
    let far = Duration::from_millis(100);
    for (rate, burst, latency, refused) in [
        (10.0, 100, LATENCY, 0.2),
        (1.0, 500, LATENCY, 0.35),
        (10.0, 500, far, 0.4),
    ] {
        let spec = gcra(rate, burst, RetryAfter::Absent);
        let r = closed_loop_opening(spec, latency).await;
        check_at_least(spec, r, 1.0, refused);
    }
}

/// nginx without `burst=` (its default) 100 ms away, under a closed loop
/// of 64: a search frozen past its rate is accepted one send in two, and
/// that half rate was held for the minute and more a probe waits (49 %
/// of 10/s, 56 % of 3/s, over these 30 s). Such a limiter's opening
/// shows it (one of the sends that went together taken): the frozen pace
/// is a ceiling, probed toward at once.
#[tokio::test(start_paused = true)]
async fn a_far_limiter_without_a_burst_is_not_held_at_half_its_rate() {
    let far = Duration::from_millis(100);
    for rate in [3.0, 10.0] {
        let spec = gcra(rate, 0, RetryAfter::Absent);
        let r = closed_loop_opening(spec, far).await;
        check_at_least(spec, r, 0.85, 0.2);
    }
}

/// nginx without `burst=` under an open loop, whose sends never go
/// together: the opening cannot tell it has no burst, and its search,
/// frozen a little past the rate, is accepted every other send. That
/// half of the pace read as the rate held it at 59-61 % at 50-300 ms;
/// the pace refused is a ceiling, probed halfway at a time.
#[tokio::test(start_paused = true)]
async fn an_open_loop_to_a_limiter_without_a_burst_is_not_held_at_half_its_rate() {
    for ms in [50, 200] {
        let spec = gcra(50.0, 0, RetryAfter::Absent);
        let r = run(spec, None, SECS, Duration::from_millis(ms)).await;
        check_at_least(spec, r, 0.9, 0.5);
    }
}

#[tokio::test(start_paused = true)]
async fn gcra_without_retry_after_is_measured_at_its_limit() {
    holds(gcra(500.0, 50, RetryAfter::Absent)).await;
    // A burst of 2.5 s of the rate: the first guess (what the host accepted
    // over a second) is 2.7 times the rate, and the refusals at that pace
    // must not be read as a window that counts them.
    holds(gcra(20.0, 50, RetryAfter::Absent)).await;
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_seconds_at_a_few_a_second_is_not_held_above_its_rate() {
    // nginx `rate=10r/s burst=50`: the opening flood reads 24/s, and a
    // hundred-millisecond slot at the limit holds one acceptance, so the
    // slots never measure it. Refusals at the hold stepped the estimate
    // back 2 % at a time, each step before the count since the last one
    // meant anything: half the sends were refused for 6 s (12.7 % of the
    // 25 counted seconds). What the host accepted since the cut, once half
    // a second of it is counted, is its rate.
    let spec = gcra(10.0, 50, RetryAfter::Absent);
    let r = run(spec, Some(GatePolicy::Adaptive), 30.0, LATENCY).await;
    check_at_least(spec, r, 0.9, 0.01);
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_seconds_at_a_few_a_second_is_stepped_back_to_what_it_accepted() {
    // `rate=3r/s burst=50`: the flood runs the burst out at 8.4 s and the
    // first guess is 8/s. What the host accepted since the count started
    // was read over the time since the latest cut only, which the pace's
    // own steps keep moving: 5.2/s, still refused a third of the time for
    // seconds more. Counted from second 12, nothing is refused now.
    let spec = gcra(3.0, 50, RetryAfter::Absent);
    let r = run_from(spec, Some(GatePolicy::Adaptive), 30.0, LATENCY, 12.0).await;
    check_at_least(spec, r, 0.85, 0.01);
}

#[tokio::test(start_paused = true)]
async fn a_far_gcra_searched_past_is_not_read_as_a_window_that_counts_refusals() {
    // 100 ms away, refusals come back at once and acceptances a round trip
    // later. The search after the opening flood cut every 100 ms, and only
    // answers to requests sent since the cut count: refused three to one,
    // 15/s with a burst of 50 was drained as a counting window and held at
    // 95 % of a low reading, 88.5 % of its rate.
    let spec = gcra(15.0, 50, RetryAfter::Absent);
    let r = run(spec, Some(GatePolicy::Adaptive), 30.0, Duration::from_millis(100)).await;
    check(spec, r);
}

#[tokio::test(start_paused = true)]
async fn a_step_back_at_the_hold_is_no_lower_than_the_episode_accepted() {
    // `rate=10r/s burst=50`, 100 ms away: refused at the hold, the pace
    // stepped back to four acceptances counted over half a second, 9.1/s,
    // and held there for the half minute a costly probe waits. What the
    // host accepted over the episode's last second is the floor.
    let spec = gcra(10.0, 50, RetryAfter::Absent);
    let r = run(spec, Some(GatePolicy::Adaptive), SECS, Duration::from_millis(100)).await;
    check(spec, r);
}

#[tokio::test(start_paused = true)]
async fn a_limiter_without_a_burst_is_not_refused_where_the_pace_resumes() {
    // nginx `limit_req` without `burst=`, with `Retry-After: 1` added: a
    // pace that restarted one timer tick back (after its queue idled) sent
    // its next request a tick short of its interval, which such a limiter
    // refuses at once. The search was refused there, at 83 % of the rate,
    // and held at 81 % (a refused probe costs a pause, so probes wait).
    // At 100/s the same tick-back paused the host after every pause.
    holds(gcra(1000.0, 0, RetryAfter::Static(1))).await;
    // At 20/s the search is refused at the first gap under the interval,
    // and held at what it had sent (80 %): four refusals for the gaps to
    // tell took four pauses. Two do: the opening flood's, whose other
    // requests no limiter with a burst refuses, and the search's.
    holds_at_least(gcra(20.0, 0, RetryAfter::Static(1)), 0.85).await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_search_is_held_where_it_was_refused_not_at_its_average() {
    // nginx without `burst=` at 10/s, `Retry-After: 1`: the search after
    // the opening pause spent a second at 1/s, then grew to 11/s within
    // three sends and was refused. Too few sends for a peak over four
    // intervals, it was held at its cycle's average, 3/s, for minutes.
    // Sent as fast as it grows, its last four intervals span its growth
    // (7.6/s), and the gaps up to its refusal measure the limiter.
    holds_at_least(gcra(10.0, 0, RetryAfter::Static(1)), 0.85).await;
}

#[tokio::test(start_paused = true)]
async fn a_search_after_a_pause_sends_as_fast_as_it_grows() {
    // nginx without `burst=` at a few a second, `Retry-After: 1`: the
    // search after the opening pause starts at 1/s. Its leader waited out
    // that first second while the pace grew ninefold, its next send came
    // 135 ms later and was refused, and the cycle (1 s, then 135 ms) read
    // 1.8/s: held there, 24-58 % of 3-7/s.
    for rate in [3.0, 5.0, 7.0] {
        holds_at_least(gcra(rate, 0, RetryAfter::Static(1)), 0.75).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_limiter_without_a_burst_is_measured_by_its_gaps() {
    // nginx `limit_req` without `burst=` (its default) refuses a request
    // sooner than one interval after the last one it accepted. Sent to a
    // little too fast it accepts well under its rate (at 108/s on a
    // millisecond timer, some 60/s), so what it accepts is no measure of
    // it; the gaps are. And a pace that catches up a whole interval after a
    // stall sends two requests at once, the second always refused (7.5 %
    // of the rate before).
    holds(gcra(100.0, 0, RetryAfter::Absent)).await;
    // The gaps bound it from above too: a search frozen at 1.25 times its
    // rate is refused every other request, and the gaps say "between half
    // that pace and that pace". Held at the lower end, probed 3 % at a
    // time, 20/s got 89 %; probes go halfway to the top, one after another.
    holds(gcra(20.0, 0, RetryAfter::Absent)).await;
    // Behind a slow backend, refused at once and served 200 ms later, the
    // gaps are read only where every answer is in (64 % before).
    let spec = gcra(100.0, 0, RetryAfter::Absent);
    let r = run(spec, Some(GatePolicy::Adaptive), SECS, Duration::from_millis(200)).await;
    check(spec, r);
}

#[tokio::test(start_paused = true)]
async fn a_limiter_without_a_burst_gets_no_send_sooner_than_its_interval() {
    // nginx without `burst=` at 500/s, `Retry-After: 1`: the pace's
    // catch-up of a late slot sent two requests 1 ms apart, the second
    // refused at 83 % of the rate, and the host was held at 84 % there.
    holds(gcra(500.0, 0, RetryAfter::Static(1))).await;
}

#[tokio::test(start_paused = true)]
async fn a_search_past_a_burst_is_measured_by_its_steady_acceptances() {
    // nginx with a burst, counted from the first request: the burst hides
    // the rate until the search is near twice it, and a GCRA past its
    // rate accepts one send per interval. Frozen 600 ms there for a
    // measurement, the search was refused at 100/s with `burst=20` on
    // 5.9 % of the requests; read from those steady acceptances, 1.4 %.
    // At 20/s, where the opening's flood put the first reading at 30/s,
    // keeping that reading over the steady one stepped the hold back 2 %
    // a refusal for 4 s: 17 % refused (8.7 % before either, 7.6 % now).
    for (rate, refused) in [(100.0, 0.025), (20.0, 0.12)] {
        let spec = gcra(rate, 20, RetryAfter::Absent);
        let r = run_from(spec, Some(GatePolicy::Adaptive), 10.0, LATENCY, 0.0).await;
        check_at_least(spec, r, 0.95, refused);
    }
}
