//! Slots a limiter names: refusals that carry the exact wait until it
//! serves again (Traefik's `X-Retry-In`, `retry-after-ms`; see
//! `layer/precise_wait.rs`). No send goes before the latest named slot,
//! and two of them measure the limiter's rate.
//!
//! A refusal means the limiter was out of tokens and names when the next
//! is due. Between two such moments it refilled exactly what it accepted
//! (refusals cost a token bucket or a GCRA nothing), so what it accepted
//! of the requests sent between two refused ones, over the time between
//! the slots they named, is its rate, whatever its burst. Learned from
//! the refusals alone, the pace held at a guess of 39/s against Traefik's
//! 1/s with a burst of 50 for half a minute: each send at a named slot was
//! accepted and the next refused, one refusal a second, too few to cut by.
//!
//! Acceptances are counted by when their requests were sent, once their
//! answers are in: Traefik serves late what comes within half an interval
//! of its slot, and such an answer comes after the refusal of a request
//! sent after it (counted by answer, its 3/s read 1.7/s). A bucket that
//! filled up between the two refusals wasted refills, and the count reads
//! low: a measurement is taken only if the client pressed on the limiter
//! throughout, refused a quarter as often as accepted between the two
//! (once at least) besides their own, and no two sends more than one and a
//! half of its intervals apart. (Without the refusal between, a pace held
//! just under the rate of a one-request bucket, which fills in one
//! interval, read lower each time: 3/s fell to 58 %.)

use std::time::Duration;

use tokio::time::Instant;

/// Named slots at least this far apart measure the rate (the answers'
/// jitter is a few milliseconds of it).
const SPAN: Duration = Duration::from_millis(500);
/// Acceptances between two refusals, at least, to measure the rate.
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
    /// Since the refusal that started the measurement under way.
    open: Stretch,
    /// A stretch a later refusal ended, whose acceptances may still be
    /// answered (served late).
    closing: Option<(Stretch, Instant, Instant)>,
}

/// The sends and acceptances since a refusal that named a slot.
#[derive(Debug, Clone, Copy)]
struct Stretch {
    /// The slot that refusal named, and when its request was sent.
    slot: Instant,
    sent: Instant,
    /// Acceptances of requests sent after it, as answered so far.
    took: u64,
    /// Sends since, the latest (at first, the slot) and the longest gap.
    sends: u64,
    last_send: Instant,
    longest_gap: Duration,
}

impl Stretch {
    fn new(slot: Instant, sent: Instant) -> Self {
        Self {
            slot,
            sent,
            took: 0,
            sends: 0,
            last_send: slot,
            longest_gap: Duration::ZERO,
        }
    }

    /// The rate, if this stretch, ended by a refusal that named `end`,
    /// pressed on the limiter throughout.
    fn rate(&self, end: Instant) -> Option<f64> {
        let span = end.saturating_duration_since(self.slot).as_secs_f64();
        let rate = self.took as f64 / span;
        // Sent: what it took, the refused request that ended it, and a
        // quarter more refused between (one at least).
        let pressed = self.sends >= self.took + (self.took / 4).max(2)
            && self.longest_gap.as_secs_f64() * rate <= GAP_INTERVALS;
        (self.took >= ACCEPTED && pressed).then_some(rate)
    }
}

impl NamedSlots {
    /// A first refusal, of a request sent at `sent`, named `slot`.
    pub(crate) fn new(slot: Instant, sent: Instant) -> Self {
        Self {
            latest: slot,
            open: Stretch::new(slot, sent),
            closing: None,
        }
    }

    /// The latest named slot, if it is still ahead of `now`.
    pub(crate) fn not_before(&self, now: Instant) -> Option<Instant> {
        (self.latest > now).then_some(self.latest)
    }

    /// A request went at `now`.
    pub(crate) fn on_send(&mut self, now: Instant) {
        let s = &mut self.open;
        s.longest_gap = s.longest_gap.max(now.saturating_duration_since(s.last_send));
        s.last_send = s.last_send.max(now);
        s.sends += 1;
    }

    /// The host accepted a request sent at `sent`: counted where it was
    /// sent. The answer to one sent after the refusal that ended the
    /// stretch closing means its acceptances are in: the limiter's rate,
    /// if that stretch measures it.
    pub(crate) fn on_accepted(&mut self, sent: Instant) -> Option<f64> {
        if let Some((stretch, _, end_sent)) = self.closing.as_mut() {
            if sent < *end_sent {
                if sent > stretch.sent {
                    stretch.took += 1;
                }
                return None;
            }
        }
        let rate = self.close();
        if sent > self.open.sent {
            self.open.took += 1;
        }
        rate
    }

