//! Hosts slower than a request a second: rates per minute, read over
//! streaks of pauses, and windows that a trickle must let drain.

use std::time::Duration;

use testkit::model::SlidingWindow;
use testkit::Limiter;
use tokio::time::Instant;

use super::Gcra;
use crate::layer::adaptive::rate::RateControl;

/// The lowest pace of these tests, as `AdaptiveConfig::min_rate`'s default.
const MIN_RATE: f64 = 0.01;

/// What a run of `secs` sent and the server refused: all of it, and from
/// `steady` seconds on.
#[derive(Debug, Default)]
struct Tally {
    accepted: u32,
    refused: u32,
    refused_steady: u32,
}

/// Sends at the controller's pace (50/s while it has none) for `secs`
/// to `accepts`, pausing `Retry-After` seconds after a refusal if `told`
/// names it, and counts the answers.
fn run(
    c: &mut RateControl,
    t0: Instant,
    secs: f64,
    steady: f64,
    told: Option<Duration>,
    accepts: impl FnMut(Instant) -> bool,
) -> Tally {
    run_open(c, t0, secs, steady, told, None, accepts)
}

/// [`run`], but with `demand` requests a second to send, if set: an open
/// loop, which the pace holds back only where it is slower.
fn run_open(
    c: &mut RateControl,
    t0: Instant,
    secs: f64,
    steady: f64,
    told: Option<Duration>,
    demand: Option<f64>,
    mut accepts: impl FnMut(Instant) -> bool,
) -> Tally {
    let (mut now, mut tally) = (t0, Tally::default());
    let end = t0 + Duration::from_secs_f64(secs);
    while now < end {
        if demand.is_none() {
            c.bound_at = Some(now);
        }
        let pace = match (c.rate(now), demand) {
            (pace, None) => pace.unwrap_or(50.0),
            (Some(p), Some(d)) if p < d => {
                c.bound_at = Some(now);
                p
            }
            (_, Some(d)) => d,
        };
        c.on_send(now);
        let answered = now + Duration::from_millis(1);
        let mut next = now + Duration::from_secs_f64(1.0 / pace);
        if accepts(now) {
            tally.accepted += 1;
            c.on_accepted(answered, now);
        } else {
            tally.refused += 1;
            if now.saturating_duration_since(t0).as_secs_f64() >= steady {
                tally.refused_steady += 1;
            }
            c.on_loss(answered, now, told);
            if let Some(pause) = told {
                next = next.max(answered + pause);
            }
        }
        now = next;
    }
    tally
}

#[tokio::test(start_paused = true)]
async fn a_gcra_under_one_a_pause_is_read_over_the_streak_of_its_pauses() {
    // nginx `rate=12r/m burst=10` answering `Retry-After: 1`: each pause
    // restores a fifth of a request, so each cycle after it is a refusal
    // or one acceptance and a refusal. Read cycle by cycle, the pace
    // stayed at the opening's 51/s and four sends in five were refused.
    let t0 = Instant::now();
    let mut c = RateControl::new(MIN_RATE, t0);
    let mut gcra = Gcra::new(0.2, 10.0, t0);
    let tally = run(&mut c, t0, 300.0, 60.0, Some(Duration::from_secs(1)), |t| {
        gcra.accepts(t)
    });
    let (estimate, _) = c.estimate();
    assert!(
        (0.15..=0.25).contains(&estimate),
        "estimate {estimate}/s against 0.2/s"
    );
    assert!(
        tally.refused_steady <= 3,
        "{} refused after the first minute ({tally:?})",
        tally.refused_steady
    );
    assert!(tally.accepted >= 65, "{tally:?}");
}

