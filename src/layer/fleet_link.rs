//! The layer's link to a fleet of processes sharing hosts through Redis
//! (feature `redis`, [`crate::fleet`]): a `Retry-After` any process got
//! pauses the host here too, the processes together spend one send budget
//! per paced host, and a host's learned rate is shared so a new process
//! starts at it. A pause another process started ends this process's
//! controller cycle as its own refusal would: each process sends its share
//! of the fleet's requests, so its cycles fit its share of a GCRA's rate.
//! Every answer is counted for the fleet's answers, and a host's pace is
//! cut when the fleet's paces together ran over what it was accepted in a
//! second while refused, or raised to its share of that when far under it
//! (`fleet::answers`).
//! `FleetLink` is what the layer holds: without a fleet (or without the
//! feature) each of its methods is a no-op the compiler removes.
//!
//! A burst of refusals that reaches every process at once is one loss for
//! the fleet, not one per process: each process paces only its share, and
//! its controller cuts that share at most once per round trip (a refusal of
//! a request sent before its last cut is not a new loss). Every share cut
//! once is the fleet's rate cut once. A fleet seed is taken only by a
//! controller with no estimate of its own, so no cut is applied twice
//! through the shared rate either. ([`Fleet::loss_epoch`](crate::fleet::Fleet::loss_epoch)
//! is for callers that pace the whole host's rate from one shared value;
//! the layer has no such value to cut.)

use tokio::time::Instant;

/// What the fleet says about sending to a host now.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Budget {
    /// Send (a leased slot was spent, or there is no fleet budget to keep).
    Go,
    /// No slot yet: look again then.
    WaitUntil(Instant),
}

#[cfg(feature = "redis")]
mod linked {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use tokio::time::Instant;

    use super::Budget;
    use crate::fleet::{unix_us, CycleRecord, Fleet, FleetStats, Learned, Slot};
    use crate::layer::adaptive::Controller;
    use crate::layer::hosts::{HostName, HostState};

    /// The fleet this layer shares its hosts with, if any.
    #[derive(Debug, Default)]
    pub(crate) struct FleetLink(Option<Fleet>);

    /// How far over this process's view of the host's rate (and over the
    /// fleet's paces together) the fleet's schedule goes.
    const BUDGET_ROOM: f64 = 1.1;

    impl FleetLink {
        /// A link to `fleet`, or none.
        pub(crate) fn new(fleet: Option<Fleet>) -> Self {
            Self(fleet)
        }

        /// The pause a refusal's `Retry-After` asks of the host (`asked`),
        /// as the layer takes it. In a fleet, `Retry-After: 0` pauses no
        /// process, so it ends no fleet cycle (`fleet::cycle`) and the
        /// processes fitted their own parts of the host: four held 77-85 %
        /// of a GCRA that four processes without Redis got 99.9 % of. There
        /// it is a refusal without `Retry-After`, which the fleet's answers
        /// measure (`fleet::answers`).
        pub(crate) fn pause_asked(&self, asked: Option<Duration>) -> Option<Duration> {
            asked.filter(|d| self.0.is_none() || !d.is_zero())
        }

        /// The fleet's state, for [`LayerStats`](crate::LayerStats).
        pub(crate) fn stats(&self) -> Option<FleetStats> {
            self.0.as_ref().map(Fleet::stats)
        }

        /// Milliseconds left in a pause another process recorded for `host`,
        /// merged into this process's state for it by `pause_here` (given the
        /// pause's end, it returns the host if its pause grew).
        pub(crate) fn paused_ms(
            &self,
            name: &HostName,
            now_ms: u64,
            pause_here: impl FnOnce(u64) -> Option<Arc<HostState>>,
        ) -> Option<u64> {
            let fleet = self.0.as_ref()?;
            let until = fleet.paused_until(name.as_str())?;
            let left = until.duration_since(SystemTime::now()).ok()?.as_millis() as u64;
            (left > 0).then(|| {
                // A pause this process did not start: for its controller, the
                // cycle since the last pause ends here too.
                if let Some(host) = pause_here(now_ms + left) {
                    if let Some(mut c) = host.existing_controller() {
                        let now = Instant::now();
                        c.on_fleet_pause(now);
                        self.publish_cycle(name, &mut c, now);
                    }
                }
                left
            })
        }

