//! Bans: refusals of everything for a while, whatever the pace.

use std::time::Duration;

use tokio::time::Instant;

use super::ms;
use crate::layer::adaptive::rate::RateControl;

/// Sends at the controller's pace (which binds) from `from` for `secs`,
/// each request answered 10 ms later, accepted if `accepts` says so at
/// its send time; returns the paces it sent at, in order, and the end.
/// (Within the first seconds of refusals a drain may hold the pace at
/// the estimate again for a moment, by design.)
fn send_for(
    c: &mut RateControl,
    from: Instant,
    secs: f64,
    mut accepts: impl FnMut(Instant) -> bool,
) -> (Vec<f64>, Instant) {
    let (mut t, end) = (from, from + Duration::from_secs_f64(secs));
    let mut paces = Vec::new();
    while t < end {
        c.bound_at = Some(t);
        let pace = c.rate(t).expect("paced");
        paces.push(pace);
        c.on_send(t);
        if accepts(t) {
            c.on_accepted(t + ms(10), t);
        } else {
            c.on_loss(t + ms(10), t, None);
        }
        t += Duration::from_secs_f64(1.0 / pace);
    }
    (paces, t)
}

/// A host that took 50/s for 80 s, then refuses everything sent to it.
fn held_then_banned(t0: Instant) -> (RateControl, Instant) {
    let mut c = RateControl::new(0.01, t0);
    c.force_rate(t0, 50.0);
    let t = super::accept_every(&mut c, t0, 4_000, ms(20));
    (c, t)
}

#[tokio::test(start_paused = true)]
async fn a_pace_refused_everything_never_rises_and_halves_to_min_rate() {
    // A trickle's floor after a long cycle was what the cycle took over
    // 120 s: 4 000 accepted set 33/s, and the trickle rose from 1/s to
    // it, into a host refusing everything (a ban each refusal renews).
    // Half a minute in, the trickle is set; it never rises after.
    let (mut c, t) = held_then_banned(Instant::now());
    let (first, t) = send_for(&mut c, t, 30.0, |_| false);
    let (paces, _) = send_for(&mut c, t, 570.0, |_| false);
    let trickle = *first.last().expect("sent");
    let highest = paces.iter().copied().fold(0.0, f64::max);
    assert!(
        highest <= trickle * 1.001,
        "the trickle rose from {trickle}/s to {highest}/s while every answer was refused"
    );
    // Past any window of a minute, the trickle halves on: a ban renewed
    // by each refusal of 10 s ends only after a gap that long.
    let last = *paces.last().expect("sent");
    assert!(last < 0.1, "still {last}/s after ten minutes refused");
}

#[tokio::test(start_paused = true)]
async fn a_ban_a_probe_set_off_returns_to_the_rate_held_before_it() {
    // Held at 50/s for 80 s, then a ban of 30 s (everything refused),
    // then accepted again: the cycle's reading (80 s at 50/s and the
    // ban's silence: 36/s) is no window's count; the estimate held for
    // longer than the ban before it is.
    let (mut c, t) = held_then_banned(Instant::now());
    let until = t + Duration::from_secs(30);
    send_for(&mut c, t, 40.0, |at| at >= until);
    let (estimate, _) = c.estimate();
    assert!(estimate >= 48.0, "{estimate}/s after the ban");
}

/// A host paced at 50/s that refuses everything from its first request
/// after `t0` for `secs` (nothing held yet: a ban the opening set off).
fn banned_from_the_start(t0: Instant, secs: f64) -> (RateControl, Vec<f64>, Instant) {
    let mut c = RateControl::new(0.01, t0);
    c.force_rate(t0, 50.0);
    let (paces, t) = send_for(&mut c, t0, secs, |_| false);
    (c, paces, t)
}

#[tokio::test(start_paused = true)]
async fn a_ban_longer_than_any_window_is_left_by_a_search() {
    // Refused for 200 s, then the host accepts 50/s again. The cycle's
    // reading (nothing over 200 s) fits no window: held, the pace stayed
    // at the trickle's send in 18 s for good. A search from twice the
    // trickle, doubling with each acceptance, finds the rate.
    let (mut c, paces, t) = banned_from_the_start(Instant::now(), 200.0);
    let trickle = *paces.last().expect("sent");
    assert!(trickle < 0.2, "a trickle of {trickle}/s after 200 s refused");
    let mut last_ok = t;
    let (after, _) = send_for(&mut c, t, 60.0, |at| {
        let ok = at.saturating_duration_since(last_ok) >= ms(20) || at == t;
        if ok {
            last_ok = at;
        }
        ok
    });
    let highest = after.iter().copied().fold(0.0, f64::max);
    assert!(highest >= 25.0, "{highest}/s at most in the minute after the ban");
}

#[tokio::test(start_paused = true)]
async fn a_search_a_window_refuses_at_once_returns_to_the_trickle() {
    // Refused for 200 s, then three acceptances and refusals again: a
    // window that counts refusals and lets a few through, not a ban. The
    // search goes back to the trickle's pace.
    let (mut c, paces, t) = banned_from_the_start(Instant::now(), 200.0);
    let trickle = *paces.last().expect("sent");
    let mut taken = 0;
    let (searched, t) = send_for(&mut c, t, 60.0, |_| {
        taken += 1;
        taken <= 3
    });
    assert!(
        searched.iter().any(|&p| p > 1.5 * trickle),
        "no search from {trickle}/s: {searched:?}"
    );
    // The fourth send was refused: from the next on, the trickle's pace
    // (the search held on at its own, refused twenty times more).
    let after: Vec<f64> = searched.iter().copied().skip(4).collect();
    assert!(
        !after.is_empty() && after.iter().all(|&p| p <= trickle * 1.01),
        "after the refusal, from {trickle}/s: {after:?}"
    );
    // Refused for minutes again, then open: the pace stays the trickle's,
    // read as a window's from here; no second search.
    let (_, t) = send_for(&mut c, t, 200.0, |_| false);
    let before = c.rate(t).expect("paced");
    let (again, _) = send_for(&mut c, t, 60.0, |_| true);
    let highest = again.iter().copied().fold(0.0, f64::max);
    assert!(
        highest <= 1.5 * before,
        "searched again: {before}/s to {highest}/s"
    );
}

