//! Limiters that ban: once passed, they refuse every request for a while,
//! whatever the pace, and say nothing of how long (fail2ban's `bantime`;
//! HAProxy's documented abuse pattern keeps a client banned until it has
//! kept quiet for the stick table's `expire`, each request renewing the
//! ban). Here a GCRA of 100/s that starts banning after two minutes (an
//! operator turns fail2ban on; the controller has held the rate by then,
//! and its next probe past the rate sets a ban off). Before, the cycle's
//! reading of that ban (the rate averaged with the ban's silence) became
//! the rate, and a ban renewed by each refusal never ended: the trickle's
//! floor sent a request every 9 s into a ban of 10 s, and later rose to
//! 31/s into it.
//!
//! The limiter is `testkit`'s `PenaltyBox` over nginx's GCRA, behind a
//! `service_fn` (the controller is what is tested, over minutes of
//! tokio's paused clock).

mod common;

use std::time::Duration;

use common::*;
use testkit::model::{Gcra, Limiter, PenaltyBox, Phases, RetryAfter};
use tokio::time::Instant;

/// The GCRA's rate, requests a second.
const RATE: f64 = 100.0;

/// When the limiter starts banning.
const BANS_FROM: Duration = Duration::from_secs(120);

/// Runs the closed loop for `secs` against a GCRA of [`RATE`] with a
/// burst of ten that, from [`BANS_FROM`] on, bans every request for `ban`
/// after a refusal (renewed by each refused request when `sticky`).
/// `BANS_TRACE=1` prints what each 30 s took and refused.
async fn second_half(ban: Duration, sticky: bool, secs: u64) -> Half {
    banned_half(PenaltyBox::new(gcra(), ban, sticky), secs).await
}

/// A GCRA of [`RATE`] with a burst of ten, and no `Retry-After`.
fn gcra() -> Box<dyn Limiter> {
    Box::new(Gcra::new(RATE, 10, RetryAfter::Absent, Instant::now()))
}

/// Runs the closed loop for `secs` against [`gcra`], `penalty` from
/// [`BANS_FROM`] on.
async fn banned_half(penalty: PenaltyBox, secs: u64) -> Half {
    let now = Instant::now();
    let mut limiter = Phases::new(
        now,
        vec![(Duration::ZERO, gcra()), (BANS_FROM, Box::new(penalty))],
    );
    let trace = std::env::var_os("BANS_TRACE").is_some();
    adaptive_second_half(
        move |at| limiter.arrive(at).status,
        secs,
        "http://banning.test/",
        trace,
    )
    .await
}

/// Runs the closed loop for 600 s against [`gcra`] behind a ban of 10 s
/// from the first request (renewed by each refused request when
/// `sticky`).
async fn banned_from_the_opening(sticky: bool) -> Half {
    let mut limiter = PenaltyBox::new(gcra(), Duration::from_secs(10), sticky);
    adaptive_second_half(
        move |at| limiter.arrive(at).status,
        600,
        "http://banning.test/",
        std::env::var_os("BANS_TRACE").is_some(),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn a_ban_a_probe_sets_off_returns_to_the_rate_held_before_it() {
    // Each probe past the rate costs a ban of 10 s, after which the host
    // is sent to at the rate it held before, and probes come more rarely.
    let half = second_half(Duration::from_secs(10), false, 600).await;
    half.assert_held("a ban of 10 s", RATE, 0.7, 0.02);
}

#[tokio::test(start_paused = true)]
async fn a_ban_each_refusal_renews_ends() {
    // Renewed by every refused request: only a gap of 10 s ends it. The
    // trickle halves down to `min_rate` once nothing accepted is longer
    // than any window of a minute explains, and trickles there at once
    // the next time.
    let half = second_half(Duration::from_secs(10), true, 900).await;
    half.assert_held("a ban of 10 s renewed by each refusal", RATE, 0.3, 0.02);
}

#[tokio::test(start_paused = true)]
async fn a_ban_the_openings_flood_sets_off_ends_and_the_rate_is_searched_again() {
    // Banning from the first request: the opening's flood sets the ban
    // off, and each refusal renews it. Once the trickle ends it, the cycle
    // reads the opening's few acceptances over minutes; held, that was a
    // send in 18 s for good (0.2/s of 100/s, nothing refused). Nothing
    // accepted for longer than any window explains: the rate is searched
    // again, and the ban that search sets off returns to half its pace.
    let half = banned_from_the_opening(true).await;
    half.assert_held(
        "a ban of 10 s from the opening, renewed by each refusal",
        RATE,
        0.5,
        0.02,
    );
}

#[tokio::test(start_paused = true)]
async fn a_ban_the_openings_flood_sets_off_once_is_read_then_tested() {
    // fail2ban's kind: the opening's flood sets off a ban of 10 s, which
    // ends whatever is sent. The cycle reads the opening's few acceptances
    // over the ban's length, a window of 10 s; held as one, probed 3 % at
    // a time after hundreds of answers, that kept the GCRA of 100/s at
    // 2-6/s for minutes. Ten windows on, the reading is tested at twice
    // its pace, which holds, and probes chain up from there.
    let half = banned_from_the_opening(false).await;
    half.assert_held("a ban of 10 s from the opening", RATE, 0.4, 0.02);
}

#[tokio::test(start_paused = true)]
async fn a_ban_answered_with_bare_403s_each_request_renews_ends() {
    // Apache's `mod_evasive` and the rate rules of web application
    // firewalls refuse with a bare 403 and renew the block with each
    // request. A 403 is a refusal of one request, not of the rate, until
    // a host answers nothing else: a run of them without an acceptance
    // is then read as refusals, and the ban ends as the 429s' does.
    // Read as neutral answers, the closed loop sent on into the block at
    // the concurrency limit's pace and renewed it for ever: nothing
    // accepted in the second half.
    let ban = Duration::from_secs(10);
    let half = banned_half(PenaltyBox::new(gcra(), ban, true).forbidding(), 900).await;
    half.assert_held(
        "a ban of 10 s in bare 403s renewed by each request",
        RATE,
        0.3,
        0.02,
    );
}
