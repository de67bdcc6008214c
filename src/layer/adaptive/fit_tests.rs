//! Tests of `fit.rs`: they replay cycles simulated against a GCRA through
//! its arithmetic.

use super::*;

/// Send times (seconds, ending at 0) of a cycle paced at `rate(t)`
/// against a GCRA of `r` per second and `burst`, up to its refusal.
fn cycle(r: f64, burst: f64, pace: impl Fn(f64) -> f64) -> Vec<f32> {
    let (mut t, mut excess, mut last) = (0.0f64, 0.0f64, 0.0f64);
    let mut sends = Vec::new();
    loop {
        let e = (excess - (t - last) * r).max(0.0) + 1.0;
        sends.push(t);
        if e > burst + 1.0 {
            break;
        }
        excess = e;
        last = t;
        t += 1.0 / pace(t);
    }
    let end = t;
    sends.into_iter().map(|s| (s - end) as f32).collect()
}

#[test]
fn two_cycles_give_the_rate_whatever_the_burst() {
    for (r, burst) in [(500.0, 50.0), (100.0, 10.0), (20.0, 50.0), (2000.0, 1.0)] {
        // A flood, then a ramp from a tenth of the rate growing 1.25× per 100 ms.
        let flood = cycle(r, burst, |_| 50.0 * r);
        let ramp = cycle(r, burst, |t| 0.1 * r * 1.25f64.powf(t / 0.1));
        let fitted = fit(&flood, &ramp).unwrap_or_else(|| panic!("{r} {burst}: no fit"));
        assert!(
            (fitted - r).abs() <= 0.03 * r,
            "{r}/s burst {burst}: fitted {fitted}"
        );
    }
}

/// `server`'s sends as the client logged them: each left up to `spread`
/// seconds before the server saw it, so the client's log ends at the
/// refused send and leaves out the sends it made after that one, which
/// the server took first.
fn as_sent(server: &[f32], spread: f64, seed: u64) -> Vec<f32> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let sent: Vec<f64> = server
        .iter()
        .map(|&t| f64::from(t) - rng.f64() * spread)
        .collect();
    let end = *sent.last().expect("a refused send");
    let mut log: Vec<f32> = sent
        .iter()
        .filter(|&&t| t <= end)
        .map(|&t| (t - end) as f32)
        .collect();
    log.sort_by(f32::total_cmp);
    log
}

#[test]
fn sends_that_reach_a_fast_host_out_of_order_still_fit() {
    // At 2 000/s, requests released within a timer tick of each other on
    // many connections reach the server in any order: the refused one may
    // be logged under its cycle's peak excess by a request or two. With
    // a slack of one request, 7 of these 40 draws fitted nothing.
    let (r, burst) = (2000.0, 100.0);
    for seed in 0..40 {
        let flood = as_sent(&cycle(r, burst, |_| 10.0 * r), 0.0015, seed);
        let ramp = cycle(r, burst, |t| 0.1 * r * 1.25f64.powf(t / 0.1));
        let ramp = as_sent(&ramp, 0.0015, seed + 100);
        let fitted = fit(&flood, &ramp).unwrap_or_else(|| panic!("seed {seed}: no fit"));
        assert!((fitted - r).abs() <= 0.05 * r, "seed {seed}: fitted {fitted}");
    }
}

#[test]
fn a_cycle_whose_excess_peaks_inside_fits_no_rate_that_low() {
    // Answers of a far server come back in waves, and so go the next
    // requests: 30 at once, then a few spread over 300 ms, the last
    // refused. At 100/s the wave alone leaves an excess of 30, and the
    // end only 4: such a GCRA would have refused inside the wave.
    let mut log: Vec<f32> = vec![-0.3; 30];
    log.extend([-0.2, -0.1, -0.05, 0.0]);
    assert!(!ends_at_its_peak(&log, 100.0));
    // 40 sends spread evenly over 300 ms past a rate of 100/s: the
    // excess grows to the end, as a GCRA's does.
    let spread: Vec<f32> = (0..40).map(|i| -0.3 + 0.3 * i as f32 / 39.0).collect();
    assert!(ends_at_its_peak(&spread, 100.0));
    let flood = cycle(500.0, 50.0, |_| 5000.0);
    assert!(
        ends_at_its_peak(&flood, 500.0),
        "a GCRA's own cycle ends at its peak"
    );
}

