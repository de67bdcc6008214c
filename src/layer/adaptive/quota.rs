//! A quota the server announces in its headers (the IETF `RateLimit`
//! fields, GitHub's `X-RateLimit-*`): what is left of a fixed window and
//! when the window resets. The pace spends what is left by the reset, and
//! nothing is sent once it is spent.
//!
//! The reset comes in whole seconds, so each answer only says it lies in a
//! second-wide interval; every answer of one window narrows it. A window
//! of one or two seconds is no wider than that doubt, so windows are told
//! apart by the quota coming back (more left than before, beyond what
//! answers overtaking each other explain), not by their intervals. An
//! epoch `Reset` rounded up to a whole second puts every reset of one
//! server late by the same fraction: when such a window is seen to reset
//! before the time its headers gave, the next windows' resets are read
//! that much earlier (never earlier than the headers allow), until a
//! refusal says otherwise. A reset in seconds from now is late by when
//! the answer came, which differs from window to window: nothing is
//! learned from it. An epoch reset never named farther than two seconds
//! off is not followed at all: a doubt of a second is the window's own
//! length, and the refusals pace such a host better.

use std::time::Duration;

use tokio::time::Instant;

use crate::retry_after::QuotaWindow;

/// A window whose resets are never announced farther than this is short
/// enough to be told a moving one by what comes back at its reset.
const SHORT_WINDOW: Duration = Duration::from_secs(2);

/// The quota of the current window, and what earlier windows taught.
#[derive(Debug, Default)]
pub(crate) struct QuotaWindows {
    current: Option<Window>,
    /// How much later than the real reset the headers put it, as the last
    /// window that reset early showed.
    late_by: Duration,
    /// The quota came back only in part at its reset: a moving window,
    /// whose headers are not followed.
    slides: bool,
    /// The farthest reset any answer announced, in milliseconds.
    farthest_ms: u32,
    /// A rate the server announces outright (see `rate/announced.rs`).
    pub(crate) announced_rate: Option<f64>,
}

/// One window as its answers describe it.
#[derive(Debug, Clone, Copy)]
struct Window {
    remaining: u64,
    /// The reset lies in `(lo, hi]`, narrowed by each answer.
    lo: Instant,
    hi: Instant,
    /// Named as an instant (an epoch): late by the same in every window.
    epoch: bool,
    /// When the request whose answer showed this window was sent: answers
    /// to requests sent earlier may come from the window before.
    opened_by: Instant,
    /// When that answer came, and what it said was left.
    opened_at: Instant,
    first_remaining: u64,
    /// When the latest answer of this window came.
    last_answer: Instant,
    /// Not spent as requests go: the pace this one answer allows, held
    /// (spending what is left by the reset would speed up as it nears).
    refills: bool,
}

