//! A request that may not go yet. It waits for its host's pause to end, to
//! be admitted again, and for its pacing slot, owning an *unready* clone of
//! the inner service; only when it may go does it drive that clone ready and
//! call it, as tower's `Oneshot` does. So whatever the inner `poll_ready`
//! reserves (a `ConcurrencyLimit` permit, a `Buffer` slot) is never held
//! across a pause.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::task::{ready, Context, Poll};

use super::signal::Registration;
use tokio::time::Instant;
use tower_service::Service;

use super::adaptive::Admit;
use super::fleet_link::Budget;
use super::hosts::{HostName, HostState};
use super::permit::{AdaptivePermit, Lead};
use super::report::Report;
use super::shared::{Shared, Ticket};
use super::slot_timer::SlotTimer;
use crate::BoxError;

/// What the waiting request does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Sleeps until an instant: its host's pause ends, or its send slot.
    Sleep,
    /// Waits for a notification: a slot given back, a verdict change, the
    /// pacing lead passed on.
    Notified,
    /// Looks whether it may go.
    Look,
    /// May go: drives its service ready.
    Ready,
}

pub(crate) struct Wait<S, Req> {
    shared: Arc<Shared>,
    host: Arc<HostState>,
    /// An unready clone of the inner service.
    service: S,
    request: Option<Req>,
    step: Step,
    timer: SlotTimer,
    /// What [`Step::Notified`] waits on, registered before the last look.
    wake: [Option<Registration>; 2],
    /// It gave its admission back while its host was paused, so other hosts
    /// keep the slots; it is admitted again when the pause ends.
    readmit: bool,
    /// It is paced by its host's adaptive controller.
    paced: bool,
    /// The pacing lead it holds.
    lead: Option<Lead>,
    /// It waits in the pacing queue.
    queued: bool,
}

impl<S, Req> Wait<S, Req> {
    /// Waits `left_ms` (plus the pause's jitter) for the host's pause to
    /// end, then to be admitted again, then (`paced`) for a send slot.
    pub(crate) fn paused(
        shared: Arc<Shared>,
        host: Arc<HostState>,
        left_ms: u64,
        paced: bool,
        service: S,
        request: Req,
    ) -> Self {
        let now = shared.clock.precise_ms();
        let until = shared.clock.instant_of(resume_ms(&host, now + left_ms));
        let mut w = Self::new(shared, host, service, request, paced);
        w.sleep_until(until, false);
        w.readmit = true;
        w
    }

    /// Waits for a send slot and a permit of the host's controller.
    pub(crate) fn paced(shared: Arc<Shared>, host: Arc<HostState>, service: S, request: Req) -> Self {
        Self::new(shared, host, service, request, true)
    }

    fn new(shared: Arc<Shared>, host: Arc<HostState>, service: S, request: Req, paced: bool) -> Self {
        shared.metrics.waited();
        Self {
            shared,
            host,
            service,
            request: Some(request),
            step: Step::Look,
            timer: SlotTimer::new(),
            wake: [None, None],
            readmit: false,
            paced,
            lead: None,
            queued: false,
        }
    }

