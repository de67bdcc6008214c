//! A reading a trickle's end gave, tested: is it a window's count?
//!
//! When a host accepts again after a stretch of refusals, the cycle reads
//! the few requests it took over the stretch's length (`window.rs`). A
//! window that counts refusals gives such a cycle, and so does a ban,
//! which the opening's flood or a probe sets off: fail2ban's `bantime`,
//! HAProxy's abuse flag. Held as a window's count, a ban's reading kept a
//! GCRA of 100/s behind a ban of 10 s at 6/s for minutes, and HAProxy's
//! flag, cleared after two minutes, at 0.4/s of 50/s for good: probes
//! under a window go 3 % at a time, each after hundreds of answers.
//!
//! Nothing in the cycle tells the two apart, but a pace over the reading
//! does: a window refuses it within half the window's length (a fixed
//! window's count runs out by then, a log's slack sooner), a ban over a
//! faster limiter does not. So once the reading held for ten of its
//! windows (ten seconds at the least, five minutes at the most), the next
//! probe doubles it, held for most of a window. If it holds, the host is
//! no window of that count: probes chain from there, doubling while they
//! hold. If it is refused, the window is confirmed and the host is not
//! tested again: the test cost about a window (its refusals hold a window
//! that counts them shut), a tenth of the time the reading had held.
//! Readings of windows under ten seconds, and a fleet's, are not tested.
//!
//! Tested first after a window's length, the steady table's logs and
//! HAProxy counters of 10 s lost 5 to 35 points in the minute measured
//! (BENCHMARKS.md §4).

use std::time::Duration;

use tokio::time::Instant;

use super::RateControl;

/// How far the test goes over the hold.
const TEST_STEP: f64 = 2.0;
/// A reading holds this many of its windows before it is tested: a
/// refused test costs about a window (its refusals hold a window that
/// counts them shut), a tenth of the time the reading held.
const TEST_AFTER_WINDOWS: f64 = 10.0;
/// Readings of shorter windows are not tested: bans are longer (fail2ban's
/// default `bantime` is ten minutes, `mod_evasive`'s ten seconds), and
/// each test of a window of 2 to 5 s cost 1 to 4 % of the minute after.
const TEST_WINDOW_LEAST: f64 = 10.0;
/// The shortest and the longest a reading holds before it is tested.
const TEST_AFTER_LEAST: f64 = 10.0;
const TEST_AFTER_MOST: f64 = 300.0;
/// The share of the window read that the test must hold for: a fixed
/// window's count runs out within half of it at twice the pace.
const TEST_HOLDS_SHARE: f64 = 0.6;

/// A reading to test, and where its test stands.
#[derive(Debug, Clone, Copy)]
pub(super) struct WindowTest {
    /// The window's length read, seconds.
    secs: f32,
    /// When the reading was made, and when its test is due.
    read_at: Instant,
    due: Instant,
    stage: Stage,
}

/// Where a reading's test stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Not yet due, or due and waiting for a probe.
    Waiting,
    /// The probe under way is the test.
    Running,
    /// A test was refused: the host is a window; no test again.
    Refused,
}

impl RateControl {
    /// A cycle read `secs` as a window's length and the estimate from its
    /// count: test it once it held a while, unless a test was refused
    /// before on this host (it is a window), the window is short, or a
    /// fleet shares the host.
    pub(super) fn test_reading(&mut self, now: Instant, secs: f64) {
        if self.window_test_refused() {
            return;
        }
        if self.shared() || secs < TEST_WINDOW_LEAST {
            self.window_test = None;
            return;
        }
        let wait = (TEST_AFTER_WINDOWS * secs).clamp(TEST_AFTER_LEAST, TEST_AFTER_MOST);
        self.window_test = Some(Box::new(WindowTest {
            secs: secs as f32,
            read_at: now,
            due: now + Duration::from_secs_f64(wait),
            stage: Stage::Waiting,
        }));
    }

    /// Whether a test of this host's readings was refused: it is a window.
    pub(super) fn window_test_refused(&self) -> bool {
        self.window_test
            .as_ref()
            .is_some_and(|t| t.stage == Stage::Refused)
    }

    /// Whether a reading's test is due at `now`: it held, and no probe
    /// toward a ceiling is left to go first.
    pub(super) fn window_test_due(&self, now: Instant) -> bool {
        self.ceiling.is_none()
            && self
                .window_test
                .as_ref()
                .is_some_and(|t| t.stage == Stage::Waiting && now >= t.due)
    }

    /// A probe starts: if a reading awaits its test, this is it, and goes
    /// [`TEST_STEP`] over the hold.
    pub(super) fn start_window_test(&mut self, now: Instant) {
        if !self.window_test_due(now) {
            return;
        }
        if let Some(test) = self.window_test.as_mut() {
            test.stage = Stage::Running;
            self.probe_step = TEST_STEP;
        }
    }

    /// How long the test under way must hold, if one is.
    pub(super) fn window_test_holds(&self) -> Option<Duration> {
        self.running_window_test().map(|t| {
            Duration::from_secs_f64(f64::from(t.secs) * TEST_HOLDS_SHARE).max(super::probe::PROBE_HOLDS)
        })
    }

    /// The probe held: if it was a test, the host is no window of the
    /// count read, and probes chain on from here.
    pub(super) fn window_test_held(&mut self) {
        if self.running_window_test().is_some() {
            self.window_test = None;
            self.counting_window = false;
        }
    }

    /// The test ended without holding (a refusal, a drain, a pause): the
    /// reading was a window's; no test again. A reading refused before
    /// its test (a probe toward a ceiling, a drain) was measured again:
    /// nothing to test.
    pub(super) fn window_test_ended(&mut self) {
        let Some(test) = self.window_test.as_deref_mut() else {
            return;
        };
        match test.stage {
            Stage::Running if !self.probing => test.stage = Stage::Refused,
            Stage::Waiting if self.last_loss.is_some_and(|at| at > test.read_at) => self.window_test = None,
            _ => {}
        }
    }

    fn running_window_test(&self) -> Option<&WindowTest> {
        self.window_test.as_deref().filter(|t| t.stage == Stage::Running)
    }
}
