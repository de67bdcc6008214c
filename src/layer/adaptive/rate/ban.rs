//! Bans: a limiter that, once passed, refuses every request for a while
//! whatever the pace, and says nothing of how long (fail2ban's `bantime`
//! answered with a 429; HAProxy's documented abuse pattern flags a client
//! in a stick table whose entry each request renews, so the ban lasts
//! until the client keeps quiet for the table's whole `expire`).
//! Cloudflare's rate limiting sends `Retry-After` with its ban, which
//! pauses the host as any `Retry-After` does.
//!
//! While it lasts, such a ban reads as a window that counts refusals
//! (`window.rs`): nothing accepted, the pace trickles. What the cycle
//! reads when it ends is no window's count, though: the host's rate
//! averaged with the ban's silence. And a ban that each refusal renews
//! never ended: the trickle's floor sent a request every 9 s into one of
//! 10 s. So:
//! - When the host accepts again, an estimate that held (without a loss)
//!   for longer than the stretch of refusals lasted, and is well over
//!   what the cycle reads, is held again (`ban_lifted`): a window that
//!   counts refusals, refused for that long, reads about what it took at
//!   such a pace; a ban reads less. A stretch that begins soon after such
//!   a return returns to half of it: that estimate never held.
//! - The trickle never rises to its floor, halves on down to `min_rate`
//!   once nothing accepted outlasts any window of a minute (`window.rs`'s
//!   floor), and a host whose stretch lasted a minute or more trickles
//!   at once, the next time, at the pace that ended it.
//! - When such a stretch ends and neither a held estimate, a round
//!   window's length nor a count that fits the latest sends explains it,
//!   the rate is searched again (`search_after_a_ban`): from twice the
//!   trickle, doubling with each acceptance. If the search is refused
//!   before it took a few, the host is a window that let those through,
//!   and the pace goes back to the trickle's; if later, the ban that
//!   search set off returns to half its pace, as after a return that did
//!   not hold.
//!
//! A ban shorter than any window that the opening's flood sets off reads
//! as a window of the few requests the opening took, over the ban's
//! length (a GCRA of 100/s behind a ban of 10 s read 5.7/s), and nothing
//! tells it from a window that counts refusals but a probe past that
//! count: `window_test.rs` makes that probe, once the reading has held
//! ten of its windows. A climb from every such reading at once, one probe
//! of 10 % held a window, then a chain, cost HAProxy's counters of 10 s
//! up to 17 points (the steady table's mean 94.5 → 91.8 %): its counter,
//! driven past its rate, refuses for most of the next period whatever the
//! pace. BENCHMARKS.md §4 has the tables.

use std::time::Duration;

use tokio::time::Instant;

use super::probe::SEARCH_GROWTH;
use super::{Basis, RateControl};
use crate::layer::adaptive::fit::SEARCH_STEP;

/// A held estimate this far over the cycle's reading was no window's
/// count (a window that counts refusals reads about what it took).
const HELD_OVER_READ: f64 = 1.25;
/// A stretch that began soon after a return to a held estimate returns
/// to this share of it: the estimate went past the ban's limit (a chain's
/// probe held a second while a burst of 50 hid it).
const RESTORED_AGAIN: f32 = 0.5;
/// A stretch of refusals shorter than this is a limiter's ordinary
/// answer to a pace over it, not a ban.
const STRETCH: Duration = Duration::from_secs(1);
/// An estimate held for less than this before a stretch held for
/// nothing (a far window's flood read 3 086/s at its limit, a second
/// before a drain's short stretch: held again, 10 % were refused), as a
/// probe holds only after as long.
const HELD_AT_LEAST: Duration = super::probe::PROBE_HOLDS;
/// A stretch that began at the hold of the very estimate the latest
/// stretch's end returned to, no probe under way, returns to this share of
/// it: that estimate is over the limit (a GCRA of 50/s behind a ban, its
/// estimate returned to 55.5/s, was banned every 23 s for ten minutes:
/// its burst hid the pace for 13 s each time).
const RESTORED_REFUSED: f32 = 0.85;
/// How long after a stretch that followed a settled estimate later
/// stretches are the same trouble (see [`RateControl::settled_floor`]).
const SETTLED_FOR: Duration = Duration::from_secs(10);
/// An estimate that held this many seconds before a stretch outlasting
/// every window of a minute held longer than any of them.
const LONGEST_WINDOW_S: f32 = 60.0;