#[tokio::test(start_paused = true)]
async fn a_pause_that_refills_a_bucket_without_burst_is_not_read_as_a_rate() {
    // nginx without `burst=` at 3/s and `Retry-After: 1`: each pause
    // refills the bucket's one request, and what it took in more time
    // is lost, so the cycles' count (one a pause) is no bound on the
    // rate: read as one, it held the host at a third of its rate.
    let t0 = Instant::now();
    let mut c = RateControl::new(MIN_RATE, t0);
    let mut gcra = Gcra::new(3.0, 0.0, t0);
    run(&mut c, t0, 60.0, 60.0, Some(Duration::from_secs(1)), |t| {
        gcra.accepts(t)
    });
    let (estimate, _) = c.estimate();
    assert!(estimate >= 2.0, "estimate {estimate}/s against 3/s");
}

#[tokio::test(start_paused = true)]
async fn a_window_under_a_request_a_second_drains_under_the_trickle() {
    // 30 a minute, refusals counted: a trickle of a request a second
    // keeps sixty in the log and the window never reopens (the pace was
    // held at a send a second at the least).
    let t0 = Instant::now();
    let mut c = RateControl::new(MIN_RATE, t0);
    let mut log = SlidingWindow::new(30, Duration::from_secs(60));
    let tally = run(&mut c, t0, 400.0, 150.0, None, |t| log.arrive(t).served());
    assert!(
        tally.accepted >= 160,
        "{} accepted in 400 s of 0.5/s ({tally:?})",
        tally.accepted
    );
    // A probe past 30 a minute is refused some 64 s later, and the
    // window it overfilled refuses the hold's sends until eight refusals
    // starve the pace: some ten refusals a probe, and one probe here.
    assert!(tally.refused_steady <= 12, "{tally:?}");
}

#[tokio::test(start_paused = true)]
async fn a_host_that_refuses_everything_after_its_pauses_is_no_rate_per_minute() {
    // `Retry-After: 1` on every request, none ever accepted after the
    // opening: a server down, or refusing whatever the pace, not a rate.
    // Counted as a rate per minute, the streak's one request over its
    // length drove the pace to `min_rate`, a send every 100 s, long after
    // the server came back.
    let t0 = Instant::now();
    let mut c = RateControl::new(MIN_RATE, t0);
    let mut sent = 0;
    run(&mut c, t0, 120.0, 0.0, Some(Duration::from_secs(1)), |_| {
        sent += 1;
        sent <= 10
    });
    let pace = c.rate(t0 + Duration::from_secs(120)).unwrap_or(f64::INFINITY);
    assert!(pace >= 0.5, "paced at {pace}/s");
}

#[tokio::test(start_paused = true)]
async fn a_host_that_stops_taking_any_does_not_drag_its_rate_down_with_it() {
    // nginx at 12 a minute, `Retry-After: 1`, then down for five minutes
    // (every request refused, `Retry-After: 1` still): the streak's count
    // over its length would go on falling with the outage, to `min_rate`.
    let t0 = Instant::now();
    let mut c = RateControl::new(MIN_RATE, t0);
    let mut gcra = Gcra::new(0.2, 10.0, t0);
    let down = t0 + Duration::from_secs(120);
    run(&mut c, t0, 420.0, 0.0, Some(Duration::from_secs(1)), |t| {
        t < down && gcra.accepts(t)
    });
    let (estimate, _) = c.estimate();
    assert!(
        estimate >= 0.1,
        "estimate {estimate}/s after the outage, against 0.2/s before"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_open_loop_never_paced_starves_into_a_window_of_a_minute() {
    // A scheduler sends 0.6 requests a second into a log of 12 a minute
    // that counts refusals. Each refusal comes alone, 1.7 s after the
    // last: no rule that reads a second ever paced the host, and every
    // request after the first twelve was refused for good.
    let t0 = Instant::now();
    let mut c = RateControl::new(MIN_RATE, t0);
    let mut log = SlidingWindow::new(12, Duration::from_secs(60));
    let tally = run_open(&mut c, t0, 400.0, 150.0, None, Some(0.6), |t| {
        log.arrive(t).served()
    });
    assert!(c.rate(t0 + Duration::from_secs(400)).is_some(), "paced");
    assert!(
        tally.accepted >= 50,
        "{} accepted in 400 s of 0.2/s ({tally:?})",
        tally.accepted
    );
    assert!(tally.refused_steady <= 12, "{tally:?}");
}