/// A host banned from the start for 12 s, after which it accepts what
/// `accepts` says (given the send time and the sends so far, refused ones
/// too, with their times): the trickle's end reads a window of 10 s.
fn read_after_a_short_ban(
    secs: f64,
    mut accepts: impl FnMut(Instant, &[Instant]) -> bool,
) -> (RateControl, Vec<f64>, f64) {
    let t0 = Instant::now();
    let (mut c, _, t) = banned_from_the_start(t0, 12.0);
    let read = c.rate(t).expect("paced");
    let mut sent = Vec::new();
    let (paces, _) = send_for(&mut c, t, secs, |at| {
        let ok = accepts(at, &sent);
        sent.push(at);
        ok
    });
    (c, paces, read)
}

#[tokio::test(start_paused = true)]
async fn a_reading_a_doubled_pace_does_not_refuse_is_probed_past() {
    // A ban of 12 s from the first request, then a host that accepts 50/s:
    // the trickle's end read a window of about 10 s, and the pace stayed
    // there, probed 3 % at a time after hundreds of answers (a GCRA of
    // 100/s behind a ban of 10 s was held at 6/s for minutes). Ten windows
    // later the reading is tested at twice its pace, which holds: probes
    // chain on from there.
    let mut last_ok: Option<Instant> = None;
    let (_, paces, read) = read_after_a_short_ban(300.0, |at, _| {
        let ok = last_ok.is_none_or(|l| at.saturating_duration_since(l) >= ms(20));
        if ok {
            last_ok = Some(at);
        }
        ok
    });
    let highest = paces.iter().copied().fold(0.0, f64::max);
    assert!(
        highest >= 20.0 * read,
        "from {read}/s to {highest}/s at most in 300 s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reading_a_doubled_pace_overfills_is_a_window_and_is_not_tested_again() {
    // The same reading, then a log of 10 s that counts refused requests
    // too: the test at twice the pace is refused, and the host is a
    // window; the pace goes back to the reading, and stays there.
    // The trickle's pace, about 1/s, fits a log of 15 per 10 s; twice it
    // does not.
    let (c, paces, read) = read_after_a_short_ban(900.0, |at, sent| {
        let since = at - Duration::from_secs(10);
        sent.iter().filter(|&&s| s > since).count() < 15
    });
    assert!(c.window_test_refused(), "no test refused: {paces:?}");
    let tested = paces.iter().position(|&p| p > 1.5 * read).expect("a test");
    let doubled_again = paces[tested..]
        .iter()
        .skip_while(|&&p| p > 1.5 * read)
        .any(|&p| p > 1.5 * read);
    assert!(!doubled_again, "tested again after a refused test: {paces:?}");
    let last = *paces.last().expect("sent");
    assert!(last >= 0.9 * read, "{last}/s at the end, from {read}/s");
}

#[tokio::test(start_paused = true)]
async fn an_estimate_returned_to_and_refused_at_its_hold_returns_lower() {
    // Held at 50/s, banned for 30 s, returned to; then banned for 10 s
    // every 23 s, each ban set off at the hold (a burst hid the pace for
    // 13 s each time). Returned to as it was each time, a GCRA of 50/s
    // behind a ban was banned every 23 s for ten minutes: an estimate
    // returned to and refused at its own hold, no probe under way, is
    // returned to lower.
    let (mut c, t) = held_then_banned(Instant::now());
    let until = t + Duration::from_secs(30);
    let (_, t) = send_for(&mut c, t, 40.0, |at| at >= until);
    let (returned, _) = c.estimate();
    assert!(returned >= 48.0, "{returned}/s after the first ban");
    let (mut t, mut estimates) = (t, Vec::new());
    for _ in 0..4 {
        let (from, until) = (t + Duration::from_secs(13), t + Duration::from_secs(23));
        t = send_for(&mut c, t, 30.0, |at| at < from || at >= until).1;
        estimates.push(c.estimate().0);
    }
    let last = *estimates.last().expect("four cycles");
    assert!(
        last <= 0.9 * returned,
        "{estimates:?} after bans at the hold, from {returned}/s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stretch_of_a_minute_the_trickle_ended_sets_the_next_trickle() {
    // Held at 50/s, refused for 110 s, accepted at every pace for a
    // minute, then refused again: a ban each request renews (HAProxy's
    // flag with `expire 5s` cleared after 132 s, once the trickle's sends
    // were 5 s apart). The next stretch trickles at the pace that ended
    // the first once the pace starves, not from a send a second down (a
    // trickle from 1.5/s renewed the flag for 150 s more).
    let (mut c, t) = held_then_banned(Instant::now());
    let (paces, t) = send_for(&mut c, t, 110.0, |_| false);
    let ended = *paces.last().expect("sent");
    let (_, t) = send_for(&mut c, t, 60.0, |_| true);
    let (again, _) = send_for(&mut c, t, 60.0, |_| false);
    let starved = again.iter().position(|&p| p <= ended * 1.01);
    let before: Vec<f64> = again
        .iter()
        .copied()
        .take(starved.unwrap_or(again.len()))
        .collect();
    assert!(
        starved.is_some() && before.len() <= 40,
        "the trickle that ended the first stretch was {ended}/s; the next went {again:?}"
    );
}