        /// Tells the fleet `host` asked for a pause of `wait`.
        pub(crate) fn publish_pause(&self, name: &HostName, wait: Duration) {
            if let Some(fleet) = &self.0 {
                fleet.pause(name.as_str(), SystemTime::now() + wait);
            }
        }

        /// Whether this process may send to `host` now, for a request holding
        /// `lead` in the host's pacing queue. The fleet's budget is the whole
        /// host's rate: this process's pace over its share. A controller with
        /// no rate of its own follows the fleet's, times its share. A slot is
        /// leased only for a request the controller would send now: one the
        /// local pace holds back spends none.
        pub(crate) fn budget(
            &self,
            name: &HostName,
            c: &mut Controller,
            now: Instant,
            lead: Option<u64>,
        ) -> Budget {
            let Some(fleet) = &self.0 else {
                return Budget::Go;
            };
            let host = name.as_str();
            let seen = c.rate_control().fleet_cycles_seen();
            let view = fleet.view(host, seen, c.rate_control().fleet_answers());
            let share = view.share.clamp(1e-3, 1.0);
            c.set_share(share);
            if let Some(load) = view.load {
                if let Some(factor) = load.cap() {
                    c.rate_control().on_fleet_load(now, load.through_ms, factor);
                }
                // Read once the fleet is calm: while a process drains or
                // resumes after refusals, its pace is not the one it
                // holds, and the room the paces leave is not there.
                if let Some(limit) = load.at_limit().filter(|_| load.refused == 0) {
                    let room = limit - load.paces;
                    c.rate_control()
                        .on_fleet_limit(now, load.through_ms, limit * share, room);
                }
            }
            if let Some(cy) = view.cycle {
                c.rate_control().on_fleet_cycle(now, &cy, share);
            }
            if let Some(l) = view.learned.filter(|_| !c.estimate_is_own()) {
                c.seed(now, l.rate * share, l.measured);
            }
            let Some(rate) = c.rate(now) else {
                return Budget::Go;
            };
            if !c.would_admit(now, lead) {
                return Budget::Go;
            }
            // This process paces its share; over the share, its view of the
            // whole host's rate. The processes' views meet through the rate
            // each one learns and shares.
            // With a little room: each process's slots take its share of the
            // fleet's schedule exactly when every view agrees, so without room
            // any jitter, or shares that are not equal, would let the budget
            // bind below what the paces together allow. The budget is there to
            // stop processes that together claim far more than the host's rate.
            match fleet.try_send_with_room(host, rate / share, BUDGET_ROOM, now) {
                // A search is not held to the schedule (its slot is still
                // asked for, so the fleet counts this process and its pace):
                // no rate is known to keep, and the schedule follows the
                // paces a lease behind, 100-250 ms of a search growing 1.25×
                // per 100 ms. Held to it, the fleet's searches took 3 s where
                // one process's takes 1, and crawled into the measured time.
                Slot::WaitUntil(_) if !c.rate_is_measured() => Budget::Go,
                Slot::WaitUntil(at) => {
                    // The fleet's budget binds where the local pace would: a
                    // probe goes on as if the pace held requests back.
                    c.pace_bound(now);
                    Budget::WaitUntil(at)
                }
                // Redis is away: the local controller goes on alone, at the
                // pace it learned for this process (its share, started from the
                // fleet's rate times the share, and cut by its own refusals).
                Slot::Granted | Slot::Local { .. } => Budget::Go,
            }
        }

        /// Hands the cycle this host's controller ended last (if any, once,
        /// and a flood's once answered by `now`) to the fleet, which merges
        /// every process's into the fleet's.
        fn publish_cycle(&self, name: &HostName, c: &mut Controller, now: Instant) {
            let Some(fleet) = &self.0 else {
                return;
            };
            let Some(f) = c.rate_control().take_finished_cycle(now) else {
                return;
            };
            let ago = now.saturating_duration_since(f.end);
            let end = SystemTime::now()
                .checked_sub(ago)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            fleet.publish_cycle(
                name.as_str(),
                CycleRecord::from_log(unix_us(end), f.told, f.fits, &f.log),
            );
        }

