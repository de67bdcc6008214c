//! Slots a limiter names: refusals that carry the exact wait until it
//! serves again (Traefik's `X-Retry-In`, `retry-after-ms`; see
//! `layer/precise_wait.rs`). No send goes before the latest named slot,
//! and two of them measure the limiter's rate.
//!
//! A refusal means the limiter was out of tokens and names when the next
//! is due. Between two such moments it refilled exactly what it accepted
//! (refusals cost a token bucket or a GCRA nothing), so the count accepted
//! between two named slots over the time between them is its rate,
//! whatever its burst. Learned from the refusals alone, the pace held at a
//! guess of 39/s against Traefik's 1/s with a burst of 50 for half a
//! minute: each send at a named slot was accepted and the next refused,
//! one refusal a second, too few to cut by.
//!
//! A bucket that filled up between the two wasted refills, and the count
//! reads low: a measurement is taken only if the client pressed on the
//! limiter throughout: refused a quarter as often as accepted between the
//! two (once at least) besides their own, and no two sends more than one
//! and a half of its intervals apart. (Without the refusal
//! between, a pace held just under the rate of a one-request bucket,
//! which fills in one interval, read lower each time: 3/s fell to 58 %.)

use std::time::Duration;

use tokio::time::Instant;

/// Named slots at least this far apart measure the rate (the answers'
/// jitter is a few milliseconds of it).
const SPAN: Duration = Duration::from_millis(500);
/// Acceptances between two named slots, at least, to measure the rate.
const ACCEPTED: u64 = 2;
/// The longest gap between sends, in intervals of the measured rate, for
/// the measurement to stand.
const GAP_INTERVALS: f64 = 1.5;

/// What a host's refusals named (kept on the heap, for the hosts that
/// name slots).
#[derive(Debug)]
pub(crate) struct NamedSlots {
    /// The latest named slot: no send before it.
    latest: Instant,
    /// The slot a measurement starts from, and the host's acceptances then.
    from: Instant,
    accepted: u64,
    /// The latest send (at first, the start), the longest gap between
    /// sends since the start, and how many went since.
    last_send: Instant,
    longest_gap: Duration,
    sent: u64,
}

impl NamedSlots {
    /// A first refusal named `slot`, with `accepted` requests accepted
    /// until then.
    pub(crate) fn new(slot: Instant, accepted: u64) -> Self {
        Self {
            latest: slot,
            from: slot,
            accepted,
            last_send: slot,
            longest_gap: Duration::ZERO,
            sent: 0,
        }
    }

    /// The latest named slot, if it is still ahead of `now`.
    pub(crate) fn not_before(&self, now: Instant) -> Option<Instant> {
        (self.latest > now).then_some(self.latest)
    }

    /// A request went at `now`.
    pub(crate) fn on_send(&mut self, now: Instant) {
        self.longest_gap = self
            .longest_gap
            .max(now.saturating_duration_since(self.last_send));
        self.last_send = self.last_send.max(now);
        self.sent += 1;
    }

    /// Another refusal named `slot`, with `accepted` requests accepted by
    /// then: the limiter's rate, when the slot is far enough from the
    /// start and the sends between kept it busy.
    pub(crate) fn named(&mut self, slot: Instant, accepted: u64) -> Option<f64> {
        self.latest = self.latest.max(slot);
        if slot < self.from {
            // Jitter put it before the start: start again from it.
            self.restart(slot, accepted);
            return None;
        }
        let span = slot.saturating_duration_since(self.from);
        if span < SPAN || accepted < self.accepted + ACCEPTED {
            // Too close to measure: the earlier slot stays the start.
            return None;
        }
        let took = accepted - self.accepted;
        let rate = took as f64 / span.as_secs_f64();
        // Sent: what it took, the refused request that named `slot`, and
        // a quarter more refused between (one at least).
        let busy =
            self.sent >= took + (took / 4).max(2) && self.longest_gap.as_secs_f64() * rate <= GAP_INTERVALS;
        self.restart(slot, accepted);
        busy.then_some(rate)
    }

    fn restart(&mut self, slot: Instant, accepted: u64) {
        self.from = slot;
        self.accepted = accepted;
        // Gaps count from the new start: no send goes before a named slot.
        self.last_send = slot;
        self.longest_gap = Duration::ZERO;
        self.sent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn what_was_accepted_between_two_slots_is_the_rate() {
        let t0 = Instant::now();
        let mut n = NamedSlots::new(t0 + ms(50), 10);
        // Twelve sends 80 ms apart, ten accepted; two refusals, the
        // first naming a slot too close to measure from, the second a
        // second after the start.
        for i in 0..12 {
            n.on_send(t0 + ms(80 * i));
        }
        assert_eq!(n.named(t0 + ms(300), 13), None, "too close to the start");
        assert_eq!(n.named(t0 + ms(1_050), 20), Some(10.0));
        assert_eq!(n.not_before(t0 + ms(1_000)), Some(t0 + ms(1_050)));
        assert_eq!(n.not_before(t0 + ms(1_050)), None);
    }

    #[test]
    fn an_idle_spell_between_the_slots_measures_nothing() {
        let t0 = Instant::now();
        let mut n = NamedSlots::new(t0, 0);
        // A bucket of 10/s that filled while the client was idle for 3 s:
        // 12 accepted over 4 s reads 3/s, a quarter of its rate.
        n.on_send(t0 + ms(100));
        n.on_send(t0 + ms(3_100));
        assert_eq!(n.named(t0 + ms(4_000), 12), None);
        // Measured again from there, busy.
        for i in 0..12 {
            n.on_send(t0 + ms(4_000 + 80 * i));
        }
        assert_eq!(n.named(t0 + ms(5_000), 22), Some(10.0));
    }

    #[test]
    fn a_pace_under_the_rate_measures_nothing() {
        // A one-request bucket of 3/s paced at 2.9/s: it fills between
        // sends and wastes refills, and a probe's refusal ends ten
        // acceptances over 3.5 s, which read 2.9/s.
        let t0 = Instant::now();
        let mut n = NamedSlots::new(t0, 0);
        for i in 0..11 {
            n.on_send(t0 + ms(345 * i));
        }
        assert_eq!(n.named(t0 + ms(3_500), 10), None);
    }
}
