//! Tests of `concurrency.rs`, and the knee simulation that checks its
//! rules.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn fresh(t0: Instant) -> Concurrency {
    Concurrency::new(&AdaptiveConfig::default(), t0)
}

/// Sends while a permit is free.
fn fill(c: &mut Concurrency, now: Instant) {
    while c.has_permit() {
        c.on_send(now);
    }
}

#[tokio::test(start_paused = true)]
async fn slow_start_grows_a_quarter_past_what_was_on_time_then_a_loss_cuts() {
    let t0 = Instant::now();
    let mut c = fresh(t0);
    // One round trip at the limit, sent at depths 1 to 4.
    let mut now = t0;
    fill(&mut c, now);
    assert_eq!(c.in_flight(), 4);
    now += ms(10);
    // Each answer is followed by the next request, as in a busy client.
    for depth in 1..=4 {
        c.on_answer(now, now - ms(10), depth);
        c.release();
        fill(&mut c, now);
    }
    assert_eq!(c.limit(), 5, "one past the 4 answered on time");
    // Depth 5 on time too: 5 + 5/4.
    c.on_answer(now + ms(10), now, 5);
    c.release();
    fill(&mut c, now + ms(10));
    assert_eq!(c.limit(), 6);
    // An idle client (nothing in flight) does not grow the limit.
    let mut idle = fresh(t0);
    idle.on_answer(now, now - ms(10), 1);
    assert_eq!(idle.limit(), 4);
    // A loss multiplies the limit by 0.8.
    let later = now + ms(10);
    c.on_loss(later, later - ms(5));
    assert_eq!(c.limit(), 4, "6 × 0.8");
}

#[tokio::test(start_paused = true)]
async fn answers_of_requests_sent_before_a_decrease_do_not_cut_again() {
    let t0 = Instant::now();
    let mut c = fresh(t0);
    c.limit = 100.0;
    let now = t0 + ms(100);
    c.on_loss(now, t0);
    assert_eq!(c.limit(), 80);
    c.on_loss(now + ms(1), t0 + ms(50));
    assert_eq!(c.limit(), 80, "sent before the decrease: same congestion event");
    c.on_loss(now + ms(20), now + ms(10));
    assert_eq!(c.limit(), 64, "sent after it: a new event");
}

#[tokio::test(start_paused = true)]
async fn slow_start_ends_at_the_largest_depth_answered_on_time() {
    let t0 = Instant::now();
    let mut c = fresh(t0);
    let mut now = t0;
    // Keep the limit full; answers on time (5 ms) up to depth 12, so the
    // limit grows to 12 + 12/4.
    let mut depth = 0;
    while c.limit() < 15 {
        fill(&mut c, now);
        now += ms(1);
        depth = (depth % 12) + 1;
        c.on_answer(now, now - ms(5), depth);
        c.release();
    }
    assert!(c.slow_start);
    fill(&mut c, now);
    // The first late answer (20 ms, sent at depth 20) ends it at 12.
    c.on_answer(now + ms(1), now - ms(19), 20);
    assert!(!c.slow_start);
    assert_eq!(c.limit(), 12);
}