#[test]
fn cycles_that_meet_and_run_together_give_the_rate_where_they_meet() {
    // A one-request burst at 2 000/s, its books kept in whole
    // milliseconds as nginx keeps them: a flood of three at once, then
    // a search from 200/s growing 1.25× per 100 ms, refused at the
    // first millisecond that holds one send too many. Past the rate
    // both cycles end at the excess of their last millisecond's sends:
    // the curves meet at the rate and run on together, never crossing.
    let (r, burst) = (2000.0, 1.0);
    let flood: Vec<f32> = vec![0.0; 3];
    let (mut t, mut books, mut last_ms) = (0.0f64, 0.0f64, 0i64);
    let mut sends = Vec::new();
    loop {
        let ms = (t * 1000.0).floor() as i64;
        let e = (books - (ms - last_ms) as f64 * r / 1000.0).max(0.0) + 1.0;
        sends.push(ms);
        if e > burst + 1.0 {
            break;
        }
        (books, last_ms) = (e, ms);
        t += 1.0 / (200.0 * 1.25f64.powf(t / 0.1));
    }
    let end = *sends.last().expect("sends");
    let ramp: Vec<f32> = sends.iter().map(|&s| (s - end) as f32 / 1000.0).collect();
    assert_eq!(
        excess(&flood, 4.0 * r),
        excess(&ramp, 4.0 * r),
        "the curves run together"
    );
    let fitted = fit(&flood, &ramp).expect("a rate where the curves meet");
    assert!((fitted - r).abs() <= 0.03 * r, "fitted {fitted}");
}

#[test]
fn a_flood_that_overshot_its_burst_is_fitted_closer_than_the_crossing() {
    // A flood adds most of a request of excess per send and a search
    // little: refused past the burst by more, the flood's curve
    // crosses the search's below the rate. At 100/s with a burst of
    // one the crossing was 8 % low, at 10/s with five 15 %.
    for (r, burst) in [(100.0, 1.0), (20.0, 10.0), (10.0, 5.0)] {
        let flood = cycle(r, burst, |_| 50.0 * r);
        let ramp = cycle(r, burst, |t| 0.1 * r * 1.25f64.powf(t / 0.1));
        let crossed = crossing(&flood, &ramp).expect("a crossing");
        let fitted = fit(&flood, &ramp).expect("a fit");
        assert!(
            (fitted - r).abs() < 0.9 * (crossed - r).abs(),
            "{r}/s burst {burst}: fitted {fitted}, crossing {crossed}"
        );
    }
}

#[test]
fn a_third_cycle_narrows_the_rates_the_first_two_allow() {
    // 20/s with a burst of one: a flood and a search allow rates some
    // 15 % either side of it; a probe at their top is refused after a
    // few sends, and its curve crosses the search's nowhere near the
    // rate. All three cycles allow only the rates near 20/s.
    let (r, burst) = (20.0, 1.0);
    let flood = cycle(r, burst, |_| 3.0 * r);
    let ramp = cycle(r, burst, |t| 0.1 * r * 1.25f64.powf(t / 0.1));
    let first_two = fit_cycles(std::slice::from_ref(&flood), &ramp, 0.0).expect("two cycles fit");
    let probe = cycle(r, burst, |_| first_two.top);
    let last_two = crossing(&ramp, &probe);
    assert!(
        last_two.is_none_or(|x| (x - r).abs() > 0.1 * r),
        "the last two cycles alone fit {last_two:?}: this test tests nothing"
    );
    let three = fit_cycles(&[flood, ramp], &probe, first_two.rate).expect("three cycles fit");
    assert_eq!(three.cycles, 3);
    assert!(
        three.top - three.rate < 0.5 * (first_two.top - first_two.rate),
        "three cycles {three:?}, two {first_two:?}"
    );
    assert!((three.rate - r).abs() <= 0.02 * r, "{three:?}");
}

#[test]
fn cycles_of_one_shape_tell_nothing() {
    let a = cycle(500.0, 50.0, |_| 5000.0);
    assert_eq!(fit(&a, &a), None);
}

#[test]
fn a_flood_bounds_the_burst_and_rules_out_a_crossing_far_below() {
    // A search, then a pace held at 1.25 times the rate: the curves
    // cross at the rate and again near half of it, where both cycles
    // end at an excess far over the burst. The flood, refused after
    // 51 sends, rules that burst out.
    let (r, burst) = (500.0, 50.0);
    let flood = cycle(r, burst, |_| 40.0 * r);
    let ramp = cycle(r, burst, |t| 0.1 * r * 1.25f64.powf(t / 0.1));
    let held = cycle(r, burst, |_| 1.25 * r);
    let low = crossing(&ramp, &held).expect("a crossing");
    assert!(low < 0.6 * r, "the first crossing is {low}");
    let bound = |rate: f64| 1.5 * (excess(&flood, rate) - 1.0) + 5.0;
    let fitted = fit_cycles_within(std::slice::from_ref(&ramp), &held, 0.0, bound, 1.0).expect("a fit");
    assert!((fitted.rate - r).abs() < 0.01 * r, "fitted {}", fitted.rate);
    // Without a bound, the crossing far below stands.
    let unbounded = fit_cycles(std::slice::from_ref(&ramp), &held, 0.0).expect("a fit");
    assert!(unbounded.rate < 0.6 * r, "fitted {}", unbounded.rate);
}
