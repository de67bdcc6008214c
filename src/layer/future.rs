//! Future types.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::sync::futures::OwnedNotified;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use super::adaptive::{Admit, Outcome};
use super::error::Overloaded;
use super::hosts::HostState;
use super::http_parts::HttpResponse;
use super::registry::LayerRef;
use super::shared::{Shared, Ticket};

use crate::BoxError;

/// What the future needs once the answer arrives.
#[derive(Debug)]
pub(crate) struct Tail {
    pub(crate) layer: LayerRef,
    pub(crate) key: u64,
    pub(crate) sent_ms: u64,
    pub(crate) ticket: Option<Ticket>,
    pub(crate) permit: Option<Box<AdaptivePermit>>,
    /// Report a success too: some host was paused recently.
    pub(crate) watch: bool,
}

/// A permit of a host's adaptive controller, held while the request is in
/// flight; given back with what the answer taught, or on drop.
#[derive(Debug)]
pub(crate) struct AdaptivePermit {
    host: Arc<HostState>,
    sent_at: Instant,
    /// Requests in flight to the host when this one was sent, itself included.
    depth: usize,
    released: bool,
}

impl AdaptivePermit {
    pub(crate) fn new(host: Arc<HostState>, sent_at: Instant, depth: usize) -> Box<Self> {
        Box::new(Self {
            host,
            sent_at,
            depth,
            released: false,
        })
    }

    /// `pause` is what the answer's `Retry-After` asked (the layer read it
    /// already, to pause the host).
    fn finish(&mut self, outcome: Outcome, headers: Option<&http::HeaderMap>, pause: Option<Duration>) {
        self.released = true;
        // Read before taking the lock; most answers carry no header at all.
        let quota = headers
            .filter(|h| !h.is_empty())
            .and_then(|h| crate::retry_after::quota(h, std::time::SystemTime::now()));
        let Some(mut c) = self.host.existing_controller() else {
            return;
        };
        let now = Instant::now();
        c.on_answer(now, self.sent_at, self.depth, outcome, pause);
        c.release();
        if let Some(q) = quota {
            c.on_quota(now, q.remaining, q.reset_lo, q.reset_hi);
        }
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

/// A request waiting to be sent: for its host's pause to end, and under
/// `Adaptive` for its pacing slot and a permit.
pub(crate) struct HostWait<S, Req> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) host: Arc<HostState>,
    pub(crate) service: S,
    pub(crate) request: Req,
    sleep: Pin<Box<Sleep>>,
    notified: Option<Pin<Box<OwnedNotified>>>,
    /// Woken on a verdict change, while waiting to be admitted again.
    gate: Option<Pin<Box<OwnedNotified>>>,
    adaptive: bool,
    /// Under `Adaptive`, the pacing lead this request holds.
    lead: Option<Lead>,
    /// Under `Adaptive`, it waits in the pacing queue.
    queued: bool,
    /// The request gave its admission back while its host was paused, so
    /// other hosts keep the slots; it is admitted again when the pause ends.
    readmit: bool,
}

impl<S, Req> HostWait<S, Req> {
    /// Waits `left_ms` (plus jitter) for the host's pause to end.
    pub(crate) fn paused(
        shared: Arc<Shared>,
        host: Arc<HostState>,
        left_ms: u64,
        service: S,
        request: Req,
    ) -> Self {
        let now = shared.clock.precise_ms();
        let until = shared.clock.instant_of(resume_ms(&host, now + left_ms));
        let adaptive = shared.settings.policy == super::GatePolicy::Adaptive;
        let mut w = Self::new(shared, host, until, None, adaptive, service, request);
        w.readmit = true;
        w
    }

    /// Waits for what the adaptive controller said.
    pub(crate) fn admitted(
        shared: Arc<Shared>,
        host: Arc<HostState>,
        admit: Admit,
        notified: Option<Pin<Box<OwnedNotified>>>,
        service: S,
        request: Req,
    ) -> Self {
        let (until, lead) = match admit {
            Admit::At(at, id) => (at, Some(Lead::new(Arc::clone(&host), id))),
            Admit::Now | Admit::Queued | Admit::Full => (Instant::now(), None),
        };
        let queued = admit == Admit::Queued;
        let mut w = Self::new(shared, host, until, lead, true, service, request);
        w.notified = notified;
        w.queued = queued;
        w
    }

