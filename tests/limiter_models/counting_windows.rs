//! Windows that count refusals (HAProxy's `http_req_rate`, sliding logs):
//! held at their rate near and far, drained rather than probed.

use std::time::Duration;

use testkit::{RetryAfter, Spec};
use tower_snapshotter::GatePolicy;

use crate::harness::{closed_loop, closed_loop_opening, run, run_from};
use crate::models::{gcra, sliding};
use crate::targets::{check, check_at_least, holds, holds_at_least, LATENCY};

/// HAProxy's `http_req_rate` counter of a second: the previous period
/// weighs by the time left in the current one and refusals count, so an
/// overshoot's refusals hold it shut well into the next period. The pace
/// starved there, and the cycle after it read a third (8/s) to a half
/// (20-30/s) of the rate, held for minutes.
#[tokio::test(start_paused = true)]
async fn haproxys_counter_of_a_second_is_held_near_its_rate() {
    for rate in [8.0, 20.0, 30.0] {
        let window = Duration::from_secs(1);
        holds_at_least(Spec::Haproxy { rate, window }, 0.9).await;
    }
}

/// A window that counts refusals 300 ms away, held at its rate, and a
/// probe 3 % over it: the refusals came back at once and the acceptances
/// a round trip later, and the count since the cut, over 0.67 s, read
/// HAProxy's counter of ten seconds at 100/s as 37.7/s, held for the
/// minutes a probe under such a window waits (70 % of its rate from
/// second 30). Under four round trips, a count is no rate there.
#[tokio::test(start_paused = true)]
async fn a_far_window_that_counts_refusals_is_not_stepped_back_by_a_count_of_its_shut_stretch() {
    let spec = Spec::Haproxy {
        rate: 100.0,
        window: Duration::from_secs(10),
    };
    let r = closed_loop(spec, Duration::from_millis(300), 120.0, 30.0).await;
    check_at_least(spec, r, 0.9, 0.01);
}

/// HAProxy's counter of a minute at 10/s under an open loop, held at its
/// rate for a minute: a probe 3 % over it seemed to hold, and filled the
/// window a minute later. It shut for 1.5 s, was drained, took the pace
/// again and refused again; the count since the cut (2.3/s, the shut
/// stretch in it) stepped the estimate there, held for minutes (51 % of
/// the rate from second 100). The estimate settled before the trouble,
/// at its hold, is a floor while the drain is in the count.
#[tokio::test(start_paused = true)]
async fn a_window_of_a_minute_a_probe_filled_is_not_stepped_back_to_its_shut_stretch() {
    let spec = Spec::Haproxy {
        rate: 10.0,
        window: Duration::from_secs(60),
    };
    let r = run_from(
        spec,
        Some(GatePolicy::Adaptive),
        300.0,
        Duration::from_millis(10),
        100.0,
    )
    .await;
    check_at_least(spec, r, 0.9, 0.03);
}

/// A log that counts refusals, trickled into until it reopened: the
/// trickle's refusals held it shut longer than its length, and the cycle
/// read no round length. A log of 60 a minute, filled over 20 s by an
/// open loop, reopened 76 s after the first send and read 0.79/s; one of
/// ten seconds at 10/s, 300 ms away, under a closed loop of 64, read 14.6
/// s and 6.8/s. Each was held for minutes (76 % and 72 % of the rate).
/// The round length under the reading is a ceiling, probed toward at
/// once.
#[tokio::test(start_paused = true)]
async fn a_window_read_long_by_its_trickle_is_probed_toward_the_round_length_under_it() {
    let minute = sliding(1.0).with_window(Duration::from_secs(60));
    let r = run_from(
        minute,
        Some(GatePolicy::Adaptive),
        300.0,
        Duration::from_millis(10),
        100.0,
    )
    .await;
    check_at_least(minute, r, 0.9, 0.01);
    let ten = sliding(10.0).with_window(Duration::from_secs(10));
    let r = closed_loop(ten, Duration::from_millis(300), 120.0, 30.0).await;
    check_at_least(ten, r, 0.9, 0.01);
}

/// Limiters in front of a backend refuse at once and accept a round trip
/// later, so the opening's first refusals came back before anything it
/// accepted, and each freed a permit for the next send at once: a closed
/// loop of 64 sent twelve requests at 3/s in its first millisecond, nine
/// refused. A window that counts refusals held them; HAProxy's counter of
/// a second then read the host at 1/s (64 % of its rate over 30 s, 24 %
/// refused), a sliding log had 20 % refused, a GCRA without a burst 16 %.
#[tokio::test(start_paused = true)]
async fn an_opening_refused_at_once_waits_for_what_it_sent_to_be_answered() {
    for spec in [
        Spec::Haproxy {
            rate: 3.0,
            window: Duration::from_secs(1),
        },
        sliding(3.0),
        gcra(3.0, 1, RetryAfter::Absent),
    ] {
        let r = closed_loop_opening(spec, LATENCY).await;
        check_at_least(spec, r, 0.9, 0.15);
    }
}