impl QuotaWindows {
    /// The quota in the answer, at `now`, to a request sent at `sent_at`.
    /// `overtaken` bounds how many answers to requests the server saw
    /// later may have come first (the requests in flight with this one).
    pub(crate) fn on_headers(&mut self, now: Instant, sent_at: Instant, quota: &QuotaWindow, overtaken: u64) {
        if self.slides {
            return;
        }
        let ahead = u32::try_from(quota.reset_hi.as_millis()).unwrap_or(u32::MAX);
        self.farthest_ms = self.farthest_ms.max(ahead);
        if quota.epoch && self.short() {
            // A reset named in whole epoch seconds is known to a second at
            // best (the `Date` it is read against is rounded too), and a
            // window of a second or two is no longer than that doubt:
            // following it waits up to a window too long each time.
            // Flask-Limiter's "3 per second" with its headers was held at
            // half its rate (a closed loop of 64: 1.5/s, sent 3 at once and
            // then held to the reset's latest second), a third at 2.5 a
            // second; without its headers, paced by its refusals, the same
            // window gives 98 %. Not for good: a long window first seen
            // in its last seconds is followed once an answer names a reset
            // farther off.
            self.current = None;
            return;
        }
        if self.current.is_some_and(|w| sent_at < w.opened_by) {
            // Sent before the request that showed the current window: it
            // may tell of the window before, and would spend this one.
            return;
        }
        let remaining = quota.remaining;
        let (lo, hi) = (now + quota.reset_lo, now + quota.reset_hi);
        let fresh = Window {
            remaining,
            lo,
            hi,
            epoch: quota.epoch,
            opened_by: sent_at,
            opened_at: now,
            first_remaining: remaining,
            last_answer: now,
            refills: false,
        };
        let overlaps = |w: &Window| lo < w.hi && hi > w.lo;
        self.current = Some(match self.current {
            // A quota that is not spent as requests go (the same count on
            // every answer, a limiter that refills) is no fixed window:
            // each answer speaks for itself, and narrows nothing.
            Some(w) if overlaps(&w) && remaining >= w.first_remaining && remaining <= w.remaining => Window {
                refills: true,
                ..fresh
            },
            Some(w) if overlaps(&w) && remaining <= w.remaining.saturating_add(overtaken) => Window {
                remaining: remaining.min(w.remaining),
                lo: lo.max(w.lo),
                hi: hi.min(w.hi),
                last_answer: now,
                ..w
            },
            Some(w) => {
                if self.short() && remaining.saturating_add(overtaken) < w.first_remaining / 2 {
                    // Past the reset of a window of a second or two (no
                    // answer ever put it farther), less
                    // than half the quota back: a moving window
                    // (Flask-Limiter's, the `limits` library's), whose
                    // reset is when its oldest request leaves, and which
                    // gives back only what left then. Spending what is
                    // left by that reset, the pace fell to a few a second
                    // and climbed again each time the remaining count did:
                    // 55 % of 50 a second. Its refusals pace it instead. A
                    // longer one is still best read as a fixed window: its
                    // refusals say to come back in whole seconds rounded
                    // down, often 0, and 12 a minute had a fifth of its
                    // requests refused. Nothing it says is read again,
                    // nor does it explain a refusal: its headers on every
                    // refusal, read as new windows, each explained the
                    // next, and a closed loop refused at once never paced.
                    self.slides = true;
                    self.current = None;
                    return;
                }
                // A new window: the last one reset by now. Earlier than its
                // headers said means they run late by at least that much,
                // less twice the spacing of answers: the window reset some
                // time after the last answer of the old one, and the
                // narrowed reset is as late as the answer that set it, both
                // uncertain by that spacing. (Less it once, and the next
                // window was now and then read a few ms early: a refusal,
                // a `Retry-After` pause of a second, a one-second window
                // lost.)
                if w.epoch && now < w.hi {
                    let spacing = now
                        .saturating_duration_since(w.last_answer)
                        .max(Duration::from_millis(1));
                    self.late_by = w.hi.saturating_duration_since(now).saturating_sub(2 * spacing);
                }
                fresh
            }
            None => fresh,
        });
    }

    /// Whether no answer ever announced a reset farther than
    /// [`SHORT_WINDOW`]: a window of a second or two.
    fn short(&self) -> bool {
        u128::from(self.farthest_ms) <= SHORT_WINDOW.as_millis()
    }

    /// A request was refused while the quota was thought to allow it: the
    /// reset is not as early as learned.
    pub(crate) fn on_refused(&mut self) {
        self.late_by = Duration::ZERO;
    }

    /// When the current window resets, as best known.
    fn reset(&self) -> Option<(Instant, u64)> {
        let w = self.current?;
        let late_by = if w.epoch { self.late_by } else { Duration::ZERO };
        let hi = w.hi.checked_sub(late_by).map_or(w.lo, |at| at.max(w.lo));
        Some((hi, w.remaining))
    }

    /// Whether a refusal at `now` falls where the learned lateness moved
    /// the reset from: after the reset as read, before the one the headers
    /// gave.
    pub(crate) fn read_too_early(&self, now: Instant) -> bool {
        self.current
            .is_some_and(|w| w.epoch && !self.late_by.is_zero() && now < w.hi && !self.active(now))
    }

    /// Whether a quota is in force at `now`.
    pub(crate) fn active(&self, now: Instant) -> bool {
        self.reset().is_some_and(|(at, _)| now < at)
    }

    /// The pace that spends what is left by the reset; none once it is
    /// spent ([`not_before`](Self::not_before) holds sends back then).
    /// After the reset, until an answer shows the next window, the pace the
    /// last one allowed from its first answer: the requests held for the
    /// reset go out paced, not all at once into a window that may be as
    /// small as they are many.
    pub(crate) fn rate(&self, now: Instant, min_rate: f64) -> Option<f64> {
        let (at, remaining) = self.reset()?;
        let w = self.current?;
        if now >= at {
            let span = at.saturating_duration_since(w.opened_at);
            let quota = (w.first_remaining + 1) as f64 / span.as_secs_f64().max(0.001);
            return (now < at + span).then_some(quota.max(min_rate));
        }
        if remaining == 0 {
            return None;
        }
        let from = if w.refills { w.opened_at } else { now };
        let left = at.saturating_duration_since(from).as_secs_f64().max(0.001);
        Some((remaining as f64 / left).max(min_rate))
    }

    /// No send before this: the quota is spent until the reset.
    pub(crate) fn not_before(&self, now: Instant) -> Option<Instant> {
        self.reset()
            .filter(|&(at, remaining)| remaining == 0 && now < at)
            .map(|(at, _)| at)
    }
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
