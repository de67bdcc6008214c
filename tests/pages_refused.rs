//! Pages a server refuses on their own merits (missing, forbidden) among
//! those it serves: they pass its rate limiter like any other, and must
//! neither read as refusals for rate nor be left out of what the host
//! takes. A GCRA of `RATE` behind a `service_fn`, the closed loop of 64,
//! tokio's paused clock; counted over the second minute.

mod common;

use common::*;
use http::StatusCode;
use testkit::model::{Gcra, Limiter, RetryAfter};
use tokio::time::Instant;

/// Runs the closed loop for two minutes against a GCRA of `rate` with a
/// burst of ten that answers every `every`-th request it serves with
/// `refused` (a page refused on its merits) and the others with a 200,
/// or (`most`) every `every`-th with a 200 and the others with `refused`.
/// Returns what the GCRA served a second over the second minute, refused
/// pages included.
async fn served_with(rate: f64, every: u64, refused: StatusCode, most: bool) -> f64 {
    let mut limiter = Gcra::new(rate, 10, RetryAfter::Absent, Instant::now());
    let mut served = 0u64;
    let half = adaptive_second_half(
        move |at| {
            let status = limiter.arrive(at).status;
            if !status.is_success() {
                return status;
            }
            served += 1;
            if served.is_multiple_of(every) != most {
                refused
            } else {
                StatusCode::OK
            }
        },
        120,
        "http://pages.test/",
        false,
    )
    .await;
    // `Half` counts 2xx as taken: the rest of what the GCRA served.
    let ok_share = if most {
        1.0 / every as f64
    } else {
        1.0 - 1.0 / every as f64
    };
    half.rate / ok_share
}

#[tokio::test(start_paused = true)]
async fn forbidden_pages_among_a_gcras_acceptances_keep_its_rate() {
    // Every third page a bare 403: no run of eight, no refusal read, the
    // GCRA's rate held (see `layer/forbidden.rs`).
    let rate = 100.0;
    let served = served_with(rate, 3, StatusCode::FORBIDDEN, false).await;
    eprintln!("a third of the pages forbidden: {served:.1}/s served of {rate}/s");
    assert!(served >= 0.95 * rate, "{served:.1}/s");
}

#[tokio::test(start_paused = true)]
async fn most_pages_forbidden_keep_a_gcras_rate_once_a_trial_finds_them_pages() {
    // Two pages in three a bare 403: a trial of the pace finds them pages
    // (their share does not fall with the pace), and from then on they
    // count as served, as missing pages do. Counted as nothing, the pace
    // was read from the 200s alone: 45 % of the GCRA's rate.
    let rate = 100.0;
    let served = served_with(rate, 3, StatusCode::FORBIDDEN, true).await;
    eprintln!("two pages in three forbidden: {served:.1}/s served of {rate}/s");
    assert!(served >= 0.95 * rate, "{served:.1}/s");
}

#[tokio::test(start_paused = true)]
async fn missing_pages_count_as_served_for_the_hosts_rate() {
    // Every other page a 404: served at the limiter as the others are.
    // Counted as nothing (as a 5xx still is), the pace was read from the
    // 200s alone: two thirds of a GCRA of 10/s.
    let rate = 10.0;
    let served = served_with(rate, 2, StatusCode::NOT_FOUND, false).await;
    eprintln!("half the pages missing: {served:.1}/s served of {rate}/s");
    assert!(served >= 0.95 * rate, "{served:.1}/s");
}

/// The closed loop for two minutes against a GCRA of `rate` with
/// `burst` that refuses with a bare 403 (nginx with `limit_req_status
/// 403;`); what the second minute saw.
async fn forbidding_for_rate(rate: f64, burst: u32) -> Half {
    let mut limiter = Gcra::new(rate, burst, RetryAfter::Absent, Instant::now());
    adaptive_second_half(
        move |at| {
            let status = limiter.arrive(at).status;
            if status == StatusCode::TOO_MANY_REQUESTS {
                StatusCode::FORBIDDEN
            } else {
                status
            }
        },
        120,
        "http://forbidding-for-rate.test/",
        false,
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn a_gcra_refusing_with_bare_403s_is_paced_at_its_rate() {
    // No run of 403s is long (one request per interval is accepted), so
    // only a trial of the pace tells its 403s from forbidden pages (see
    // `layer/forbidden_trial.rs`). Unpaced, the closed loop had 98 % of
    // its sends refused.
    let rate = 10.0;
    let half = forbidding_for_rate(rate, 10).await;
    half.assert_held("a GCRA answering 403", rate, 0.9, 0.02);
}

#[tokio::test(start_paused = true)]
async fn a_gcra_refusing_with_bare_403s_past_a_long_burst_is_paced_at_its_rate() {
    // The opening's run of 403s, after a burst of 50 at 3/s, read as a
    // block's, measured the host at its burst (51/s); the trial was for
    // hosts no refusal had measured, and 95 % of the sends were refused
    // there for good. Tried too, its 403s fall at half the second's count.
    let rate = 3.0;
    let half = forbidding_for_rate(rate, 50).await;
    half.assert_held("a GCRA answering 403 past a burst of 50", rate, 0.9, 0.02);
}
