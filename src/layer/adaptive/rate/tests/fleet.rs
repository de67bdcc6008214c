//! A process in a fleet: a seed from the fleet, the fleet's answers, and
//! its probes.

use std::time::Duration;

use tokio::time::Instant;

use super::ms;
use crate::layer::adaptive::rate::probe::PROBE_HOLDS;
use crate::layer::adaptive::rate::{Basis, RateControl, HOLD, PROBE_GROWTH, PROBE_WAIT_CHEAP};

#[tokio::test(start_paused = true)]
async fn a_seed_follows_the_fleet_until_an_own_finding_replaces_it() {
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    // Seeded at the whole rate before the share was known, then at half
    // of it once another process showed up.
    c.seed(t0, 40.0, true);
    assert_eq!(c.estimate(), (40.0, Basis::Measured));
    assert!(!c.estimate_is_own());
    c.seed(t0, 20.0, true);
    assert_eq!(c.estimate(), (20.0, Basis::Measured));
    // Moves under 5 % are noise.
    c.seed(t0, 20.5, true);
    assert_eq!(c.estimate().0, 20.0);
    // A refusal is this process's own finding: no seed replaces it.
    c.on_loss(t0, t0, None);
    assert!(c.estimate_is_own());
    let own = c.estimate().0;
    c.seed(t0, 80.0, true);
    assert_eq!(c.estimate().0, own);
}

#[tokio::test(start_paused = true)]
async fn answers_for_the_fleet_are_counted_per_span_held_bounded_and_taken_once() {
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    c.count_fleet_answer(t0, true);
    c.count_fleet_answer(t0 + Duration::from_millis(10), false);
    c.count_fleet_answer(t0 + Duration::from_millis(150), true);
    // `<span> <accepted> <refused>…`, spans of 100 ms of Unix time.
    let triples = |c: &mut RateControl| -> Vec<(u64, u32, u32)> {
        let text = std::mem::take(c.fleet_answers()).encode();
        let n: Vec<u64> = text
            .split_whitespace()
            .map(|w| w.parse().expect("a number"))
            .collect();
        n.chunks(3).map(|t| (t[0], t[1] as u32, t[2] as u32)).collect()
    };
    let spans = triples(&mut c);
    let sum = spans.iter().fold((0, 0), |(a, r), s| (a + s.1, r + s.2));
    assert_eq!(sum, (2, 1), "{spans:?}");
    assert!(
        spans.windows(2).all(|w| w[0].0 < w[1].0),
        "one entry per span: {spans:?}"
    );
    let (first, last) = (spans[0].0, spans[spans.len() - 1].0);
    assert!(last - first == 1 || last - first == 2, "{spans:?}");
    assert!(triples(&mut c).is_empty(), "taken once");
    // Not handed over (nothing sent): the latest spans are held, not all.
    for i in 0..1000 {
        c.count_fleet_answer(t0 + Duration::from_millis(100 * i), true);
    }
    assert_eq!(triples(&mut c).len(), 64);
}

/// One of four processes' controller, searching from `rate`.
fn searching_quarter(t0: Instant, rate: f64) -> RateControl {
    let mut search = RateControl::new(1.0, t0);
    search.set_share(0.25);
    search.seed(t0, rate, false);
    search
}

