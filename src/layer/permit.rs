//! What a request holds from its host's adaptive controller: a permit while
//! it is in flight, and the pacing lead while it waits for the next send
//! slot. Both give themselves back on drop, so a cancelled request never
//! leaks either. Here, not in `adaptive/`, because they join a host's
//! state (`hosts.rs`) and the fleet's budget (`fleet_link.rs`) to its
//! controller: the controller itself knows neither.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

#[cfg(doc)]
use super::adaptive::Admit;
use super::adaptive::{AdaptiveConfig, Controller, Outcome};
use super::fleet_link::Budget;
use super::hosts::HostState;
use crate::retry_after::Announced;

/// A permit of a host's controller, held while the request is in flight;
/// given back with what the answer taught, or on drop.
#[derive(Debug)]
pub(crate) struct AdaptivePermit {
    host: Arc<HostState>,
    sent_at: Instant,
    /// Requests in flight to the host when this one was sent, itself included.
    depth: usize,
    released: bool,
}

impl AdaptivePermit {
    /// A permit if the host may be sent to now: no request leads its pacing
    /// queue, a permit is free and the pace has a slot. Changes nothing
    /// otherwise, so the caller can hand the request to a waiting future
    /// that asks again.
    /// `budget` asks the fleet sharing the host, if any, under the lock.
    #[inline]
    pub(crate) fn try_now(
        host: &Arc<HostState>,
        cfg: &AdaptiveConfig,
        now: Instant,
        budget: impl FnOnce(&mut Controller) -> Budget,
    ) -> Option<Self> {
        let mut c = host.controller(cfg, now);
        if budget(&mut c) != Budget::Go {
            return None;
        }
        c.try_admit_now(now)
            .then(|| Self::taken(Arc::clone(host), now, c.in_flight()))
    }

    /// The host it was taken from.
    pub(crate) fn host(&self) -> &HostState {
        &self.host
    }

    /// A permit the controller just granted at `sent_at`, at `depth`.
    pub(crate) fn taken(host: Arc<HostState>, sent_at: Instant, depth: usize) -> Self {
        Self {
            host,
            sent_at,
            depth,
            released: false,
        }
    }

    /// Gives the permit back with the answer's `outcome`; `pause` is what
    /// its `Retry-After` asked (the layer read it already, to pause the
    /// host), and what its headers `announced` of the host's limit (a
    /// quota, a rate) moves the pace.
    /// `learned` sees the host and its controller afterwards, under the
    /// lock.
    pub(crate) fn finish(
        mut self,
        outcome: Outcome,
        announced: Announced,
        pause: Option<Duration>,
        learned: impl FnOnce(&HostState, &mut Controller, Instant),
    ) {
        self.released = true;
        let Some(mut c) = self.host.existing_controller() else {
            return;
        };
        let now = Instant::now();
        c.on_answer(now, self.sent_at, self.depth, outcome, pause);
        c.release();
        c.on_announced(now, self.sent_at, &announced, self.depth);
        learned(&self.host, &mut c, now);
    }
}

impl Drop for AdaptivePermit {
    fn drop(&mut self) {
        if !self.released {
            if let Some(mut c) = self.host.existing_controller() {
                c.cancelled(self.sent_at);
            }
        }
    }
}

/// The pacing lead of a waiting request (see [`Admit::At`]): passed on to
/// the next queued request if this one is dropped before it sends.
#[derive(Debug)]
pub(crate) struct Lead {
    host: Arc<HostState>,
    pub(crate) id: u64,
    armed: bool,
}

impl Lead {
    pub(crate) fn new(host: Arc<HostState>, id: u64) -> Self {
        Self {
            host,
            id,
            armed: true,
        }
    }

    /// The controller already took the lead back.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        if self.armed {
            if let Some(mut c) = self.host.existing_controller() {
                c.abandon(self.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The lock is taken a little after the caller read the clock, as in
    /// real time: the controller made there must count the send it
    /// admits. Made at the lock's time, it left the first acceptance out,
    /// and a refusal that found nothing accepted set no pace.
    #[tokio::test(start_paused = true)]
    async fn a_controller_made_for_a_send_counts_that_send() {
        let (host, cfg) = (Arc::new(HostState::default()), AdaptiveConfig::default());
        let go = |_: &mut Controller| Budget::Go;
        let sent = Instant::now();
        tokio::time::advance(Duration::from_micros(200)).await;
        let first = AdaptivePermit::try_now(&host, &cfg, sent, go).expect("a new host admits");
        first.finish(Outcome::Success, Announced::default(), None, |_, _, _| {});
        let second = AdaptivePermit::try_now(&host, &cfg, Instant::now(), go).expect("unpaced");
        second.finish(Outcome::Throttled, Announced::default(), None, |_, _, _| {});
        let now = Instant::now();
        let rate = host.existing_controller().and_then(|mut c| c.rate(now));
        assert!(rate.is_some(), "a refusal after an acceptance paces the host");
    }
}
