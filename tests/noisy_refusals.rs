//! Servers that refuse a small share of requests whatever the rate: one
//! bad backend among fifty behind a balancer (a 503 in fifty), a limiter
//! other clients fill, a bot check (a 429 in fifty). Slowing down removes
//! none of those refusals; a client that reads each one as its rate's
//! limit slows down for ever. Before, 2 % of answers refused took a host
//! that served 3 200/s to 21/s within two minutes, and a GCRA of 500/s
//! with the same noise to 50/s.
//!
//! The inner service is a `service_fn` (the controller is what is tested,
//! at thousands of requests a second of paused time); time is tokio's
//! paused clock.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::Instant;

/// One request in this many is refused, whatever the rate.
const NOISE_EVERY: u64 = 50;

/// A limit on top of the noise: a GCRA of `rate` a second with a burst of
/// `burst` requests, as nginx's `limit_req` keeps it.
#[derive(Clone, Copy)]
struct Gcra {
    rate: f64,
    burst: f64,
}

/// Whether a limit serves a request arriving at an instant.
type Limit = Box<dyn FnMut(Instant) -> bool + Send>;

impl Gcra {
    fn limit(self) -> Limit {
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        let mut tat = Instant::now();
        Box::new(move |now| {
            let next = tat.max(now);
            let fits = next.saturating_duration_since(now) <= interval.mul_f64(self.burst);
            if fits {
                tat = next + interval;
            }
            fits
        })
    }
}

/// A limit on top of the noise from `testkit`'s models.
fn model(mut limiter: Box<dyn testkit::Limiter>) -> Limit {
    Box::new(move |now| limiter.arrive(now).served())
}

/// Runs the closed loop for `secs` seconds against a server that refuses
/// every [`NOISE_EVERY`]th request with `status` and, with `limit`, every
/// request over it; returns the rate accepted over the last half, and the
/// share of that half's requests refused.
async fn accepted_rate(status: u16, limit: Option<Limit>, secs: u64) -> (f64, f64) {
    accepted_rate_refusing(NOISE_EVERY, status, limit, secs).await
}

/// [`accepted_rate`], one request in `every` refused.
async fn accepted_rate_refusing(every: u64, status: u16, mut limit: Option<Limit>, secs: u64) -> (f64, f64) {
    let status = http::StatusCode::from_u16(status).expect("a status");
    let mut n = 0u64;
    let decide = move |at| {
        n += 1;
        let within = limit.as_mut().is_none_or(|l| l(at));
        if within && !n.is_multiple_of(every) {
            http::StatusCode::OK
        } else {
            status
        }
    };
    let half = adaptive_second_half(decide, secs, "http://noisy.test/", false).await;
    (half.rate, half.refused)
}

/// What the loop gets from a server that refuses nothing: its workers'
/// round trips, 3 200/s.
const CLOSED_LOOP: f64 = LOOP_WORKERS as f64 / 0.010;

#[tokio::test(start_paused = true)]
async fn a_429_in_fifty_whatever_the_rate_does_not_slow_the_host_down() {
    let (rate, _) = accepted_rate(429, None, 60).await;
    eprintln!("a 429 in fifty: {rate:.0}/s of {CLOSED_LOOP:.0}/s");
    assert!(rate >= 0.8 * CLOSED_LOOP, "{rate:.0}/s of {CLOSED_LOOP:.0}/s");
}