    /// Waits until the request may go, then sends it. What it takes on the
    /// way (admission, an adaptive permit) goes into `report`.
    pub(crate) fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        report: &mut Report,
    ) -> Poll<Result<S::Future, BoxError>>
    where
        S: Service<Req>,
        S::Error: Into<BoxError>,
    {
        loop {
            match self.step {
                Step::Sleep => {
                    ready!(self.timer.poll(cx));
                    self.step = Step::Look;
                }
                Step::Notified => {
                    ready!(self.poll_wake(cx));
                    self.step = Step::Look;
                }
                Step::Look => self.look(report),
                Step::Ready => {
                    ready!(self.service.poll_ready(cx)).map_err(Into::into)?;
                    let Some(request) = self.request.take() else {
                        return Poll::Ready(Err(crate::layer::error::Overloaded::new(
                            crate::Resources::NONE,
                        )
                        .into()));
                    };
                    report.sent_after_wait(self.shared.clock.precise_ms());
                    return Poll::Ready(Ok(self.service.call(request)));
                }
            }
        }
    }

    /// Decides the next step: the host is paused (again), it waits to be
    /// admitted, it waits for its pace, or it may go.
    fn look(&mut self, report: &mut Report) {
        let now = self.shared.clock.precise_ms();
        let left = self.host.remaining_ms(now);
        if left > 0 {
            let until = self.shared.clock.instant_of(resume_ms(&self.host, now + left));
            self.sleep_until(until, false);
            return;
        }
        if self.readmit {
            match self.admit() {
                Some(ticket) => {
                    report.ticket = ticket;
                    self.readmit = false;
                }
                None => return,
            }
        }
        if self.paced {
            match self.pace(report.host()) {
                Some(permit) => report.permit = Some(permit),
                None => return,
            }
        }
        self.step = Step::Ready;
    }

    /// Admission again after a pause; `None` (and [`Step::Notified`]) while
    /// the gate or the limit holds it back.
    fn admit(&mut self) -> Option<Option<Ticket>> {
        if let Ok(ticket) = self.shared.try_admit() {
            return Some(ticket);
        }
        // Register, then look again: a release in between is not lost.
        self.wake = [
            Some(self.shared.release.register()),
            Some(Registration::uncounted(self.shared.snapshotter.gate())),
        ];
        match self.shared.try_admit() {
            Ok(ticket) => {
                self.wake = [None, None];
                Some(ticket)
            }
            Err(_) => {
                self.step = Step::Notified;
                None
            }
        }
    }

    /// A send slot and a permit of the host's controller; `None` (and the
    /// step that waits for them) when it must wait.
    fn pace(&mut self, report_host: &HostName) -> Option<AdaptivePermit> {
        let cfg = self.shared.settings.adaptive()?;
        let at = Instant::now();
        let lead = self.lead.as_ref().map(|l| l.id);
        let (admit, depth, precise) = {
            let mut c = self.host.controller(cfg, at);
            if let Budget::WaitUntil(slot) = self.shared.fleet.budget(report_host, &mut c, at, lead) {
                drop(c);
                self.sleep_until(slot, false);
                return None;
            }
            let admit = c.admit(at, lead);
            // Woken from the pacing queue without taking the lead (pacing
            // ended, or the permits ran out): the next in the queue must
            // look too, or it sleeps with no leader to wake it.
            if std::mem::take(&mut self.queued) && matches!(admit, Admit::Now | Admit::Full) {
                c.wake_next_paced();
            }
            // Registered under the lock: a hand-over between the answer and
            // the first poll is not lost.
            if let Some(n) = c.waits_on(admit) {
                self.wake = [Some(n.register()), None];
                self.queued = admit == Admit::Queued;
            }
            let precise = matches!(admit, Admit::At(..)) && c.slots_to_the_microsecond();
            (admit, c.in_flight(), precise)
        };
        // The controller has settled the old lead: sent with it, kept it, or
        // passed it on.
        match admit {
            Admit::Now => {
                if let Some(l) = self.lead.take() {
                    l.disarm();
                }
                Some(AdaptivePermit::taken(Arc::clone(&self.host), at, depth))
            }
            Admit::At(slot, id) => {
                if lead != Some(id) {
                    if let Some(l) = self.lead.replace(Lead::new(Arc::clone(&self.host), id)) {
                        l.disarm();
                    }
                }
                self.sleep_until(slot, precise);
                None
            }
            Admit::Queued | Admit::Full => {
                if let Some(l) = self.lead.take() {
                    l.disarm();
                }
                self.step = Step::Notified;
                None
            }
        }
    }

    /// Sleeps until `at` (`precise`: to the microsecond).
    fn sleep_until(&mut self, at: Instant, precise: bool) {
        if precise {
            self.timer.reset_precise(at);
        } else {
            self.timer.reset(at);
        }
        self.step = Step::Sleep;
    }

    /// Ready when any registered notification fired.
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut woken = false;
        for n in self.wake.iter_mut().flatten() {
            woken |= n.poll(cx).is_ready();
        }
        if woken || self.wake.iter().all(Option::is_none) {
            self.wake = [None, None];
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// When the requests held by the pause that ends at `until_ms` resume: its
/// end plus up to a tenth of its length (at most one second), drawn once
/// per pause, so many clients paused alike do not return in the same
/// instant, while the requests of one client go out together, as one round
/// (one request spread from the next would meet the pause its neighbour's
/// answer just began, and the round would cost a pause per request).
fn resume_ms(host: &HostState, until_ms: u64) -> u64 {
    let started = host.pause_started_ms.load(Ordering::Acquire);
    let max = (until_ms.saturating_sub(started) / 10).min(1000);
    if max == 0 {
        return until_ms;
    }
    let seed = until_ms ^ *JITTER_SEED;
    until_ms + fastrand::Rng::with_seed(seed).u64(0..=max)
}

/// Per process, so two processes paused alike draw different jitters.
static JITTER_SEED: LazyLock<u64> = LazyLock::new(|| fastrand::u64(..));
