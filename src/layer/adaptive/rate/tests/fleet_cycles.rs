//! A process's part in a fleet's cycles: the fleet's pauses end its own,
//! its floods and searches, and the merged cycles' fits.
//!
//! Over 400 lines: one scenario a test, each building the merged cycles
//! it needs.

use std::time::Duration;

use tokio::time::Instant;

use super::{gcra_cycle, ms};
use crate::layer::adaptive::fit::Fit;
use crate::layer::adaptive::fleet_fit::{FleetCycle, FLOOD_SETTLE};
use crate::layer::adaptive::rate::fleet::{probed_at_top, OPENING_PROBE};
use crate::layer::adaptive::rate::{Basis, RateControl, HOLD, PROBE_GROWTH};

/// A fleet's merged cycle that may miss a process's sends.
fn merged(seq: u64, end_us: u64, log: &[f32]) -> FleetCycle {
    FleetCycle {
        seq,
        end_us,
        fits: true,
        processes: 4,
        complete: false,
        replaces: false,
        log: log.into(),
    }
}

#[tokio::test(start_paused = true)]
async fn fleet_pauses_end_cycles_that_fit_this_process_share() {
    // Four processes against a GCRA of 400/s with a burst of 40; this
    // one sends a quarter of the fleet's requests. At 150/s each (600/s
    // together) the burst is spent in 0.2 s, at 125/s in 0.4 s, and
    // another process's refusal pauses the host each time.
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    c.force_rate(t0, 150.0);
    c.on_fleet_pause(t0);
    let mut t = t0 + Duration::from_secs(1);
    for (pace, sends) in [(150.0, 30u32), (125.0, 50)] {
        for i in 0..sends {
            c.on_send(t + Duration::from_secs_f64(f64::from(i) / pace));
        }
        let end = t + Duration::from_secs_f64(f64::from(sends) / pace);
        c.on_fleet_pause(end);
        t = end + Duration::from_secs(1);
    }
    let (estimate, basis) = c.estimate();
    assert_eq!(basis, Basis::Measured);
    assert!(
        (estimate - 100.0).abs() <= 5.0,
        "fitted {estimate}/s, the share is 100/s"
    );
}

