//! A process's part in a fleet's view of the host: the fleet's pauses,
//! its share, the fleet's answers and merged cycles (`fleet_fit.rs`).

use std::time::Duration;

use tokio::time::Instant;

use super::{Basis, RateControl, PROBE_GROWTH, PROBE_WAIT_CHEAP, TOP_PROBE_MAX};
use crate::layer::adaptive::fit::Fit;
use crate::layer::adaptive::fleet_fit::{Finished, FleetCycle};
use crate::layer::adaptive::recovery::Recovery;
use crate::tally::Tally;

/// The fleet's answers cut the pace at most once per this much of them
/// (ms): the paces they are compared with are a lease old.
pub(super) const LOAD_CUTS_APART_MS: u64 = 2000;

/// A process's estimate under this share of its share of the host's
/// limit, as the fleet's answers read it, starts from that share.
pub(super) const FAR_UNDER_LIMIT: f64 = 0.8;

/// The span of the fleet's answers a cut reads (`fleet::answers::KEPT`),
/// and a little more: they lag a lease.
pub(super) const LOAD_SPAN: Duration = Duration::from_millis(6500);

/// A fleet's fit under this share of a process's own view of the host's
/// rate is not adopted, when the view rests on [`VIEW_SENDS`] sends.
pub(super) const FLEET_FIT_UNDER_VIEW: f64 = 0.8;

/// How far over the hold a process probes when the fleet's opening
/// cycles fit nothing, and how many times.
pub(super) const OPENING_PROBE: f64 = 1.5;

pub(super) const OPENING_PROBES: u8 = 2;

/// A fleet's fit of two cycles whose range reaches this far over it is
/// confirmed by a probe to its top.
pub(super) const FLEET_TOP_PROBE_OVER: f64 = 1.10;

/// Whether a fleet's fit is confirmed at once by a probe to the top of
/// the range its cycles allow. A process's own fit is, past 4 % (see
/// `cycles.rs`); a fleet's, only past [`FLEET_TOP_PROBE_OVER`]. Merged
/// cycles carry every sender's jitter, and their first fits' ranges
/// reached 3.5-8 % over them whatever the fit's error: every process
/// probed at once, the fleet was refused, and the pause cost some 5 points
/// of the 25 seconds counted in 5 of 22 traced runs, an exact fit's
/// (500/s) among them. Held at the fit instead, the fleet confirms it at the
/// next probe.
pub(super) fn probed_at_top(f: &Fit) -> bool {
    f.cycles == 2 && f.top > FLEET_TOP_PROBE_OVER * f.rate
}

/// A process's own sends in a cycle that make its view of the host's rate
/// worth comparing a fleet's fit with.
pub(super) const VIEW_SENDS: usize = 100;