/// What the latest stretch of refusals began from.
#[derive(Debug, Default)]
pub(super) struct Ban {
    /// When the stretch began, the measured estimate then (0 when none),
    /// and for how many seconds it had held without a loss.
    began: Option<Instant>,
    held: f32,
    quiet: f32,
    /// Nothing sent since the stretch began was accepted yet.
    open: bool,
    /// The stretch began while a probe was under way.
    from_probe: bool,
    /// The estimate the latest stretch's end held again (0 when the
    /// reading stood instead), and when.
    restored: f32,
    restored_at: Option<Instant>,
    /// The trickle's pace when a stretch longer than any window of a
    /// minute ended; 0 when none did.
    ended_at_pace: f32,
    /// The measured estimate the latest stretch that followed
    /// [`HELD_AT_LEAST`] without a loss began at, and when (see
    /// [`RateControl::settled_floor`]).
    settled: Option<(Instant, f32)>,
    /// The latest search after a ban (see
    /// [`RateControl::search_after_a_ban`]).
    search: Option<BanSearch>,
    /// A search after a ban was refused before it took
    /// [`MIN_EVIDENCE`](super::MIN_EVIDENCE): the host is a window that
    /// counts refusals and let few through, not a ban; no more such
    /// searches.
    not_a_ban: bool,
    /// The pace of that search when the latest stretch began with its
    /// first refusal; 0 when the latest stretch began otherwise.
    searched_to: f32,
}

/// A search after a ban: it grows by acceptances, and its first refusal
/// tells a ban from a window that let few through.
#[derive(Debug)]
struct BanSearch {
    /// The host's count of acceptances when it began.
    took_from: u32,
    /// When the pace last grew, and to what: the search is under way while
    /// the pace is still that and a guess.
    grown: (Instant, f32),
    /// A stretch of refusals began during it.
    refused: bool,
    /// The trickle's pace it began from, and when its next probe was due.
    from_pace: f32,
    probe_after: Instant,
}

impl RateControl {
    /// A new episode of refusals begins at `now`. It begins a new
    /// stretch of them unless nothing sent since the latest stretch began
    /// was accepted yet (the opening's episodes, a drain's, a trickle's
    /// far apart are one stretch): the estimate then, if measured, and
    /// how long it had held without a loss (since the latest loss,
    /// `Retry-After` pause or cut of the pace) are kept.
    pub(super) fn note_held(&mut self, now: Instant) {
        if self.ban.open {
            return;
        }
        self.search_refused(now);
        // Held since the latest loss, pause or cut, whichever came last: an
        // estimate a refusal had just measured (a far window's flood read
        // 3 086/s at its limit) held for nothing yet.
        let since = self.quiet_since().max(self.cut_at);
        let quiet = now.saturating_duration_since(since).as_secs_f32();
        let measured = self.basis == Basis::Measured && !self.starving;
        self.ban.began = Some(now);
        self.ban.from_probe = self.probing;
        self.ban.held = if measured { self.estimate as f32 } else { 0.0 };
        self.ban.quiet = quiet;
        self.ban.open = true;
        if measured && quiet >= HELD_AT_LEAST.as_secs_f32() {
            self.ban.settled = Some((now, self.estimate as f32));
        }
    }

    /// The least a step back at the hold goes to under a window that
    /// counts refusals, drained since the count began: the hold of the
    /// estimate held without a loss before the refusals of the last
    /// [`SETTLED_FOR`] began, if one was (stretches that follow within
    /// that time, a drain's, a window's that reopened and shut again, are
    /// the same trouble); 0 otherwise. A probe that seemed to hold filled
    /// the window a window later, and the count since the cut spans the
    /// stretch it stayed shut: HAProxy's counter of a minute at 10/s, shut
    /// for 1.5 s, drained, then accepting at the pace until refused again,
    /// read 2.3/s and held it for minutes. Refusals that go on past the
    /// trouble's first seconds drain the pace as any at the hold do.
    pub(super) fn settled_floor(&self, now: Instant) -> f64 {
        let drained = self
            .drain
            .as_ref()
            .is_some_and(|d| d.began_since(self.counted_from));
        match self.ban.settled {
            Some((_, held)) if self.counting_window && drained && self.settled_lately(now) => {
                f64::from(held) * self.hold()
            }
            _ => 0.0,
        }
    }

    /// Whether an estimate held without a loss before refusals that began
    /// within the last [`SETTLED_FOR`].
    pub(super) fn settled_lately(&self, now: Instant) -> bool {
        self.ban
            .settled
            .is_some_and(|(at, _)| now.saturating_duration_since(at) < SETTLED_FOR)
    }