#[tokio::test(start_paused = true)]
async fn the_fleets_answers_cut_a_shared_pace_once_per_span_and_never_after_a_pause() {
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    c.force_rate(t0, 196.0);
    // Alone: the fleet's answers are this process's own, nothing to cut.
    c.set_share(1.0);
    c.on_fleet_load(t0, 10_000, 0.8);
    assert_eq!(c.estimate(), (200.0, Basis::Measured));
    // One of four: the paces together ran over what the fleet was
    // accepted in a second, and every process cuts its share.
    c.set_share(0.25);
    c.on_fleet_load(t0, 10_000, 0.8);
    assert_eq!(c.estimate(), (160.0, Basis::Measured));
    assert!((c.rate(t0).expect("paced") - 160.0 * HOLD).abs() < 1e-9);
    // The next reading within two seconds of the fleet's answers still
    // holds paces a lease old: no second cut for it.
    c.on_fleet_load(t0, 11_900, 0.8);
    assert_eq!(c.estimate().0, 160.0);
    c.on_fleet_load(t0, 12_000, 0.5);
    assert_eq!(c.estimate().0, 80.0);
    // A cut is at most a halving, and a factor of 1 or more is none.
    c.on_fleet_load(t0, 14_000, 1.2);
    assert_eq!(c.estimate().0, 80.0);
    c.on_fleet_load(t0, 16_000, 0.1);
    assert_eq!(c.estimate().0, 40.0);
    // A search is not cut: its own refusals stop it.
    let mut search = searching_quarter(t0, 100.0);
    search.on_fleet_load(t0, 10_000, 0.8);
    assert_eq!(search.estimate(), (100.0, Basis::Guess));
    // Within its span of a `Retry-After` pause, a second of the fleet's
    // answers was cut short by it: not a measure.
    let t = t0 + Duration::from_secs(1);
    c.on_send(t);
    c.on_loss(t, t, Some(Duration::from_secs(1)));
    let resumed = t + Duration::from_secs(1);
    c.on_send(resumed);
    let before = c.estimate().0;
    c.on_fleet_load(resumed + Duration::from_secs(3), 30_000, 0.8);
    assert_eq!(c.estimate().0, before);
    c.on_fleet_load(resumed + Duration::from_secs(7), 40_000, 0.8);
    assert!((c.estimate().0 - 0.8 * before).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn a_share_far_under_the_fleets_reading_of_the_limit_starts_from_it() {
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    // Refused at 2/s, its own part of a race.
    c.force_rate(t0, 2.0 * HOLD);
    assert_eq!(c.estimate(), (2.0, Basis::Measured));
    // Alone, its answers are the fleet's: nothing to read.
    c.set_share(1.0);
    c.on_fleet_limit(t0, 10_000, 48.0, f64::INFINITY);
    assert_eq!(c.estimate().0, 2.0);
    // One of four, under its share of what the fleet was accepted at the
    // host's limit: starts from that share, and probes within seconds,
    // not the hour `force_rate` set.
    c.set_share(0.25);
    c.on_fleet_limit(t0, 10_000, 48.0, f64::INFINITY);
    assert_eq!(c.estimate(), (48.0, Basis::Measured));
    assert!((c.rate(t0).expect("paced") - 48.0 * HOLD).abs() < 1e-9);
    assert!(c.probe_after <= t0 + PROBE_WAIT_CHEAP);
    // Not again within two seconds of the fleet's answers (11 s), never
    // down (15 s), and within 80 % of its share it is left to its probes
    // and cuts (13 s).
    for (through_ms, share, estimate) in [
        (11_000, 100.0, 48.0),
        (13_000, 55.0, 48.0),
        (15_000, 10.0, 48.0),
        (17_000, 100.0, 100.0),
    ] {
        c.on_fleet_limit(t0, through_ms, share, f64::INFINITY);
        assert_eq!(
            c.estimate().0,
            estimate,
            "a share of {share} read through {through_ms} ms"
        );
    }
    // A search is not moved: its own refusals stop it.
    let mut search = searching_quarter(t0, 10.0);
    search.on_fleet_limit(t0, 10_000, 48.0, f64::INFINITY);
    assert_eq!(search.estimate(), (10.0, Basis::Guess));
}

#[tokio::test(start_paused = true)]
async fn a_share_raised_toward_the_fleets_limit_goes_no_further_than_the_room_left() {
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    c.force_rate(t0, 35.0 * HOLD);
    c.set_share(0.25);
    // Its share of the fleet's limit is 121/s, but the others' paces and
    // its own leave 42/s of the limit: raised by that, not to its share.
    c.on_fleet_limit(t0, 10_000, 121.0, 42.0);
    let raised = c.estimate().0;
    assert!((raised - (35.0 * HOLD + 42.0)).abs() < 1e-9, "{raised}");
    // No room: not raised at all.
    let mut full = RateControl::new(1.0, t0);
    full.force_rate(t0, 35.0 * HOLD);
    full.set_share(0.25);
    full.on_fleet_limit(t0, 10_000, 121.0, -5.0);
    assert_eq!(full.estimate().0, 35.0);
    // A reading that is no number moves nothing.
    full.on_fleet_limit(t0, 10_000, f64::NAN, 42.0);
    full.on_fleet_limit(t0, 10_000, 121.0, f64::NAN);
    assert_eq!(full.estimate().0, 35.0);
}

#[tokio::test(start_paused = true)]
async fn in_a_fleet_whose_host_pauses_a_probe_that_holds_starts_no_chain() {
    // Alone; in a fleet whose host never paused it (its refusals cost
    // what one process's do); in a fleet paused by `Retry-After`.
    for (share, paused, chain) in [(1.0, false, true), (0.25, false, true), (0.25, true, false)] {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.set_share(share);
        c.force_rate(t0, 98.0);
        if paused {
            c.told_at = Some(t0);
        }
        c.probe_after = t0;
        c.bound_at = Some(t0);
        let probe = c.rate(t0).unwrap();
        assert!(
            (probe - 98.0 * PROBE_GROWTH).abs() < 1e-6,
            "a probe of 3 %: {probe}"
        );
        let t = t0 + PROBE_HOLDS + ms(10);
        c.bound_at = Some(t);
        let held = c.rate(t).unwrap();
        assert!((held - probe).abs() < 1e-6, "the probe held: {held}");
        assert_eq!(c.chained, chain, "share {share}, paused {paused}");
        if chain {
            assert_eq!(c.probe_after, t, "alone, the next probe goes at once");
            assert!(c.probe_step > PROBE_GROWTH, "and twice as far");
        } else {
            assert_eq!(
                c.probe_after,
                t + PROBE_WAIT_CHEAP,
                "in a fleet, after the usual wait"
            );
            assert_eq!(c.probe_step, PROBE_GROWTH, "and no further");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn sends_are_kept_apart_for_a_limiter_without_a_burst_unless_others_send_between() {
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    // nginx without `burst=`: of four sent together, one accepted.
    for _ in 0..3 {
        c.on_loss(t0 + ms(1), t0, None);
    }
    c.on_accepted(t0 + ms(2), t0);
    assert_eq!(c.min_gap(), None, "no rate of its own yet: no interval to keep");
    // Measured at 5 a second since.
    (c.basis, c.estimate, c.pace) = (Basis::Measured, 5.0, 4.9);
    assert_eq!(c.min_gap(), Some(ms(200)), "alone, sends keep one interval apart");
    // Alone in its fleet: its sends are still the only ones.
    c.set_share(1.0);
    assert!(c.min_gap().is_some(), "alone in its fleet");
    // Another process sends to the host: its sends come between.
    c.set_share(0.5);
    assert_eq!(c.min_gap(), None);
}