#[tokio::test(start_paused = true)]
async fn slow_start_ends_when_its_frontier_is_overdue_not_when_it_answers() {
    let t0 = Instant::now();
    let mut c = fresh(t0);
    // Depths 1–4 answered in 5 ms: the limit may reach 5.
    fill(&mut c, t0);
    let t1 = t0 + ms(5);
    for depth in (1..=4).rev() {
        c.on_answer(t1, t0, depth);
        c.release();
    }
    assert_eq!(c.limit(), 5);
    // Five sent at t1; the fifth (depth 5) is the frontier.
    fill(&mut c, t1);
    assert_eq!(c.in_flight(), 5);
    // 9 ms later (past the threshold: 1.5 × 5 ms, and at least 3 ms over
    // the minimum) it has not answered; another request, sent later,
    // answers on time: slow start ends at depth 4 now.
    c.on_answer(t1 + ms(9), t1 + ms(5), 2);
    assert!(!c.slow_start);
    assert_eq!(c.limit(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_holds_past_a_ceiling_refusals_set_starts_slow_start_again() {
    for refused in [true, false] {
        let t0 = Instant::now();
        let mut c = fresh(t0);
        c.slow_start = false;
        let mut now = t0 + ms(10);
        if refused {
            // A 503 at depth 9 with a limit of 8: a ceiling at 9.
            c.limit = 8.0;
            c.on_depth_loss(now, now, 9);
        } else {
            // A probe to 9 that queued: the same ceiling.
            c.limit = 9.0;
            c.probing = true;
            c.on_queueing(now, 8);
        }
        assert_eq!((c.limit(), c.probe_ceiling), (8, 9.0));
        // Every answer on time from now on: the probe to 9 holds.
        for _ in 0..500 {
            fill(&mut c, now);
            now += ms(10);
            for depth in 1..=c.in_flight() {
                c.on_answer(now, now - ms(10), depth);
                c.release();
            }
        }
        assert_eq!(c.probe_ceiling, f64::MAX, "the probe held");
        assert_eq!(
            c.slow_start, refused,
            "slow start again only where refusals, not queueing, set the ceiling"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn queueing_while_another_limit_binds_does_not_cut_this_one() {
    let t0 = Instant::now();
    let mut c = fresh(t0);
    c.slow_start = false;
    c.limit = 10.0;
    let mut now = t0;
    // One request in flight at a time (the pacer holds the rest), with
    // round trips that go from 5 ms to 40 ms.
    for i in 0..400 {
        c.on_send(now);
        let rtt = if i < 100 { ms(5) } else { ms(40) };
        now += rtt;
        c.on_answer(now, now - rtt, 1);
        c.release();
    }
    assert_eq!(c.limit(), 10, "the limit was never what held requests back");
}

/// What a run against the simulated knee showed.
struct KneeRun {
    /// The limit every 100 ms.
    limits: Vec<usize>,
    /// Share of answers later than 1.5 × the base latency.
    late: f64,
    /// Answers per second.
    throughput: f64,
    /// Times the limit went up after slow start.
    probes: usize,
}

/// A server whose latency is `base` up to `knee` requests in flight
/// and `base + step·(n − knee)` beyond, under unbounded demand.
fn knee_run(seconds: u64) -> KneeRun {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    let (knee, base, step) = (16usize, ms(5), ms(5));
    let t0 = Instant::now();
    let mut c = fresh(t0);
    // (answer time, sent at, depth)
    let mut heap: BinaryHeap<Reverse<(Instant, Instant, usize)>> = BinaryHeap::new();
    let mut now = t0;
    let mut limits = Vec::new();
    let mut next_report = t0;
    let (mut late, mut done, mut probes) = (0u64, 0u64, 0usize);
    let end = t0 + Duration::from_secs(seconds);
    while now < end {
        while c.has_permit() {
            c.on_send(now);
            let depth = c.in_flight();
            let lat = base + step * (heap.len().saturating_sub(knee - 1) as u32);
            heap.push(Reverse((now + lat, now, depth)));
        }
        let Some(Reverse((at, sent, depth))) = heap.pop() else {
            break;
        };
        now = at;
        if now - sent > base * 3 / 2 {
            late += 1;
        }
        done += 1;
        let before = (c.limit(), c.slow_start);
        c.on_answer(now, sent, depth);
        c.release();
        if !before.1 && c.limit() > before.0 {
            probes += 1;
        }
        while now >= next_report {
            limits.push(c.limit());
            next_report += ms(100);
        }
    }
    KneeRun {
        limits,
        late: late as f64 / done.max(1) as f64,
        throughput: done as f64 / seconds as f64,
        probes,
    }
}

#[tokio::test(start_paused = true)]
async fn settles_at_the_knee_and_probes_it_rarely() {
    let run = knee_run(30);
    let settled = &run.limits[10..];
    let mean = settled.iter().sum::<usize>() as f64 / settled.len() as f64;
    assert!(
        (15.0..=16.5).contains(&mean),
        "mean limit {mean}: {:?}",
        run.limits
    );
    // 16 in flight at 5 ms is 3 200/s.
    assert!(run.throughput > 0.92 * 3200.0, "{}/s", run.throughput);
    assert!(run.late < 0.01, "{} of answers late", run.late);
    // Quiet times of 0.5–1.5 s would give some 30 probes in 30 s;
    // failing at the same limit doubles them (up to 8×).
    assert!((2..=12).contains(&run.probes), "{} probes", run.probes);
}