#[tokio::test(start_paused = true)]
async fn in_a_fleet_a_search_grows_only_while_its_sends_keep_up() {
    // A search paced at 100/s whose pace binds every 100 ms: alone, a
    // pace that holds requests back, and it grows 1.25× a step. In a
    // fleet, requests released together by leased slots bind it as
    // well: sending one request a step, it stays; sending twelve (at
    // its pace), it grows until its sends no longer keep up.
    for (share, per_step, low, high) in [
        (1.0, 1, 900.0, 1000.0),
        (0.25, 1, 99.0, 101.0),
        (0.25, 12, 190.0, 260.0),
    ] {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.set_share(share);
        c.seed(t0, 100.0, false);
        let mut t = t0;
        for _ in 0..10 {
            for i in 0..per_step {
                c.on_send(t + ms(8 * i));
            }
            c.bound_at = Some(t);
            t += ms(100);
            c.rate(t);
        }
        let pace = c.rate(t).expect("paced");
        assert!(
            (low..=high).contains(&pace),
            "share {share}, {per_step} a step: pace {pace}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn in_a_fleet_the_flood_hands_on_what_the_server_took_once_answered() {
    // Ten requests a millisecond apart: three accepted, then the sixth
    // refused, its answer back after the tenth was sent. The record waits
    // for the six still in flight: the server may have taken them before
    // the refused one, or refused them too. Two are refused: the fleet
    // gets eight sends, the two after the refused one that were taken
    // among them, and the flood's count bounds the burst.
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    c.set_share(0.25);
    let ms = |k: u64| t0 + Duration::from_millis(k);
    for k in 0..10 {
        c.on_send(ms(k));
    }
    for k in 0..3 {
        c.on_accepted(ms(8), ms(k));
        c.on_fleet_flood_answer(false);
    }
    let pause = Some(Duration::from_secs(1));
    c.on_loss(ms(10), ms(5), pause);
    c.on_fleet_flood_answer(true);
    assert_eq!(c.take_finished_cycle(ms(10)), None, "six answers to come");
    for k in [3, 4, 6, 7, 8, 9] {
        let refused = k == 4 || k == 8;
        if refused {
            c.on_loss(ms(11), ms(k), pause);
        } else {
            c.on_accepted(ms(11), ms(k));
        }
        c.on_fleet_flood_answer(refused);
    }
    let flood = c.take_finished_cycle(ms(11)).expect("a flood");
    assert!(!flood.fits);
    assert_eq!(flood.log.len(), 8, "{:?}", flood.log);
    assert_eq!(flood.log.iter().filter(|&&t| t > 0.0).count(), 2);
    let resumed = ms(1_100);
    c.force_rate(resumed, 100.0);
    for k in 0..10 {
        c.on_send(resumed + Duration::from_millis(10 * k));
    }
    c.on_loss(
        resumed + Duration::from_millis(100),
        resumed + Duration::from_millis(50),
        pause,
    );
    c.on_fleet_flood_answer(true);
    let paced = c
        .take_finished_cycle(resumed + Duration::from_millis(100))
        .expect("a paced cycle, at once");
    assert_eq!(paced.log.len(), 6, "{:?}", paced.log);
}

#[tokio::test(start_paused = true)]
async fn a_flood_whose_answers_never_come_is_handed_on_all_the_same() {
    // Answers lost (requests dropped unreported): after a quarter of a
    // second the record goes with every send, the unanswered counted as
    // taken.
    let t0 = Instant::now();
    let mut c = RateControl::new(1.0, t0);
    c.set_share(0.25);
    for k in 0..10 {
        c.on_send(t0 + Duration::from_millis(k));
    }
    let end = t0 + Duration::from_millis(5);
    c.on_loss(t0 + Duration::from_millis(10), end, Some(Duration::from_secs(1)));
    c.on_fleet_flood_answer(true);
    assert_eq!(c.take_finished_cycle(end + Duration::from_millis(200)), None);
    let flood = c
        .take_finished_cycle(end + FLOOD_SETTLE)
        .expect("handed on after the wait");
    assert_eq!(flood.log.len(), 10);
}

#[tokio::test(start_paused = true)]
async fn in_a_fleet_the_opening_flood_is_fitted_with_nothing() {
    // A flood, then a search, against a GCRA of 500/s with a burst of
    // 50. Alone, the two cycles fit the rate. In a fleet this
    // process's part of the flood is whatever its requests raced to:
    // the search alone fits nothing and the pace holds where it was
    // refused, past the rate, so that the fleet's next cycle comes
    // soon and the fleet fits the two merged.
    let (r, burst) = (500.0, 50.0);
    for (share, fitted) in [(1.0, true), (0.25, false)] {
        let t0 = Instant::now();
        let mut c = RateControl::new(1.0, t0);
        c.set_share(share);
        let end = gcra_cycle(&mut c, t0, r, burst, 20.0 * r);
        gcra_cycle(&mut c, end + Duration::from_secs(1), r, burst, 20.0 * r);
        let (estimate, basis) = c.estimate();
        assert_eq!(basis, Basis::Measured);
        if fitted {
            assert!((estimate - r).abs() <= 0.03 * r, "alone: fitted {estimate}/s");
        } else {
            assert!(estimate > 1.05 * r, "in a fleet: held at {estimate}/s");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn in_a_fleet_opening_cycles_that_fit_nothing_are_probed_past_at_once() {
    // Each process paces what it fitted of its own share when the
    // fleet's cycles fit nothing; a sum under the rate would hold
    // until the next probe. The fleet probes at once instead, twice
    // at most, and never once a fleet fit set the pace.
    use crate::layer::adaptive::fleet_fit::tests::gcra_cycle_log;
    let t0 = Instant::now();
    let probing = |c: &RateControl| c.probe_after <= t0 && c.probe_step == OPENING_PROBE;
    let reset = |c: &mut RateControl| {
        c.probe_after = t0 + Duration::from_secs(3600);
        c.probe_step = PROBE_GROWTH;
    };
    let (held, _) = gcra_cycle_log(500.0, 50.0, |_| 800.0);
    let mut c = RateControl::new(1.0, t0);
    c.set_share(0.25);
    c.force_rate(t0, 100.0);
    for seq in 1..=4 {
        c.on_fleet_cycle(t0, &merged(seq, seq * 2_000_000, &held), 0.25);
        // One cycle is nothing to fit; then two probes, and no more.
        assert_eq!(probing(&c), seq == 2 || seq == 3, "cycle {seq}");
        reset(&mut c);
    }
    let (a, _) = gcra_cycle_log(500.0, 50.0, |_| 520.0);
    let (b, _) = gcra_cycle_log(500.0, 50.0, |_| 540.0);
    let mut c = RateControl::new(1.0, t0);
    c.set_share(0.25);
    c.force_rate(t0, 100.0);
    c.on_fleet_cycle(t0, &merged(1, 2_000_000, &a), 0.25);
    c.on_fleet_cycle(t0, &merged(2, 20_000_000, &b), 0.25);
    assert!(
        (c.estimate().0 - 125.0).abs() < 2.0,
        "a fleet fit: {:?}",
        c.estimate()
    );
    reset(&mut c);
    c.on_fleet_cycle(t0, &merged(3, 22_000_000, &held), 0.25);
    c.on_fleet_cycle(t0, &merged(4, 24_000_000, &held), 0.25);
    assert!(!probing(&c), "after a fleet fit, no opening probe");
}

/// Two fleet cycles against a GCRA of 500/s and a burst of 50, at
/// 520/s and 540/s, with their ends (Unix µs) a second apart.
fn two_fleet_cycles() -> ((Vec<f32>, u64), (Vec<f32>, u64)) {
    use crate::layer::adaptive::fleet_fit::tests::gcra_cycle_log;
    let (a, a_secs) = gcra_cycle_log(500.0, 50.0, |_| 520.0);
    let (b, _) = gcra_cycle_log(500.0, 50.0, |_| 540.0);
    let end_a = 1_000_000;
    let end_b = end_a + ((a_secs + 1.0) * 1e6) as u64;
    ((a, end_a), (b, end_b))
}

#[tokio::test(start_paused = true)]
async fn a_fleet_fit_is_shared_by_every_process_that_sent_in_its_cycle() {
    let t0 = Instant::now();
    let ((a, end_a), (b, end_b)) = two_fleet_cycles();
    // Its count of live processes says three; four sent in the cycles.
    let mut c = RateControl::new(1.0, t0);
    c.set_share(1.0 / 3.0);
    c.force_rate(t0, 150.0);
    for (seq, end, log) in [(1, end_a, &a), (2, end_b, &b)] {
        c.on_fleet_cycle(t0, &merged(seq, end, log), 1.0 / 3.0);
    }
    let estimate = c.estimate().0;
    assert!(
        (estimate - 125.0).abs() < 1.5,
        "a quarter of the fit: {estimate}/s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fleet_flood_starts_each_process_search_from_its_share_of_it() {
    let t0 = Instant::now();
    // Four processes' flood: 55 sends up to the refused one, 25 after.
    let flood: Vec<f32> = (0..80).map(|i| (i as f32 - 54.0) * 1e-4).collect();
    let flooded = |own: f64, flood: &[f32]| {
        let mut c = RateControl::new(1.0, t0);
        c.set_share(0.25);
        (c.estimate, c.pace, c.basis) = (own, own, Basis::Guess);
        c.on_fleet_cycle(
            t0,
            &FleetCycle {
                fits: false,
                ..merged(1, 1_000_000, flood)
            },
            0.25,
        );
        (c.estimate, c.pace)
    };
    // A process that got one request of it searches from a quarter.
    assert_eq!(flooded(1.0, &flood), (13.75, 13.75));
    // One that got more keeps its own guess.
    assert_eq!(flooded(42.0, &flood), (42.0, 42.0));
    // A first cycle of ten seconds (a process that joined late) is
    // read over its length: 1 000 sends are 25/s for a quarter.
    let long: Vec<f32> = (0..1000).map(|i| (i as f32 - 999.0) * 0.01).collect();
    let (estimate, _) = flooded(1.0, &long);
    assert!((estimate - 25.0).abs() < 0.1, "{estimate}");
}

#[tokio::test(start_paused = true)]
async fn a_fleet_fit_paces_this_process_share_whatever_its_own_cycles_said() {
    let t0 = Instant::now();
    let ((a, end_a), (b, end_b)) = two_fleet_cycles();
    // One process of four: its own cycles put its share at 150/s (the
    // host at 600/s), and it is probing over that.
    let mut c = RateControl::new(1.0, t0);
    c.set_share(0.25);
    c.force_rate(t0, 150.0);
    c.probing = true;
    c.probe_step = 1.5;
    // It sent a quarter of the fleet's requests.
    let quarter = |c: &mut RateControl, log: &[f32]| {
        if let Some(f) = c.fleet.as_mut() {
            f.own_sends = log.len() / 4;
        }
    };
    quarter(&mut c, &a);
    c.on_fleet_cycle(t0, &merged(1, end_a, &a), 0.25);
    quarter(&mut c, &b);
    assert_eq!(c.pace, 150.0, "one fleet cycle fits nothing");
    c.on_fleet_cycle(t0, &merged(2, end_b, &b), 0.25);
    let (estimate, basis) = c.estimate();
    assert!(
        (estimate - 125.0).abs() < 1.5,
        "a quarter of the fleet's fit: {estimate}/s"
    );
    assert_eq!(basis, Basis::Measured);
    assert!(
        !c.probing && c.probe_step == PROBE_GROWTH,
        "its own probe gave way"
    );
    assert_eq!(c.fleet_cycles_seen(), 2);

    // A fit under four fifths of this process's view is not believed:
    // at 300/s, a quarter of the sends is 1 200/s for the host.
    let mut high = RateControl::new(1.0, t0);
    high.set_share(0.25);
    high.force_rate(t0, 300.0 * HOLD);
    quarter(&mut high, &a);
    high.on_fleet_cycle(t0, &merged(1, end_a, &a), 0.25);
    quarter(&mut high, &b);
    high.on_fleet_cycle(t0, &merged(2, end_b, &b), 0.25);
    assert_eq!(high.estimate().0, 300.0);
    // Unless the merge holds every live process's sends.
    let mut complete = RateControl::new(1.0, t0);
    complete.set_share(0.25);
    complete.force_rate(t0, 300.0 * HOLD);
    for (seq, end, log) in [(1, end_a, &a), (2, end_b, &b)] {
        quarter(&mut complete, log);
        let all = &FleetCycle {
            complete: true,
            ..merged(seq, end, log)
        };
        complete.on_fleet_cycle(t0, all, 0.25);
    }
    assert!(
        (complete.estimate().0 - 125.0).abs() < 1.5,
        "{}",
        complete.estimate().0
    );
    // A process that sent most of the fleet's requests sees the host
    // as it is, whatever its share: it takes the fit.
    let mut most = RateControl::new(1.0, t0);
    most.set_share(0.25);
    most.force_rate(t0, 360.0 * HOLD);
    for (seq, end, log) in [(1, end_a, &a), (2, end_b, &b)] {
        if let Some(f) = most.fleet.as_mut() {
            f.own_sends = log.len() * 3 / 4;
        }
        most.on_fleet_cycle(t0, &merged(seq, end, log), 0.25);
    }
    assert!((most.estimate().0 - 125.0).abs() < 1.5, "{}", most.estimate().0);
    // Alone, its own fit stands.
    let mut alone = RateControl::new(1.0, t0);
    alone.set_share(1.0);
    alone.force_rate(t0, 550.0 * HOLD);
    alone.on_fleet_cycle(t0, &merged(1, end_a, &a), 1.0);
    alone.on_fleet_cycle(t0, &merged(2, end_b, &b), 1.0);
    assert_eq!(alone.estimate().0, 550.0);
}

#[test]
fn a_fleet_fit_is_probed_at_its_top_only_when_its_range_is_far_wider_than_jitter() {
    // Merged cycles' first fits allowed 3.5-8 % over them whatever
    // their error; a range twice that wide still goes to its top.
    let fit = |top: f64, cycles: usize| Fit {
        rate: 500.0,
        bottom: 500.0,
        top,
        cycles,
    };
    assert!(!probed_at_top(&fit(527.0, 2)));
    assert!(!probed_at_top(&fit(540.0, 2)));
    assert!(probed_at_top(&fit(560.0, 2)));
    assert!(!probed_at_top(&fit(560.0, 3)), "three cycles narrowed it");
}

#[tokio::test(start_paused = true)]
async fn a_fleet_cycle_merged_again_with_a_late_record_sets_the_pace_from_its_fit() {
    let t0 = Instant::now();
    let ((a, end_a), (b, end_b)) = two_fleet_cycles();
    // The second cycle merged before one process of four published.
    let without = crate::layer::adaptive::fleet_fit::tests::without_one_process_of_four(&b);
    let mut c = RateControl::new(1.0, t0);
    c.set_share(0.25);
    c.force_rate(t0, 150.0);
    c.on_fleet_cycle(t0, &merged(1, end_a, &a), 0.25);
    c.on_fleet_cycle(t0, &merged(2, end_b, &without), 0.25);
    let first = c.estimate().0;
    assert!(
        (first - 125.0).abs() > 3.5,
        "the merge without a process's sends: {first}/s"
    );
    // A second later, merged again with the late record.
    let t1 = t0 + Duration::from_secs(1);
    let again = &FleetCycle {
        replaces: true,
        complete: true,
        ..merged(3, end_b, &b)
    };
    c.on_fleet_cycle(t1, again, 0.25);
    let (estimate, basis) = c.estimate();
    assert!(
        (estimate - 125.0).abs() < 1.5,
        "a quarter of the fit of the whole cycle: {estimate}/s (was {first}/s)"
    );
    assert_eq!(basis, Basis::Measured);
    assert_eq!(c.fleet_cycles_seen(), 3);
}