impl RateControl {
    /// Another process of a fleet was refused with `Retry-After`, and the
    /// host is paused here too: this cycle ends now as if with a refusal of
    /// its own. Each process's sends are its share of the fleet's, so a
    /// GCRA's cycles fit to its share of the rate and burst.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn on_fleet_pause(&mut self, now: Instant) {
        if self.quota.active(now) {
            return;
        }
        self.on_told(now, now, None);
    }

    /// In a fleet, this process's share of the host (one over the live
    /// processes; 1 alone).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn set_share(&mut self, share: f64) {
        self.fleet.get_or_insert_default().share = Some(share);
    }

    /// In a fleet, this process's share of the host as last set (1 before).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn fleet_share(&self) -> f64 {
        self.fleet
            .as_ref()
            .and_then(|f| f.share)
            .unwrap_or(1.0)
            .clamp(1e-3, 1.0)
    }

    /// In a fleet, counts an answer at `now` for the fleet's answers
    /// (`fleet::answers`): accepted, or refused for rate.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn count_fleet_answer(&mut self, now: Instant, accepted: bool) {
        self.fleet.get_or_insert_default().count_answer(now, accepted);
    }

    /// In a fleet, the answers counted since the fleet last took them.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn fleet_answers(&mut self) -> &mut Tally {
        &mut self.fleet.get_or_insert_default().answers
    }

    /// Other processes of a fleet send to the host too.
    pub(super) fn shared(&self) -> bool {
        self.fleet.as_ref().is_some_and(|f| f.shared())
    }

    /// Other processes send to the host too, and its refusals paused
    /// this process (its own `Retry-After`, or another's): a refused
    /// probe pauses every process.
    pub(super) fn paused_fleet(&self) -> bool {
        self.shared() && self.told_at.is_some()
    }

    /// In a fleet, the cycle that ended last, for the fleet to merge
    /// (once): an opening flood's once its answers are in (see
    /// `fleet_fit::FloodAnswers`).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn take_finished_cycle(&mut self, now: Instant) -> Option<Finished> {
        let fleet = self.fleet.as_mut()?;
        if !fleet.finished.as_ref()?.ready(now) {
            return None;
        }
        fleet.finished.take().map(Finished::without_refused)
    }

    /// In a fleet, an answer came (`refused`: a refusal for rate), or a
    /// request sent was dropped: counted for the opening flood's record.
    pub(crate) fn on_fleet_flood_answer(&mut self, refused: bool) {
        let unpaced = self.basis == Basis::None;
        if let Some(fleet) = self.fleet.as_mut() {
            fleet.flood_answer(unpaced, refused);
        }
    }

    /// In a fleet, the sequence number of the latest fleet cycle this
    /// controller read (0 for none).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn fleet_cycles_seen(&self) -> u64 {
        self.fleet.as_ref().map_or(0, |f| f.seen)
    }

    /// In a fleet: while the host refused, the processes' paces together
    /// ran over the most the fleet's answers show accepted in a second
    /// (`fleet::answers`). Each process's reading of the host was its share
    /// of a race, and their sum was too high; every process cuts its
    /// estimate by `factor` (bringing the sum under that peak), as a cut
    /// of its own: refusals of requests sent before it are no new loss. At
    /// most once per [`LOAD_CUTS_APART_MS`] of the fleet's answers (`through_ms`
    /// is where they end): the paces summed are a lease old, and the next
    /// reading must show this cut.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn on_fleet_load(&mut self, now: Instant, through_ms: u64, factor: f64) {
        if factor.is_nan() || factor >= 1.0 || !self.fleet_reading_applies(now, through_ms) {
            return;
        }
        self.estimate = (self.estimate * factor.max(0.5)).max(self.min_rate);
        self.probing = false;
        self.settle(now);
    }

    /// In a fleet: `share` is this process's share of what the fleet's
    /// answers show the host takes at its limit (`FleetLoad::at_limit`),
    /// and `room` what that limit leaves over the live processes' paces
    /// together. A pace far under its share was this process's reading of
    /// its own part of a race: it starts from its share instead, as far as
    /// the room goes, and probes soon (the reading is a floor; the second
    /// it was read in was not all at the limit). Under the same conditions
    /// and at most as often as a cut. Without the room, four processes on
    /// a sliding log of 500/s that counts refusals, three of them at 118,
    /// 98 and 178/s, raised the fourth from 35 to 113/s: 507/s together,
    /// and the log refused for seconds.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn on_fleet_limit(&mut self, now: Instant, through_ms: u64, share: f64, room: f64) {
        // `f64::min` ignores a NaN share: tested apart.
        let target = share.min(self.pace + room.max(0.0));
        if share.is_nan() || self.estimate >= FAR_UNDER_LIMIT * share || target <= self.estimate {
            return;
        }
        if !self.fleet_reading_applies(now, through_ms) {
            return;
        }
        self.estimate = target.max(self.min_rate);
        self.probing = false;
        self.settle(now);
        self.probe_after = self.probe_after.min(now + PROBE_WAIT_CHEAP);
    }

    /// Whether a reading of the fleet's answers through `through_ms` may
    /// move this process's estimate now, and if so, records that it does.
    /// Only a measured estimate moves: a search is stopped by its own
    /// refusals. Not while the pace trickles for a window to drain, which
    /// is lower already; nor within the fleet's answers' span of a
    /// `Retry-After` pause: a second of sending cut short by a pause holds
    /// less than the rate, and the fleet's cycles measure such a limiter
    /// (`fleet_fit.rs`). At most once per [`LOAD_CUTS_APART_MS`] of them.
    fn fleet_reading_applies(&mut self, now: Instant, through_ms: u64) -> bool {
        let paused_lately = self.resume_pending
            || (self.told_at.is_some() && now.saturating_duration_since(self.resumed_at) < LOAD_SPAN);
        let measured = self.basis == Basis::Measured && !self.starving;
        let Some(fleet) = self.fleet.as_mut() else {
            return false;
        };
        let recent = through_ms < fleet.load_cut_ms.saturating_add(LOAD_CUTS_APART_MS);
        if !fleet.shared() || recent || paused_lately || !measured {
            return false;
        }
        fleet.load_cut_ms = through_ms;
        true
    }

    /// The fleet's latest cycle: when it and the fleet's cycles before it
    /// fit a GCRA, this process paces its `share` of that rate, whatever
    /// its own cycles fitted (see `fleet_fit.rs`). The fleet's opening
    /// flood sets where its search starts.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn on_fleet_cycle(&mut self, now: Instant, cycle: &FleetCycle, share: f64) {
        let search_floor = self.search_floor();
        let Some(fleet) = self.fleet.as_mut() else {
            return;
        };
        let &FleetCycle {
            seq,
            end_us,
            fits,
            processes,
            complete,
            replaces,
            ref log,
        } = cycle;
        fleet.seen = seq;
        // The cycle merged again with records that came late: fitted in
        // place of the merge without them (a merge again is never the
        // first, so the opening flood's guess below stands, and a fit
        // that fails again probes no more than the first did).
        let again = replaces && fleet.take_back(end_us);
        let alone = !fleet.shared();
        // This process's view of the host: its estimate over the part of
        // the fleet's sends it sent (not its share: after a search, one
        // process may be sending most of them).
        let part = (fleet.own_sends as f64 / log.len().max(1) as f64).min(1.0);
        let view = if self.estimate > 0.0 && part > 0.0 {
            self.estimate / part
        } else {
            0.0
        };
        let fitted = fleet.fit(end_us, fits, log, view);
        // Every process that sent in the cycle takes a share of it: a
        // process sending a few a second leases rarely, and the others
        // counted it out (three processes of four took a third each of a
        // fit, and were refused within a second).
        let share = share.min(1.0 / processes.max(1) as f64);
        if !fits && seq == 1 && !alone && self.basis == Basis::Guess {
            // The fleet's opening flood: each process's part of it is
            // whatever its requests raced to, and so was its guess (1 to
            // 42/s for four processes, where the flood took 55). A process
            // that guessed 1/s searched at a few a second, heard of each
            // pause at its next send, up to a second late, and the others
            // merged the fleet's cycles without its sends. Each process
            // searches from its share of what the fleet was accepted
            // (every send up to the refused one) over its sending time,
            // a second at least, instead.
            let taken = log.iter().filter(|&&t| t <= 0.0).count() as f64;
            let secs = f64::from(-log.first().copied().unwrap_or(0.0)).max(1.0);
            let guess = (taken / secs * share).max(search_floor);
            if guess > self.estimate {
                self.estimate = guess;
                self.pace = guess;
            }
        }
        if alone || self.quota.active(now) {
            // Alone, its own cycles are the fleet's, and its own fit
            // (which knows its probes) stands. Quota headers set the pace.
            return;
        }
        // A fit far under this process's own view of the host is not
        // believed when that view rests on enough of its own sends and the
        // merge may have missed a process's sends, which fits low: its own
        // view stands, and the next pause fits again. A view from a few
        // sends (a small part of a short cycle: one process read 892/s
        // from ten of 161) says nothing, and refused an exact fit. Nor
        // does any view against a merge of every live process's sends:
        // a process's own fit of its part of a search read 818/s where
        // the fleet's fit was 500, and the process that kept it resumed
        // at 430 of the fleet's 500/s and was refused within 0.2 s.
        let credible = fleet.own_sends >= VIEW_SENDS && !complete;
        let Some(rate) = fitted
            .map(|f| f.rate)
            .filter(|&r| !credible || r >= FLEET_FIT_UNDER_VIEW * view)
        else {
            if fits
                && !again
                && fitted.is_none()
                && fleet.paired()
                && !fleet.fitted
                && fleet.opening_probes < OPENING_PROBES
            {
                // The fleet's first paced cycles fit nothing (a send's
                // jitter on the network moves a merged cycle's excess by a
                // few), and each process paces what it fitted of its own
                // share: four such fits summed to 76-105 % of the rate, and
                // a sum under it held until the next probe, half a minute
                // on. Every process probes half as far again now: a sum
                // under the rate is refused within a second or two, a
                // cycle at one pace, which the fleet fits with the one
                // held before it.
                fleet.opening_probes += 1;
                self.probe_after = now;
                self.probe_step = OPENING_PROBE;
            }
            return;
        };
        fleet.fitted = true;
        // What its own cycles said (their fit, the probes it planned, a
        // fall from a share it held alone) gives way.
        self.estimate = (rate * share).max(self.min_rate);
        self.basis = Basis::Measured;
        self.pace = (self.estimate * self.hold()).max(self.min_rate);
        self.probing = false;
        self.chained = false;
        self.probe_step = PROBE_GROWTH;
        self.recovery = Recovery::default();
        self.probe_after = now + self.probe_wait.max(self.answers_between_probes());
        if let Some(f) = fitted.filter(probed_at_top) {
            // As with its own cycles: two allow a wide range of rates, and
            // a probe at its top now narrows it (every process at once: the
            // fleet's pace goes to the top). Only a range far wider than
            // the jitter of merged cycles (see `probed_at_top`).
            self.probe_after = now;
            self.probe_step = (f.top / (f.rate * self.hold())).min(TOP_PROBE_MAX);
            self.top_probe = true;
        }
    }
}
