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
//! learned from it.

use std::time::Duration;

use tokio::time::Instant;

use crate::retry_after::QuotaWindow;

/// The quota of the current window, and what earlier windows taught.
#[derive(Debug, Default)]
pub(crate) struct QuotaWindows {
    current: Option<Window>,
    /// How much later than the real reset the headers put it, as the last
    /// window that reset early showed.
    late_by: Duration,
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
}

impl QuotaWindows {
    /// An answer's quota: `remaining` until a reset in
    /// `(now + reset_lo, now + reset_hi]`. `overtaken` bounds how many
    /// answers to requests the server saw later may have come first (the
    /// requests in flight with this one).
    pub(crate) fn on_headers(&mut self, now: Instant, quota: &QuotaWindow, overtaken: u64) {
        let remaining = quota.remaining;
        let (lo, hi) = (now + quota.reset_lo, now + quota.reset_hi);
        let fresh = Window {
            remaining,
            lo,
            hi,
            epoch: quota.epoch,
        };
        self.current = Some(match self.current {
            Some(w) if lo < w.hi && hi > w.lo && remaining <= w.remaining.saturating_add(overtaken) => {
                Window {
                    remaining: remaining.min(w.remaining),
                    lo: lo.max(w.lo),
                    hi: hi.min(w.hi),
                    epoch: w.epoch,
                }
            }
            Some(w) => {
                // A new window: the last one reset by now. Earlier than its
                // headers said means they run late by at least that much.
                if w.epoch && now < w.hi {
                    self.late_by = w.hi.saturating_duration_since(now);
                }
                fresh
            }
            None => fresh,
        });
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

    /// Whether a quota is in force at `now`.
    pub(crate) fn active(&self, now: Instant) -> bool {
        self.reset().is_some_and(|(at, _)| now < at)
    }

    /// The pace that spends what is left by the reset; none once it is
    /// spent ([`not_before`](Self::not_before) holds sends back then, and
    /// the next window's pace is unknown).
    pub(crate) fn rate(&self, now: Instant, min_rate: f64) -> Option<f64> {
        let (at, remaining) = self.reset().filter(|&(at, left)| now < at && left > 0)?;
        let left = at.saturating_duration_since(now).as_secs_f64().max(0.001);
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
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// What an answer's headers say: `remaining` until a reset in `(lo, hi]`.
    fn said(remaining: u64, lo: Duration, hi: Duration, epoch: bool) -> QuotaWindow {
        QuotaWindow {
            remaining,
            reset_lo: lo,
            reset_hi: hi,
            epoch,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_pace_spends_what_is_left_and_waits_for_the_narrowed_reset() {
        let t0 = Instant::now();
        let mut q = QuotaWindows::default();
        // "t=5" (whole seconds): the reset is in (4 s, 5 s].
        q.on_headers(t0, &said(100, 4 * S, 5 * S, false), 0);
        // 300 ms later the header still says 5: the reset is narrowed to
        // (t0 + 4.3 s, t0 + 5 s]; the pace spends what is left until then.
        let t1 = t0 + Duration::from_millis(300);
        q.on_headers(t1, &said(90, 4 * S, 5 * S, false), 0);
        let rate = q.rate(t1, 1.0).expect("a quota");
        assert!((rate - 90.0 / 4.7).abs() < 0.5, "{rate}");
        // Spent: nothing before the reset, then no quota pace.
        q.on_headers(t1, &said(0, 4 * S, 5 * S, false), 0);
        assert_eq!(q.not_before(t1), Some(t0 + 5 * S));
        assert_eq!(q.rate(t0 + 6 * S, 1.0), None);
        assert!(!q.active(t0 + 6 * S));
    }

    #[tokio::test(start_paused = true)]
    async fn one_second_windows_are_told_apart_by_the_quota_coming_back() {
        // 20 a second, "t=1" on every answer: each answer's interval is a
        // second wide and overlaps the next window's.
        let t0 = Instant::now();
        let mut q = QuotaWindows::default();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        q.on_headers(at(10), &said(19, Duration::ZERO, S, false), 0);
        q.on_headers(at(990), &said(0, Duration::ZERO, S, false), 0);
        assert_eq!(q.not_before(at(990)), Some(at(1010)));
        // The next window: 19 left again, not the last one's 0.
        q.on_headers(at(1015), &said(19, Duration::ZERO, S, false), 1);
        assert_eq!(q.not_before(at(1015)), None);
        let rate = q.rate(at(1015), 1.0).expect("a quota");
        assert!((rate - 19.0).abs() < 0.1, "{rate}");
        // An answer overtaken by one sent later is the same window.
        q.on_headers(at(1020), &said(17, Duration::ZERO, S, false), 2);
        q.on_headers(at(1021), &said(18, Duration::ZERO, S, false), 2);
        let rate = q.rate(at(1021), 1.0).expect("a quota");
        assert!((rate - 17.0 / 0.994).abs() < 0.01, "{rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn resets_that_come_early_are_read_early_until_a_refusal() {
        // An epoch reset rounded up: the headers say (4 s, 5.6 s] while the
        // window really resets at 5 s.
        let t0 = Instant::now();
        let mut q = QuotaWindows::default();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        q.on_headers(t0, &said(10, 4 * S, Duration::from_millis(5600), true), 0);
        q.on_headers(
            at(5010),
            &said(99, Duration::from_millis(3590), Duration::from_millis(5590), true),
            0,
        );
        // The next window's reset is read 590 ms early, as this one was.
        q.on_headers(
            at(9000),
            &said(0, Duration::ZERO, Duration::from_millis(1600), true),
            0,
        );
        assert_eq!(q.not_before(at(9000)), Some(at(10_010)));
        // A refusal: back to what the headers say.
        q.on_refused();
        assert_eq!(q.not_before(at(9000)), Some(at(10_600)));
    }
}
