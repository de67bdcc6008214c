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