    /// A request sent at `sent_at` was accepted at `now`: the first sent
    /// since a stretch of refusals began ends it. One that lasted a
    /// second or more without starving the pace (the cuts at the hold
    /// took it down instead) is read as the trickle's end is (see
    /// [`ban_lifted`](Self::ban_lifted)); a starved pace's end is read by
    /// `fed`.
    pub(super) fn stretch_ended(&mut self, now: Instant, sent_at: Instant) {
        if !self.ban.open || self.ban.began.is_none_or(|at| sent_at < at) {
            return;
        }
        self.ban.open = false;
        if !self.starving && self.refused_for(now) >= STRETCH.as_secs_f64() {
            self.ban_lifted(now, self.estimate);
        }
    }

    /// How long the host refused everything, from the stretch's first
    /// refusal to `now`, when it accepts again.
    pub(super) fn refused_for(&self, now: Instant) -> f64 {
        self.ban
            .began
            .map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64())
    }

    /// The host accepts again at `now` after a stretch of refusals, the
    /// cycle reading `read`: the estimate held before the stretch is held
    /// again if it held longer than the stretch lasted (than any window
    /// of a minute, when the stretch outlasted them all, which the
    /// trickle's pace then ended: see [`note_ban_ended`]) and is well
    /// over the reading; after a stretch that began soon after such a
    /// return, half the estimate returned to (see the module docs).
    /// Returns whether the estimate was so set.
    ///
    /// [`note_ban_ended`]: Self::note_ban_ended
    pub(super) fn ban_lifted(&mut self, now: Instant, read: f64) -> bool {
        self.ban.open = false;
        let beyond = self.beyond_any_window(now);
        let lasted = self.refused_for(now);
        // A minute or more refused: the trickle's pace may have ended it
        // (HAProxy's flag with `expire 5s`, cleared after 132 s once the
        // trickle's sends were 5 s apart; the ban a later probe set off
        // trickled from 1.5/s again, renewing it for 150 s).
        if beyond || lasted >= f64::from(LONGEST_WINDOW_S) {
            self.note_ban_ended();
        }
        let quiet = f64::from(self.ban.quiet);
        let held_longer = self.ban.held > 0.0
            && quiet >= HELD_AT_LEAST.as_secs_f64()
            && (quiet >= lasted || (beyond && self.ban.quiet >= LONGEST_WINDOW_S));
        // A stretch that began within its own length of a return: the
        // estimate returned to never held.
        let soon_after_return = self
            .ban
            .restored_at
            .zip(self.ban.began)
            .is_some_and(|(at, began)| began.saturating_duration_since(at).as_secs_f64() < lasted);
        // The estimate returned to last began this stretch at its hold.
        let refused_as_restored = !self.ban.from_probe
            && self.ban.restored > 0.0
            && (self.ban.held - self.ban.restored).abs() <= 1e-3 * self.ban.restored;
        let held = f64::from(if held_longer && refused_as_restored {
            RESTORED_REFUSED * self.ban.held
        } else if held_longer {
            self.ban.held
        } else if soon_after_return {
            RESTORED_AGAIN * self.ban.restored
        } else if self.ban.searched_to > 0.0 {
            // The search after a ban went past the rate and set off a
            // ban again: half its pace then, as after a return that never
            // held (the cycle reads the search's few seconds over the
            // ban's length: 2.7/s of a GCRA of 100/s, held for minutes).
            RESTORED_AGAIN * self.ban.searched_to
        } else {
            0.0
        });
        if held <= HELD_OVER_READ * read || held * self.hold() <= self.pace {
            self.ban.restored = 0.0;
            return false;
        }
        self.ban.restored = held as f32;
        self.ban.restored_at = Some(now);
        self.estimate = held;
        self.pace = held * self.hold();
        self.ceiling = None;
        self.restart_count(now);
        self.stepped_at = now;
        self.cut(now);
        // What began the stretch went past that estimate (a probe, or a
        // burst that hid one), and cost a ban; the next probe waits longer.
        self.probe_refused();
        self.probe_after = now + self.probe_wait.max(self.answers_between_probes());
        true
    }

    /// A stretch longer than any window of a minute ended at `now`, the
    /// cycle reading `read`, and no estimate held before it was restored:
    /// nothing says what the host allows now. The reading averaged the
    /// host's rate with minutes of refusals (the opening's few answers over
    /// the ban's length), and held, it kept a GCRA of 100/s at a send in
    /// 18 s for good once a ban of 10 s that each refusal renewed had
    /// ended. A search instead, from twice the trickle's pace, doubling
    /// with each acceptance (see [`grow_search_after_a_ban`]), unless the
    /// reading is above the search floor (a long window that reopened), and
    /// never again for a host whose search was refused before it took
    /// [`MIN_EVIDENCE`](super::MIN_EVIDENCE) (a log of 6 a minute that the
    /// trickle held shut for minutes: each search was refused from its
    /// second send). Not in a fleet, whose cycles read the host's rate.
    /// Returns whether it searches.
    ///
    /// [`grow_search_after_a_ban`]: Self::grow_search_after_a_ban
    pub(super) fn search_after_a_ban(&mut self, now: Instant, read: f64) -> bool {
        let floor = self.search_floor();
        if self.shared() || self.ban.not_a_ban || read * self.hold() > floor {
            return false;
        }
        self.basis = Basis::Guess;
        self.counting_window = false;
        self.ceiling = None;
        let (from_pace, probe_after) = (self.pace as f32, self.probe_after);
        self.estimate = (2.0 * self.pace).max(self.min_rate);
        self.settle(now);
        self.ban.search = Some(BanSearch {
            took_from: self.meter.total() as u32,
            grown: (now, self.pace as f32),
            refused: false,
            from_pace,
            probe_after,
        });
        true
    }

    /// A stretch of refusals begins at `now`: if it is the first during a
    /// search after a ban, that search took [`MIN_EVIDENCE`] or more (its
    /// pace then is kept, see [`ban_lifted`](Self::ban_lifted)), or it was
    /// a window that let a few through: back to the trickle's pace, which
    /// the window let through, as measured, and no such search again.
    ///
    /// [`MIN_EVIDENCE`]: super::MIN_EVIDENCE
    fn search_refused(&mut self, now: Instant) {
        self.ban.searched_to = 0.0;
        if !self.searching_after_a_ban() {
            return;
        }
        let took = self.meter.total() as u32;
        let Some(search) = self.ban.search.as_mut().filter(|s| !s.refused) else {
            return;
        };
        search.refused = true;
        let (took_from, from_pace, probe_after) = (search.took_from, search.from_pace, search.probe_after);
        if took.wrapping_sub(took_from) >= super::MIN_EVIDENCE {
            self.ban.searched_to = self.pace as f32;
            return;
        }
        self.ban.not_a_ban = true;
        self.basis = Basis::Measured;
        self.counting_window = true;
        self.pace = f64::from(from_pace);
        self.estimate = self.pace / self.hold();
        self.stepped_at = now;
        self.probe_after = probe_after;
    }

    /// Whether the pace is a search after a ban (see
    /// [`search_after_a_ban`](Self::search_after_a_ban)): it grows by
    /// acceptances, not by time.
    pub(super) fn searching_after_a_ban(&self) -> bool {
        self.basis == Basis::Guess
            && self
                .ban
                .search
                .as_ref()
                .is_some_and(|s| s.grown.1 == self.pace as f32)
    }

    /// An acceptance at `now` during a search after a ban: the pace
    /// doubles, and grows no faster than the opening's search does by
    /// time. From the trickle's pace, a search by time sent a log of 6 a
    /// minute, open again, seven requests in a second; by acceptances,
    /// a request that it refuses comes after its six.
    pub(super) fn grow_search_after_a_ban(&mut self, now: Instant) {
        if !self.searching_after_a_ban() {
            return;
        }
        let Some(search) = self.ban.search.as_mut() else {
            return;
        };
        let steps = now.saturating_duration_since(search.grown.0).as_secs_f64() / SEARCH_STEP.as_secs_f64();
        self.pace = (self.pace * SEARCH_GROWTH.powf(steps).min(2.0)).min(1e6);
        self.estimate = self.pace;
        search.grown = (now, self.pace as f32);
    }

    /// A stretch of a minute or more ends: the trickle's pace may have
    /// ended it (see [`trickle_as_the_last_ban_ended`]).
    ///
    /// [`trickle_as_the_last_ban_ended`]: Self::trickle_as_the_last_ban_ended
    fn note_ban_ended(&mut self) {
        self.ban.ended_at_pace = self.pace as f32;
    }

    /// The pace starves: a host whose earlier stretch lasted a minute or
    /// more (a ban that each refusal renews) trickles at once at
    /// the pace that ended it, not from a send a second down through
    /// minutes of halvings (each stretch of a ban of 10 s renewed so took
    /// two to three minutes).
    pub(super) fn trickle_as_the_last_ban_ended(&mut self) {
        let ended = f64::from(self.ban.ended_at_pace);
        if ended > 0.0 && ended < self.pace {
            self.pace = ended.max(self.min_rate);
            self.estimate = self.pace / self.hold();
        }
    }
}
