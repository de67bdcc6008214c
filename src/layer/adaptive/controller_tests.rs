//! Tests of `controller.rs`: they drive both limits through the one
//! controller.

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` requests admitted at `t`, each at once.
/// Headers that announce `q` and nothing else.
fn quota(q: crate::retry_after::QuotaWindow) -> Announced {
    Announced {
        quota: Some(q),
        rate: None,
    }
}

fn admit_now(c: &mut Controller, t: Instant, n: usize) {
    for _ in 0..n {
        assert_eq!(c.admit(t, None), Admit::Now);
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_or_a_503_at_depths_that_succeed_moves_the_rate_not_the_concurrency() {
    let t0 = Instant::now();
    let mut c = Controller::new(AdaptiveConfig::default(), t0);
    admit_now(&mut c, t0, 4);
    assert_eq!(c.admit(t0, None), Admit::Full, "4 permits to start with");
    let now = t0 + ms(10);
    c.on_answer(now, t0, 1, Outcome::Throttled, None);
    c.release();
    assert_eq!(c.snapshot(now).concurrency, 4, "a 429 cuts no concurrency");
    // Too few answers accepted to guess a rate from: no pacing yet.
    assert_eq!(c.snapshot(now).rate, None);
    c.on_answer(now, t0, 2, Outcome::Success, None);
    c.release();
    // A 503 from deeper than successes (nginx `limit_conn`) cuts it.
    c.on_answer(now, t0, 4, Outcome::Loss, None);
    c.release();
    assert_eq!(c.snapshot(now).concurrency, 3, "back below the depth refused");
    // A 503 at a depth that succeeds (nginx `limit_req`, answering
    // 503 by default) is a refusal for rate, whatever came before.
    c.on_answer(now, now, 2, Outcome::Loss, None);
    assert_eq!(c.snapshot(now).concurrency, 3, "no cut for a refusal at depth 2");
    assert!(
        c.snapshot(now).rate.is_some(),
        "the refusal at depth 2 paces the host"
    );
}

/// The answer at `now` to a request sent at `sent` with `depth` in flight,
/// its permit given back, and what a request asking at `now` is told then.
fn answered_then_admit(
    c: &mut Controller,
    now: Instant,
    sent: Instant,
    depth: usize,
    outcome: Outcome,
) -> Admit {
    c.on_answer(now, sent, depth, outcome, None);
    c.release();
    c.admit(now, None)
}

/// A controller at `t0` whose host refused a round before it accepted
/// anything: four sent, the fourth refused at once and each request sent
/// in its place too, the three others in flight. What the fourth refusal
/// leaves a request asking then.
fn refused_a_round(t0: Instant) -> (Controller, Admit) {
    let mut c = Controller::new(AdaptiveConfig::default(), t0);
    admit_now(&mut c, t0, 4);
    for refused in 1..=3 {
        let admit = answered_then_admit(&mut c, t0, t0, 4, Outcome::Throttled);
        assert_eq!(admit, Admit::Now, "refusal {refused}: fewer than a round");
    }
    let admit = answered_then_admit(&mut c, t0, t0, 4, Outcome::Throttled);
    (c, admit)
}

#[tokio::test(start_paused = true)]
async fn a_round_refused_before_anything_was_accepted_waits_for_the_answers_in_flight() {
    let t0 = Instant::now();
    let (mut c, admit) = refused_a_round(t0);
    assert_eq!(
        admit,
        Admit::Full,
        "four refused, nothing accepted: a permit is free, but what the host accepts is not known yet"
    );
    let now = t0 + ms(20);
    for depth in 1..=2 {
        let admit = answered_then_admit(&mut c, now, t0, depth, Outcome::Success);
        assert_eq!(admit, Admit::Full, "until every answer in flight is in");
    }
    let admit = answered_then_admit(&mut c, now, t0, 3, Outcome::Success);
    assert!(
        matches!(admit, Admit::At(..)),
        "all answered: held no longer, paced at the three the host accepted"
    );
    // Once the host accepted, a refusal frees its permit as before.
    assert_ne!(
        answered_then_admit(&mut c, now, now, 1, Outcome::Throttled),
        Admit::Full
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_answer_a_hold_waited_for_paces_the_host_at_what_it_accepted() {
    // Paced only at the next refusal, the requests the hold had kept back
    // went at once into a host that had taken what it takes: a GCRA of
    // 2/s with a burst of one refused two more of them. Paced from the
    // last answer with its first slot free, it refused the first.
    let t0 = Instant::now();
    let (mut c, _) = refused_a_round(t0);
    let now = t0 + ms(20);
    for depth in 1..=2 {
        answered_then_admit(&mut c, now, t0, depth, Outcome::Success);
        assert_eq!(c.snapshot(now).rate, None, "not before every answer is in");
    }
    let admit = answered_then_admit(&mut c, now, t0, 3, Outcome::Success);
    let rate = c.snapshot(now).rate;
    assert!(
        rate.is_some_and(|r| (2.9..=3.1).contains(&r)),
        "three accepted: paced at {rate:?}"
    );
    let Admit::At(slot, _) = admit else {
        panic!("the first request after the flood went at once: {admit:?}");
    };
    assert!(slot >= now + ms(300), "an interval of 3/s on: {:?}", slot - now);
}

#[tokio::test(start_paused = true)]
async fn a_hold_for_answers_ends_two_seconds_after_the_latest_refusal_answered_or_not() {
    let t0 = Instant::now();
    let (mut c, admit) = refused_a_round(t0);
    assert_eq!(admit, Admit::Full);
    // A server that never answers the three it took.
    assert_eq!(c.admit(t0 + ms(1999), None), Admit::Full, "still held");
    assert_eq!(c.admit(t0 + ms(2000), None), Admit::Now, "held no longer");
}

#[tokio::test(start_paused = true)]
async fn an_inner_error_cuts_the_concurrency_by_the_decrease_ratio() {
    let t0 = Instant::now();
    let mut c = Controller::new(AdaptiveConfig::default().initial_concurrency(10), t0);
    assert_eq!(c.admit(t0, None), Admit::Now);
    let now = t0 + ms(10);
    c.on_answer(now, t0, 1, Outcome::Failed, None);
    c.release();
    assert_eq!(
        c.snapshot(now).concurrency,
        8,
        "10 × 0.8: a timeout or a reset is overload"
    );
}

#[tokio::test(start_paused = true)]
async fn try_admit_now_changes_nothing_when_it_must_wait() {
    let t0 = Instant::now();
    let mut c = Controller::new(AdaptiveConfig::default().initial_concurrency(1), t0);
    assert!(c.try_admit_now(t0));
    assert!(!c.try_admit_now(t0), "the one permit is in use");
    assert_eq!(c.in_flight(), 1);
    c.release();
    assert!(c.try_admit_now(t0));
}

#[tokio::test(start_paused = true)]
async fn would_admit_says_what_admit_does_and_takes_nothing() {
    let t0 = Instant::now();
    let mut c = Controller::new(AdaptiveConfig::default(), t0);
    c.pace.force_rate(t0, 10.0);
    assert!(c.would_admit(t0, None));
    assert!(c.would_admit(t0, None), "asking took nothing");
    assert_eq!(c.admit(t0, None), Admit::Now);
    assert!(!c.would_admit(t0, None), "the pace holds the second back");
    let Admit::At(slot, lead) = c.admit(t0, None) else {
        panic!("paced");
    };
    assert!(!c.would_admit(slot, None), "another request leads");
    assert!(c.would_admit(slot, Some(lead)));
    assert_eq!(c.admit(slot, Some(lead)), Admit::Now);
}

#[tokio::test(start_paused = true)]
async fn queued_requests_wait_for_the_leader() {
    let t0 = Instant::now();
    let mut c = Controller::new(AdaptiveConfig::default(), t0);
    c.pace.force_rate(t0, 10.0);
    // An idle pace starts now: one send now, and the next slot is an
    // interval after it.
    assert_eq!(c.admit(t0, None), Admit::Now);
    let Admit::At(slot, lead) = c.admit(t0, None) else {
        panic!("paced: the second request leads, for a later slot");
    };
    assert_eq!(slot, t0 + ms(100));
    assert_eq!(c.admit(t0, None), Admit::Queued, "one leader at a time");
    assert!(!c.try_admit_now(t0));
    assert_eq!(c.admit(slot, Some(lead)), Admit::Now);
    let Admit::At(next, _) = c.admit(slot, None) else {
        panic!("the lead passed on, to the next slot");
    };
    assert_eq!(next, slot + ms(100));
}

#[tokio::test(start_paused = true)]
async fn a_503_past_the_depths_that_succeed_moves_the_concurrency_not_the_rate() {
    // A limit of 4 in flight answered with 503 (nginx `limit_conn`):
    // requests at depths 1–4 succeed, the fifth in flight is refused,
    // many times a second.
    let t0 = Instant::now();
    let cfg = AdaptiveConfig::default().initial_concurrency(8);
    let mut c = Controller::new(cfg, t0);
    let mut t = t0;
    for _ in 0..50 {
        t += ms(20);
        for depth in 1..=4 {
            c.on_answer(t, t - ms(20), depth, Outcome::Success, None);
        }
        c.on_answer(t, t - ms(1), 5, Outcome::Loss, None);
    }
    assert_eq!(
        c.snapshot(t).rate,
        None,
        "no pace from refusals that follow the depth"
    );
    assert!(c.snapshot(t).concurrency < 8, "the concurrency limit was cut");

    // A rate limiter answering 503 (nginx `limit_req`'s default status)
    // refuses at the depths it accepts at: the pace moves.
    let mut c = Controller::new(cfg, t0);
    let mut t = t0;
    for i in 0..200u32 {
        t += ms(5);
        let outcome = if i % 3 == 0 {
            Outcome::Loss
        } else {
            Outcome::Success
        };
        c.on_answer(t, t - ms(1), 1, outcome, None);
    }
    assert!(
        c.snapshot(t).rate.is_some(),
        "a rate limiter's 503s pace the host"
    );
}

#[test]
fn state_per_host_is_small_and_fixed() {
    let size = std::mem::size_of::<Controller>();
    assert!(size <= 1024, "{size} bytes");
}

#[tokio::test(start_paused = true)]
async fn a_leader_looks_again_each_search_step_while_a_search_after_a_pause_grows() {
    let t0 = Instant::now();
    let mut c = Controller::new(AdaptiveConfig::default(), t0);
    admit_now(&mut c, t0, 4);
    let now = t0 + ms(10);
    for _ in 0..3 {
        c.on_answer(now, t0, 4, Outcome::Success, None);
        c.release();
    }
    // The fourth is refused with `Retry-After: 1`: a guess of 3/s after
    // the pause, searched upward from.
    c.on_answer(now, t0, 4, Outcome::Throttled, Some(Duration::from_secs(1)));
    c.release();
    assert_eq!(c.pace.estimate(), (3.0, Basis::Guess));
    let t1 = now + Duration::from_secs(1);
    assert_eq!(c.admit(t1, None), Admit::Now);
    let Admit::At(mut at, mut lead) = c.admit(t1, None) else {
        panic!("paced");
    };
    assert_eq!(
        at,
        t1 + SEARCH_STEP,
        "a slot 333 ms on, looked at again a step on"
    );
    // Each look finds the pace grown, until a slot at the grown pace is due.
    let sent = loop {
        match c.admit(at, Some(lead)) {
            Admit::Now => break at,
            Admit::At(next, l) => {
                assert!(next <= at + 2 * SEARCH_STEP, "at most two steps between looks");
                (at, lead) = (next, l);
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(sent - t1 < ms(333), "sent {:?} after the first", sent - t1);
    // A measured pace is not searched: the leader waits for its slot.
    c.pace.force_rate(sent, 1.0);
    c.release();
    let Admit::At(slot, _) = c.admit(sent, None) else {
        panic!("paced");
    };
    assert_eq!(slot, sent + Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_host_that_opened_without_a_burst_gets_no_send_sooner_than_its_interval() {
    // Four requests at once; a limiter without a burst accepts one, a
    // burst of one two. Then paced at 100/s: sent 1.5 ms late once, the
    // pace catches up by sending the next 9 ms after it, which only the
    // one with a burst takes.
    for (accepted, apart) in [(1, true), (2, false)] {
        let t0 = Instant::now();
        let mut c = Controller::new(AdaptiveConfig::default(), t0);
        admit_now(&mut c, t0, 4);
        for i in 0..4 {
            let outcome = if i < accepted {
                Outcome::Success
            } else {
                Outcome::Throttled
            };
            c.on_answer(t0 + ms(5), t0, 4, outcome, None);
            c.release();
        }
        let t1 = t0 + ms(1000);
        c.pace.force_rate(t1, 100.0);
        // Its slots are waited for to the microsecond: each late wake
        // would widen the gap it needs kept.
        assert_eq!(c.slots_to_the_microsecond(), apart);
        assert_eq!(c.admit(t1, None), Admit::Now);
        let late = t1 + Duration::from_micros(11_500);
        assert_eq!(c.admit(late, None), Admit::Now, "a late wake-up sends");
        let next = t1 + Duration::from_micros(20_500);
        match c.admit(next, None) {
            Admit::At(slot, _) if apart => assert!(
                slot >= late + Duration::from_micros(9_800),
                "one interval of the estimate after the late send: {:?}",
                slot - late
            ),
            Admit::Now if !apart => {}
            other => panic!("accepted {accepted} at once: {other:?}"),
        }
        // At 10/s a tick late is 1 % of the rate: the timer's tick will do.
        c.pace.force_rate(next, 10.0);
        assert!(!c.slots_to_the_microsecond());
    }
}

/// Flask-Limiter's "1 per second" with its headers: of four requests
/// sent together one is taken, its answer says none is left until a reset
/// 2 s off, and the other three are refused with `Retry-After: 1`. The
/// host has no rate of its own then, only the quota's: the next send is
/// held to the reset and the quota's pace after it, never to `min_rate`'s
/// interval (100 s) for keeping a limiter without a burst's sends apart.
#[tokio::test(start_paused = true)]
async fn a_quota_paced_host_is_never_held_to_the_slowest_rates_interval() {
    let t0 = Instant::now();
    let mut c = Controller::new(AdaptiveConfig::default(), t0);
    admit_now(&mut c, t0, 4);
    let spent = crate::retry_after::QuotaWindow {
        remaining: 0,
        reset_lo: Duration::ZERO,
        reset_hi: Duration::from_secs(2),
        epoch: true,
    };
    let now = t0 + ms(3);
    c.on_answer(now, t0, 1, Outcome::Success, None);
    c.on_announced(now, t0, &quota(spent), 1);
    c.release();
    for depth in 2..=4 {
        c.on_answer(now, t0, depth, Outcome::Throttled, Some(Duration::from_secs(1)));
        c.on_announced(now, t0, &quota(spent), depth);
        c.release();
    }
    // The pause is over; the quota's reset is 2 s after its answer.
    let mut at = now + Duration::from_secs(1);
    let (mut waited, mut lead) = (Duration::ZERO, None);
    loop {
        match c.admit(at, lead) {
            Admit::Now => break,
            Admit::At(slot, id) => {
                waited += slot.saturating_duration_since(at);
                (at, lead) = (slot, Some(id));
            }
            other => panic!("{other:?}: nothing else holds the host"),
        }
        assert!(waited <= Duration::from_secs(5), "held {waited:?}");
    }
}