        /// After an answer from `host` (`accepted`: accepted, refused for
        /// rate, or neither), counts it for the fleet's answers and shares
        /// what this host's controller learned, at most once a second and
        /// only when it moved by more than 5 %: the rate as the whole fleet
        /// sees it (this process's estimate over its share).
        pub(crate) fn on_answer(
            &self,
            name: &HostName,
            host: &HostState,
            c: &mut Controller,
            now: Instant,
            accepted: Option<bool>,
        ) {
            let Some(fleet) = &self.0 else {
                return;
            };
            // Counted here, handed to the fleet with the next send's look
            // at it: no lookup in the fleet's cache per answer.
            if let Some(accepted) = accepted {
                c.rate_control().count_fleet_answer(now, accepted);
            }
            self.publish_cycle(name, c, now);
            // A seed is the fleet's own knowledge: nothing new to tell it.
            if !c.estimate_is_own() {
                return;
            }
            let limits = c.snapshot(now);
            let Some(estimate) = limits.estimate else {
                return;
            };
            let rate = estimate / c.rate_control().fleet_share();
            if host.should_publish(now, rate) {
                fleet.publish_learned(
                    name.as_str(),
                    Learned {
                        rate,
                        measured: limits.measured,
                        last_loss: None,
                    },
                );
            }
        }
    }
}

#[cfg(feature = "redis")]
pub(crate) use linked::*;

#[cfg(not(feature = "redis"))]
mod unlinked {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::Budget;
    use crate::layer::adaptive::Controller;
    use crate::layer::hosts::{HostName, HostState};

    /// Without the `redis` feature: no fleet, and every call a no-op.
    #[derive(Debug, Default)]
    pub(crate) struct FleetLink;

    impl FleetLink {
        /// Without the `redis` feature: the pause asked, as asked.
        #[inline(always)]
        pub(crate) fn pause_asked(&self, asked: Option<Duration>) -> Option<Duration> {
            asked
        }

        /// Without the `redis` feature: never paused by others.
        #[inline(always)]
        pub(crate) fn paused_ms(
            &self,
            _: &HostName,
            _: u64,
            _: impl FnOnce(u64) -> Option<Arc<HostState>>,
        ) -> Option<u64> {
            None
        }

        /// Without the `redis` feature: nothing to tell.
        #[inline(always)]
        pub(crate) fn publish_pause(&self, _: &HostName, _: Duration) {}

        /// Without the `redis` feature: always go.
        #[inline(always)]
        pub(crate) fn budget(&self, _: &HostName, _: &mut Controller, _: Instant, _: Option<u64>) -> Budget {
            Budget::Go
        }

        /// Without the `redis` feature: nothing to count or share.
        #[inline(always)]
        pub(crate) fn on_answer(
            &self,
            _: &HostName,
            _: &HostState,
            _: &mut Controller,
            _: Instant,
            _: Option<bool>,
        ) {
        }
    }
}

#[cfg(not(feature = "redis"))]
pub(crate) use unlinked::*;

#[cfg(all(test, feature = "redis"))]
mod tests {
    use std::time::Duration;

    use super::FleetLink;
    use crate::fleet::{Fleet, FleetConfig};

    #[tokio::test]
    async fn a_retry_after_of_zero_asks_no_pause_only_in_a_fleet() {
        // Nothing listens on port 1: the fleet stays local, and is a fleet
        // all the same.
        let config = FleetConfig::builder("redis://127.0.0.1:1/", "zero")
            .build()
            .expect("valid config");
        let linked = FleetLink::new(Some(Fleet::start(config).expect("inside a runtime")));
        let alone = FleetLink::new(None);
        let (zero, one) = (Some(Duration::ZERO), Some(Duration::from_secs(1)));
        assert_eq!(alone.pause_asked(zero), zero);
        assert_eq!(linked.pause_asked(zero), None);
        assert_eq!(linked.pause_asked(one), one);
        assert_eq!(linked.pause_asked(None), None);
    }
}