    fn new(
        shared: Arc<Shared>,
        host: Arc<HostState>,
        until: Instant,
        lead: Option<Lead>,
        adaptive: bool,
        service: S,
        request: Req,
    ) -> Self {
        Self {
            shared,
            host,
            service,
            request,
            sleep: Box::pin(tokio::time::sleep_until(until)),
            notified: None,
            gate: None,
            adaptive,
            lead,
            queued: false,
            readmit: false,
        }
    }
}

/// The pacing lead of a waiting request (see [`Admit::At`]): passed on to
/// the next queued request if this one is dropped before it sends.
#[derive(Debug)]
struct Lead {
    host: Arc<HostState>,
    id: u64,
    armed: bool,
}

impl Lead {
    fn new(host: Arc<HostState>, id: u64) -> Self {
        Self {
            host,
            id,
            armed: true,
        }
    }

    /// The controller already took the lead back.
    fn disarm(mut self) {
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

/// Waits on `released` (already registered, so a release between the
/// controller's answer and the first poll is not lost).
pub(crate) fn registered(released: &Arc<tokio::sync::Notify>) -> Pin<Box<OwnedNotified>> {
    let mut n = Box::pin(Arc::clone(released).notified_owned());
    n.as_mut().enable();
    n
}

/// When the requests held by the pause that ends at `until_ms` resume: its
/// end plus up to a tenth of its length (at most one second), drawn once
/// per pause, so many clients paused alike do not return in the same
/// instant, while the requests of one client go out together, as one round
/// (one request spread from the next would meet the pause its neighbour's
/// answer just began, and the round would cost a pause per request).
fn resume_ms(host: &HostState, until_ms: u64) -> u64 {
    let started = host.pause_started_ms.load(std::sync::atomic::Ordering::Acquire);
    let max = (until_ms.saturating_sub(started) / 10).min(1000);
    if max == 0 {
        return until_ms;
    }
    let seed = until_ms ^ *JITTER_SEED;
    until_ms + fastrand::Rng::with_seed(seed).u64(0..=max)
}

/// Per process, so two processes paused alike draw different jitters.
static JITTER_SEED: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| fastrand::u64(..));

pin_project! {
    /// Response future of [`SnapshotService`](crate::layer::SnapshotService).
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req>,
        tail: Tail,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        Called {
            #[pin]
            fut: S::Future,
        },
        Waiting {
            wait: Option<Box<HostWait<S, Req>>>,
        },
        Rejected {
            error: Box<Overloaded>,
        },
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    #[inline]
    pub(crate) fn called(fut: S::Future, tail: Tail) -> Self {
        Self {
            state: State::Called { fut },
            tail,
        }
    }

    pub(crate) fn waiting(wait: HostWait<S, Req>, tail: Tail) -> Self {
        Self {
            state: State::Waiting {
                wait: Some(Box::new(wait)),
            },
            tail,
        }
    }

    pub(crate) fn rejected(error: Overloaded, tail: Tail) -> Self {
        Self {
            state: State::Rejected {
                error: Box::new(error),
            },
            tail,
        }
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Response: HttpResponse,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { fut } => {
                    let result = ready!(fut.poll(cx));
                    let tail = &mut *this.tail;
                    let ticket = tail.ticket.take();
                    let permit = tail.permit.take();
                    match &result {
                        Ok(response) => {
                            let status = response.status();
                            let mut pause = None;
                            if status.as_u16() >= 400 || tail.watch {
                                let shared = match ticket.as_ref().and_then(Ticket::shared) {
                                    Some(s) => Some(Arc::clone(s)),
                                    None => tail.layer.get(),
                                };
                                if let Some(shared) = shared {
                                    pause =
                                        shared.on_answer(tail.key, tail.sent_ms, status, response.headers());
                                }
                            }
                            if let Some(mut p) = permit {
                                p.finish(outcome_of(status), Some(response.headers()), pause);
                            }
                        }
                        Err(_) => {
                            if let Some(mut p) = permit {
                                p.finish(Outcome::Loss, None, None);
                            }
                        }
                    }
                    drop(ticket);
                    return Poll::Ready(result.map_err(Into::into));
                }
                StateProj::Waiting { wait } => {
                    let Some(w) = wait.as_mut() else {
                        return Poll::Ready(Err(Overloaded::new(crate::Resources::NONE).into()));
                    };
                    if w.notified.is_some() || w.gate.is_some() {
                        let mut woken = false;
                        for n in [&mut w.notified, &mut w.gate].into_iter().flatten() {
                            woken |= n.as_mut().poll(cx).is_ready();
                        }
                        if !woken {
                            return Poll::Pending;
                        }
                        w.notified = None;
                        w.gate = None;
                    } else {
                        ready!(w.sleep.as_mut().poll(cx));
                    }
                    let now = w.shared.clock.precise_ms();
                    let left = w.host.remaining_ms(now);
                    if left > 0 {
                        // Paused (again) meanwhile: wait for the end.
                        let until = w.shared.clock.instant_of(resume_ms(&w.host, now + left));
                        w.sleep.as_mut().reset(until);
                        continue;
                    }
                    if w.readmit {
                        let mut admitted = w.shared.try_admit();
                        if admitted.is_err() {
                            // Register, then look again: a release in between
                            // is not lost.
                            w.notified = Some(registered(&w.shared.release));
                            w.gate = Some(registered(w.shared.snapshotter.gate()));
                            admitted = w.shared.try_admit();
                        }
                        match admitted {
                            Ok(ticket) => {
                                this.tail.ticket = ticket;
                                w.readmit = false;
                                w.notified = None;
                                w.gate = None;
                            }
                            Err(_) => continue,
                        }
                    }
                    if w.adaptive {
                        let at = Instant::now();
                        let lead = w.lead.as_ref().map(|l| l.id);
                        let (admit, depth) = {
                            let mut c = w.host.controller(&w.shared.settings.adaptive);
                            let admit = c.admit(at, lead);
                            // Woken from the pacing queue without taking the
                            // lead (pacing ended, or the permits ran out):
                            // the next in the queue must look too, or it
                            // sleeps with no leader to wake it.
                            if std::mem::take(&mut w.queued) && matches!(admit, Admit::Now | Admit::Full) {
                                c.paced.notify_one();
                            }
                            // Registered under the lock: a hand-over between
                            // the answer and the first poll is not lost.
                            if let Some(n) = c.waits_on(admit) {
                                w.notified = Some(registered(n));
                                w.queued = admit == Admit::Queued;
                            }
                            (admit, c.in_flight())
                        };
                        // The controller has settled the old lead: sent with
                        // it, kept it, or passed it on.
                        match admit {
                            Admit::Now => {
                                if let Some(l) = w.lead.take() {
                                    l.disarm();
                                }
                                this.tail.permit = Some(AdaptivePermit::new(Arc::clone(&w.host), at, depth))
                            }
                            Admit::At(slot, id) => {
                                if lead != Some(id) {
                                    if let Some(l) = w.lead.replace(Lead::new(Arc::clone(&w.host), id)) {
                                        l.disarm();
                                    }
                                }
                                w.sleep.as_mut().reset(slot);
                                continue;
                            }
                            Admit::Queued | Admit::Full => {
                                if let Some(l) = w.lead.take() {
                                    l.disarm();
                                }
                                continue;
                            }
                        }
                    }
                    let Some(w) = wait.take() else { continue };
                    let HostWait {
                        mut service, request, ..
                    } = *w;
                    this.tail.sent_ms = now;
                    // It waited for a pause: its success must reach the host map.
                    this.tail.watch = true;
                    let fut = service.call(request);
                    this.state.set(State::Called { fut });
                }
                StateProj::Rejected { error } => {
                    return Poll::Ready(Err(Box::new((**error).clone())));
                }
            }
        }
    }
}

/// What an answer says about load, for the adaptive controller.
fn outcome_of(status: http::StatusCode) -> Outcome {
    match status.as_u16() {
        429 => Outcome::Throttled,
        503 => Outcome::Loss,
        100..=399 => Outcome::Success,
        _ => Outcome::Neutral,
    }
}

impl<S, Req> fmt::Debug for ResponseFuture<S, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Waiting { .. } => "waiting for its host",
            State::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}