#[tokio::test(start_paused = true)]
async fn a_far_slow_window_is_held_at_what_it_accepted_in_its_first_second() {
    // A window of 7 a second that counts refusals, 100 ms away: its first
    // refusal comes back before the acceptances still in flight, and reads
    // 5/s. The search past it was refused in a window still full, and held
    // there (6.3/s) or at that first reading (5/s): 70 % of its rate. Once
    // the search is refused, those acceptances are answered, and what the
    // host accepted in its first second (under eight) is the bound.
    windows_held(&[5.0, 7.0], 100).await;
}

/// Sliding windows of each of `rates` a second that count refusals, `ms`
/// away: each held at its rate for 30 s.
async fn windows_held(rates: &[f64], ms: u64) {
    for &rate in rates {
        let spec = sliding(rate);
        let r = run(spec, Some(GatePolicy::Adaptive), 30.0, Duration::from_millis(ms)).await;
        check(spec, r);
    }
}

#[tokio::test(start_paused = true)]
async fn a_window_200_ms_away_is_read_again_once_its_acceptances_are_in() {
    // 200 ms away, the search's first refusal comes back a round trip
    // before the acceptances sent just before it: the second it read held
    // 2 of a window of 3 a second (held at 65 %) and 9 of 10 (88 %). That
    // second is read again once they are in.
    windows_held(&[3.0, 10.0], 200).await;
}

#[tokio::test(start_paused = true)]
async fn a_far_window_that_counts_refusals_is_read_over_the_second_it_filled_in() {
    // 200 ms away, the concurrency limit's slow start fills a window of 50
    // a second in its second second, and the refusal past it comes back a
    // round trip before the last acceptances. Counted over the last second
    // then (by answer or by send), it read 37: held at 72 % of its rate.
    // The second that ended at the first refusal, read once its answers
    // are in, holds the window's count.
    for (rate, ms) in [(50.0, 200), (200.0, 100)] {
        let spec = sliding(rate);
        let r = run(spec, Some(GatePolicy::Adaptive), 30.0, Duration::from_millis(ms)).await;
        check(spec, r);
    }
}

#[tokio::test(start_paused = true)]
async fn a_window_that_counts_refusals_is_drained_not_probed() {
    holds(sliding(20.0)).await;
    holds(sliding(100.0)).await;
    holds(sliding(500.0)).await;
}

#[tokio::test(start_paused = true)]
async fn a_ten_second_window_that_counts_refusals_does_not_lock_the_client_out() {
    // HAProxy's usual `http_req_rate(10s)`: full, it refuses every request
    // at any pace over its average until it drains, so nothing accepted
    // ever measured it, and the pace stayed where it was: 0 % of the rate,
    // every request refused, for good. And every refusal sent until it
    // drains stays in it for ten seconds: a pace cut to an eighth and
    // halved after 3, 9, 27 s had 16 % of the answers from second 5 to 20
    // refused (79 % at 2 000/s, where two requests still accepted after
    // the cut kept the pace at the whole demand).
    for rate in [20.0, 100.0, 2000.0] {
        let spec = sliding(rate).with_window(Duration::from_secs(10));
        let all = run_from(spec, Some(GatePolicy::Adaptive), 60.0, LATENCY, 5.0).await;
        assert!(
            all.refused <= 0.02,
            "{spec}: {:.2} % refused",
            100.0 * all.refused
        );
        // Drained (the first flood left the window), held at what the
        // cycle accepted: a window's worth over about its length.
        let r = run_from(spec, Some(GatePolicy::Adaptive), 60.0, LATENCY, 30.0).await;
        check_at_least(spec, r, 0.8, 0.01);
        // The window reopened 10.5-11 s after it filled (the refusals
        // sent meanwhile stay counted), and its count over that time read
        // 88-91 % of its rate: windows are round lengths.
        assert!(
            r.goodput >= 0.95,
            "{spec}: {:.1} % of the allowed rate, read as a window of 10 s",
            100.0 * r.goodput
        );
    }
}

#[tokio::test(start_paused = true)]
async fn shorter_windows_that_count_refusals_are_read_as_their_length() {
    // Windows of 2 and 5 s reopen up to a second past their length (the
    // trickle's refusals of the last second stay counted), more than a
    // tenth of it: read as they measured, a window of 2 s held 72 % of
    // 20/s, and one of 5 s 86 % of 100/s. A tenth and a second over a
    // round length is that length.
    for (rate, secs) in [(20.0, 2), (100.0, 2), (100.0, 5)] {
        let spec = sliding(rate).with_window(Duration::from_secs(secs));
        let r = run_from(spec, Some(GatePolicy::Adaptive), 90.0, LATENCY, 30.0).await;
        check(spec, r);
    }
}