    /// Another refusal, of a request sent at `sent`, named `slot`: it ends
    /// the stretch under way when that began far enough back and took
    /// enough. Returns the
    /// rate an earlier stretch measured, if it was still closing.
    pub(crate) fn named(&mut self, slot: Instant, sent: Instant) -> Option<f64> {
        let rate = self.close();
        self.latest = self.latest.max(slot);
        if slot < self.open.slot {
            // Jitter put it before the start: start again from it.
            self.open = Stretch::new(slot, sent);
        } else if slot >= self.open.slot + SPAN && self.open.took >= ACCEPTED {
            self.closing = Some((self.open, slot, sent));
            self.open = Stretch::new(slot, sent);
        }
        // Otherwise too close or too few to measure: the stretch goes on.
        rate
    }

    /// The stretch closing, measured with what was answered of it.
    fn close(&mut self) -> Option<f64> {
        let (stretch, end, _) = self.closing.take()?;
        stretch.rate(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Sends from `t0 + from` every `every` ms, `n` of them, and their
    /// answers: accepted but for those whose index is in `refused`.
    fn sends(n: &mut NamedSlots, t0: Instant, from: u64, every: u64, count: u64, refused: &[u64]) {
        for i in 0..count {
            let at = t0 + ms(from + every * i);
            n.on_send(at);
            if !refused.contains(&i) {
                assert_eq!(n.on_accepted(at), None);
            }
        }
    }

    #[test]
    fn what_was_accepted_between_two_refusals_is_the_rate() {
        let t0 = Instant::now();
        let mut n = NamedSlots::new(t0 + ms(50), t0);
        // Twelve sends 80 ms apart, two refused: the first names a slot
        // too close to measure from, the second a second after the start.
        sends(&mut n, t0, 50, 80, 12, &[3, 11]);
        assert_eq!(
            n.named(t0 + ms(300), t0 + ms(290)),
            None,
            "too close to the start"
        );
        assert_eq!(
            n.named(t0 + ms(1_050), t0 + ms(930)),
            None,
            "acceptances may be in flight"
        );
        assert_eq!(n.not_before(t0 + ms(1_000)), Some(t0 + ms(1_050)));
        assert_eq!(n.not_before(t0 + ms(1_050)), None);
        // The answer to a request sent after the refusal closes it.
        assert_eq!(n.on_accepted(t0 + ms(1_050)), Some(10.0));
    }

    #[test]
    fn an_acceptance_served_late_counts_where_it_was_sent() {
        let t0 = Instant::now();
        let mut n = NamedSlots::new(t0 + ms(10), t0);
        // 3/s: accepted when sent at 10, 343 and 677 ms, refused at 200
        // and 900 ms; the one sent at 677 ms is served late, and its
        // answer comes after the refusal of the one sent at 900 ms.
        for at in [10, 200, 343, 677, 900] {
            n.on_send(t0 + ms(at));
        }
        n.on_accepted(t0 + ms(10));
        assert_eq!(n.named(t0 + ms(366), t0 + ms(200)), None);
        n.on_accepted(t0 + ms(343));
        assert_eq!(n.named(t0 + ms(1_010), t0 + ms(900)), None);
        assert_eq!(n.on_accepted(t0 + ms(677)), None);
        n.on_send(t0 + ms(1_010));
        assert_eq!(n.on_accepted(t0 + ms(1_010)), Some(3.0));
    }

    #[test]
    fn an_idle_spell_between_the_refusals_measures_nothing() {
        let t0 = Instant::now();
        let mut n = NamedSlots::new(t0, t0);
        // A bucket of 10/s that filled while the client was idle for 3 s:
        // 12 accepted over 4 s reads 3/s, a third of its rate.
        sends(&mut n, t0, 100, 3_000, 2, &[]);
        sends(&mut n, t0, 3_200, 10, 14, &[10, 11, 12, 13]);
        n.named(t0 + ms(4_000), t0 + ms(3_330));
        assert_eq!(n.on_accepted(t0 + ms(4_000)), None);
    }

    #[test]
    fn a_pace_under_the_rate_measures_nothing() {
        // A one-request bucket of 3/s paced at 2.9/s: it fills between
        // sends and wastes refills, and a probe's refusal ends ten
        // acceptances over 3.5 s, which read 2.9/s.
        let t0 = Instant::now();
        let mut n = NamedSlots::new(t0, t0);
        sends(&mut n, t0, 345, 345, 11, &[10]);
        n.named(t0 + ms(3_500), t0 + ms(3_795));
        assert_eq!(n.on_accepted(t0 + ms(3_800)), None);
    }
}