#[tokio::test(start_paused = true)]
async fn a_503_in_fifty_whatever_the_rate_does_not_slow_the_host_down() {
    let (rate, _) = accepted_rate(503, None, 60).await;
    eprintln!("a 503 in fifty: {rate:.0}/s of {CLOSED_LOOP:.0}/s");
    assert!(rate >= 0.8 * CLOSED_LOOP, "{rate:.0}/s of {CLOSED_LOOP:.0}/s");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_under_the_noise_still_holds_the_pace() {
    // 500/s with a burst of ten, and a refusal in fifty besides: the pace
    // comes back near the limit (the first refusal, noise, came at 47/s
    // while the opening grew, and the noise is told apart after a
    // decline), and stays there, neither down with the noise nor past
    // the limit (whose refusals the noise must not hide). Counted over
    // the second minute.
    let limit = Gcra {
        rate: 500.0,
        burst: 10.0,
    };
    let (rate, refused) = accepted_rate(429, Some(limit.limit()), 120).await;
    held_near_the_limit("a GCRA", rate, refused, limit.rate);
}

/// A host `what`, limited to `limit` a second under the noise, accepted
/// `rate` a second with a `refused` share: at least three quarters of what
/// the limit and the noise leave, at most 5 % refused.
fn held_near_the_limit(what: &str, rate: f64, refused: f64, limit: f64) {
    let most = limit * (1.0 - 1.0 / NOISE_EVERY as f64);
    eprintln!(
        "{what} under the noise: {rate:.0}/s of {most:.0}/s, {:.2} % refused",
        100.0 * refused
    );
    assert!(rate >= 0.75 * most, "{rate:.0}/s of {most:.0}/s");
    assert!(refused <= 0.05, "{:.1} % refused", 100.0 * refused);
}

#[tokio::test(start_paused = true)]
async fn a_window_that_counts_refusals_under_the_noise_is_held_near_its_rate() {
    // A sliding log of 100 a second that counts refused requests too (a
    // Redis sliding log, HAProxy's rate taken as exact), and a refusal in
    // fifty besides. Each noise refusal stepped the pace back 3-5 %, so
    // the decline left the band of its top after three refusals, where
    // its judge waited for four: never judged, the pace fell to a fifth
    // of the rate within a minute.
    let rate = 100;
    let window = testkit::model::SlidingWindow::new(rate, Duration::from_secs(1));
    let (got, refused) = accepted_rate(429, Some(model(Box::new(window))), 60).await;
    held_near_the_limit("a sliding log", got, refused, rate as f64);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_in_five_whatever_the_rate_does_not_stall_the_host() {
    // A fifth of the requests refused at random (a flaky backend behind
    // a balancer): each refusal read four acceptances as the rate and cut
    // the pace a seventh, and the reference the cuts are judged by moved
    // down with them two cuts at a time, never far enough behind for the
    // refusals to be seen ignoring the pace: 2/s of 3 200/s.
    let most = 0.8 * CLOSED_LOOP;
    let mut rates = Vec::new();
    for status in [429, 503] {
        let (rate, refused) = accepted_rate_refusing(5, status, None, 60).await;
        eprintln!(
            "a {status} in five: {rate:.0}/s of {most:.0}/s, {:.1} % refused",
            100.0 * refused
        );
        rates.push(rate);
    }
    for rate in rates {
        assert!(rate >= 0.5 * most, "{rate:.0}/s of {most:.0}/s");
    }
}

#[tokio::test(start_paused = true)]
async fn two_refusals_in_three_whatever_the_rate_leave_the_host_unpaced() {
    // Past 60 % refused whatever the rate, the refusals are ignored for a
    // while and the concurrency limit alone holds the host; that verdict
    // now waits for a second deep cut to leave the share as large (a
    // limiter sent far past its rate refuses nearly as large a share
    // after one cut). It still comes: held as a limit, the pace fell with
    // each cut, to a few a second.
    let mut n = 0u64;
    let decide = move |_at| {
        n += 1;
        if n.is_multiple_of(3) {
            http::StatusCode::OK
        } else {
            http::StatusCode::TOO_MANY_REQUESTS
        }
    };
    let half = adaptive_second_half(decide, 60, "http://noisy.test/", false).await;
    let most = CLOSED_LOOP / 3.0;
    eprintln!("two in three refused: {:.0}/s of {most:.0}/s", half.rate);
    assert!(half.rate >= 0.5 * most, "{:.0}/s of {most:.0}/s", half.rate);
}
