//! The tests of `fleet_fit.rs`, and the fleet's cycles they and the rate
//! controller's tests build.

use super::*;

/// A fleet's cycle against a GCRA of `rate` and `burst`: sends at
/// `pace(t)` per second from a full burst until the first refusal; the log
/// (seconds before the end) and the cycle's length.
pub(crate) fn gcra_cycle_log(rate: f64, burst: f64, pace: impl Fn(f64) -> f64) -> (Vec<f32>, f64) {
    let mut log = Vec::new();
    let (mut t, mut tat) = (0.0f64, 0.0f64);
    let (interval, tolerance) = (1.0 / rate, burst / rate);
    loop {
        let at = tat.max(t);
        if at - t > tolerance {
            break;
        }
        tat = at + interval;
        log.push(t);
        t += 1.0 / pace(t);
    }
    let end = t;
    log.push(end);
    (log.iter().map(|&s| (s - end) as f32).collect(), end)
}

/// A merged cycle's `log` without one process of four: a quarter of its
/// sends missing, but the refused one that ended it.
pub(crate) fn without_one_process_of_four(log: &[f32]) -> Vec<f32> {
    log.iter()
        .enumerate()
        .filter(|&(i, _)| i % 4 != 1 || i + 1 == log.len())
        .map(|(_, &t)| t)
        .collect()
}

#[test]
fn two_fleet_cycles_at_different_paces_fit_the_limiter() {
    let mut f = FleetCycles::default();
    let (a, a_len) = gcra_cycle_log(500.0, 50.0, |_| 520.0);
    let (b, _) = gcra_cycle_log(500.0, 50.0, |_| 540.0);
    assert_eq!(f.fit(1_000_000, true, &a, 0.0), None, "one cycle fits nothing");
    let end_b = 1_000_000 + ((a_len + 1.0) * 1e6) as u64;
    let r = f.fit(end_b, true, &b, 520.0).expect("two cycles fit").rate;
    assert!((r - 500.0).abs() < 5.0, "fitted {r}/s");
}

#[test]
fn a_cycle_merged_again_with_a_late_record_is_fitted_in_place_of_the_first_merge() {
    let mut f = FleetCycles::default();
    let (a, a_len) = gcra_cycle_log(500.0, 50.0, |_| 520.0);
    let (b, _) = gcra_cycle_log(500.0, 50.0, |_| 540.0);
    let end_b = 1_000_000 + ((a_len + 1.0) * 1e6) as u64;
    // Merged before one process of four published.
    let without = without_one_process_of_four(&b);
    f.fit(1_000_000, true, &a, 0.0);
    let first = f.fit(end_b, true, &without, 520.0);
    assert!(
        first.is_none_or(|r| (r.rate - 500.0).abs() > 15.0),
        "the merge without a process's sends fits far off: {first:?}"
    );
    assert!(!f.take_back(end_b + 1), "only the latest cycle is taken back");
    assert!(f.take_back(end_b));
    let r = f.fit(end_b, true, &b, 520.0).expect("fitted again").rate;
    assert!((r - 500.0).abs() < 5.0, "fitted again {r}/s");
    assert_eq!(f.previous.len(), 2, "the first merge is gone");
}

#[test]
fn a_cycle_no_gcra_could_end_forgets_the_ones_before() {
    let mut f = FleetCycles::default();
    let (a, _) = gcra_cycle_log(500.0, 50.0, |_| 520.0);
    let (b, _) = gcra_cycle_log(500.0, 50.0, |_| 540.0);
    f.fit(1_000_000, true, &a, 0.0);
    assert_eq!(f.fit(200_000_000, false, &b, 520.0), None);
    assert_eq!(
        f.fit(400_000_000, true, &b, 520.0),
        None,
        "nothing left to fit with"
    );
}

#[test]
fn merged_cycles_that_cross_nowhere_near_the_rate_still_fit_the_rates_they_allow() {
    // A traced fleet's opening (testdata): the flood, the search, and
    // the pace held where the search was refused, merged from four
    // processes' send times. Their curves do not cross near 500/s,
    // but 496-500/s is all that both paced cycles allow.
    let cycles: Vec<(u64, Vec<f32>)> = include_str!("testdata/fleet_opening.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut v = l.split(' ');
            let end = v.next().and_then(|e| e.parse().ok()).expect("an end");
            (end, v.map(|t| t.parse().expect("a send time")).collect())
        })
        .collect();
    let [(flood_end, flood), (search_end, search), (held_end, held)] = &cycles[..] else {
        panic!("three cycles");
    };
    assert_eq!(
        fit_cycles_within(std::slice::from_ref(search), held, 0.0, |_| f64::INFINITY, 1.0),
        None,
        "no crossing fits them"
    );
    // The trace's flood was cut at its refusal (45 sends) where the
    // server took 55; a flood's record now holds what the server took
    // and each process's refused send (see `FloodAnswers`): ten more
    // at its end, and one refused for each of three processes.
    let mut flood = flood.clone();
    flood.extend([0.0; 13]);
    let mut f = FleetCycles::default();
    assert_eq!(f.fit(*flood_end, false, &flood, 0.0), None);
    assert_eq!(f.fit(*search_end, true, search, 0.0), None);
    let r = f.fit(*held_end, true, held, 0.0).expect("a fit").rate;
    assert!((r - 500.0).abs() < 10.0, "fitted {r}/s");
}

#[test]
fn cycles_of_one_shape_allow_too_wide_a_range_to_fit() {
    let (held, _) = gcra_cycle_log(500.0, 50.0, |_| 800.0);
    let bound = |_| 100.0;
    assert_eq!(narrow_consistent(&[&held, &held], bound), None);
    assert_eq!(narrow_consistent(&[&held, &held], |_| f64::INFINITY), None);
    let (other, _) = gcra_cycle_log(500.0, 50.0, |_| 560.0);
    let r = narrow_consistent(&[&held, &other], bound).expect("a fit").rate;
    assert!((r - 500.0).abs() < 10.0, "fitted {r}/s");
}

#[test]
fn the_opening_flood_bounds_the_burst_of_the_cycles_fitted_after_it() {
    // A search, then every process held where it was refused: two
    // cycles that also fit a GCRA near half the rate with three times
    // the burst, which the flood the fleet opened with rules out.
    let (flood, _) = gcra_cycle_log(500.0, 50.0, |_| 20_000.0);
    let (held, _) = gcra_cycle_log(500.0, 50.0, |_| 625.0);
    let (ramp, _) = gcra_cycle_log(500.0, 50.0, |t| 50.0 * 1.25f64.powf(t / 0.1));
    let mut f = FleetCycles::default();
    assert_eq!(
        f.fit(1_000_000, false, &flood, 0.0),
        None,
        "an unpaced flood fits nothing"
    );
    assert_eq!(f.fit(3_000_000, true, &ramp, 0.0), None);
    let r = f
        .fit(4_500_000, true, &held, 0.0)
        .expect("two paced cycles fit")
        .rate;
    assert!((r - 500.0).abs() < 10.0, "fitted {r}/s");
    // The same cycles without the flood fit the crossing far below.
    let mut g = FleetCycles::default();
    g.fit(3_000_000, true, &ramp, 0.0);
    let low = g.fit(4_500_000, true, &held, 0.0).expect("a fit").rate;
    assert!(low < 350.0, "fitted {low}/s");
}
