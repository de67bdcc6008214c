use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::futures::OwnedNotified;
use tower_service::Service;

use super::adaptive::Admit;
use super::error::Overloaded;
use super::future::{registered, AdaptivePermit, HostWait, ResponseFuture, Tail};
use super::hosts::host_key;
use super::http_parts::{HttpRequest, HttpResponse};
use super::policy::GatePolicy;
use super::shared::{Blocked, Shared, Ticket, WATCH_MS};
use super::stats::LayerStats;
use crate::BoxError;

/// Gates or slows requests to the inner service while the
/// [`Snapshotter`](crate::Snapshotter)'s windows show overload, and reports
/// every answer to it. Built by [`SnapshotLayer`](crate::SnapshotLayer).
///
/// Clones share one state (verdict, per-host pauses, concurrency limit);
/// each clone has its own readiness, as tower's `ConcurrencyLimit` does.
pub struct SnapshotService<S> {
    inner: S,
    shared: Arc<Shared>,
    /// Admission granted by `poll_ready`, spent by `call`.
    ticket: Option<Option<Ticket>>,
    waiter: Option<Waiter>,
}

/// What a blocked `poll_ready` waits on: a verdict change, or a slot given
/// back by a finished request.
struct Waiter {
    gate: Pin<Box<OwnedNotified>>,
    release: Pin<Box<OwnedNotified>>,
}

impl Waiter {
    fn new(shared: &Shared) -> Self {
        let mut gate = Box::pin(Arc::clone(shared.snapshotter.gate()).notified_owned());
        let mut release = Box::pin(Arc::clone(&shared.release).notified_owned());
        gate.as_mut().enable();
        release.as_mut().enable();
        Self { gate, release }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.gate.as_mut().poll(cx).is_ready() || self.release.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl<S> SnapshotService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self {
            inner,
            shared,
            ticket: None,
            waiter: None,
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// A snapshot of the shared state, for dashboards.
    pub fn stats(&self) -> LayerStats {
        LayerStats::of(&self.shared)
    }

    /// Admits or registers a wake-up; `Pending` only with a waker registered.
    #[inline]
    fn poll_admit(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match self.shared.try_admit() {
                Ok(ticket) => {
                    self.ticket = Some(ticket);
                    self.waiter = None;
                    return Poll::Ready(());
                }
                Err(_) => match &mut self.waiter {
                    // Register first, then look again: a change between the
                    // first look and the registration is not lost.
                    None => self.waiter = Some(Waiter::new(&self.shared)),
                    Some(w) => match w.poll(cx) {
                        Poll::Ready(()) => self.waiter = None,
                        Poll::Pending => return Poll::Pending,
                    },
                },
            }
        }
    }
}

/// Whether a request sent at `now_ms` should report its success: a pause
/// ended less than [`WATCH_MS`] ago (a horizon of 0: never paused).
#[inline]
fn watching(now_ms: u64, horizon_ms: u64) -> bool {
    horizon_ms != 0 && now_ms < horizon_ms.saturating_add(WATCH_MS)
}

impl<S: Clone> Clone for SnapshotService<S> {
    /// A clone shares the state but not the readiness: it must be polled
    /// ready itself.
    fn clone(&self) -> Self {
        Self::new(self.inner.clone(), Arc::clone(&self.shared))
    }
}

impl<S: fmt::Debug> fmt::Debug for SnapshotService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotService")
            .field("inner", &self.inner)
            .field("policy", &self.shared.settings.policy)
            .field("ready", &self.ticket.is_some())
            .finish()
    }
}

impl<S, Req> Service<Req> for SnapshotService<S>
where
    S: Service<Req> + Clone,
    S::Response: HttpResponse,
    S::Error: Into<BoxError>,
    Req: HttpRequest,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.ticket.is_none() && self.shared.settings.policy != GatePolicy::Reject {
            std::task::ready!(self.poll_admit(cx));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.shared;
        let ticket = match self.ticket.take() {
            Some(ticket) => Ok(ticket),
            None if shared.settings.policy == GatePolicy::Reject => shared.try_admit(),
            None => panic!("SnapshotService::call without poll_ready returning Ready(Ok)"),
        };
        let authority = request.authority();
        let key = if shared.settings.per_host {
            host_key(authority.unwrap_or(""))
        } else {
            0
        };
        let now_ms = shared.clock.now_ms();
        let mut tail = Tail {
            layer: shared.me,
            key,
            sent_ms: now_ms,
            ticket: None,
            permit: None,
            watch: watching(now_ms, shared.pause_horizon_ms.load(Ordering::Relaxed)),
        };
        match ticket {
            Ok(ticket) => tail.ticket = ticket,
            Err(blocked) => {
                shared.rejected.fetch_add(1, Ordering::Relaxed);
                let resources = match blocked {
                    Blocked::Gate(r) => r,
                    Blocked::Limit => crate::Resources::NONE,
                };
                return ResponseFuture::rejected(Overloaded::new(resources), tail);
            }
        }
        if let Some((host, left_ms)) = shared.paused_host(now_ms, key, authority) {
            if shared.settings.policy == GatePolicy::Reject {
                shared.rejected.fetch_add(1, Ordering::Relaxed);
                let err = Overloaded::host_paused(
                    host.name.get().map(|n| &**n),
                    std::time::Duration::from_millis(left_ms),
                );
                return ResponseFuture::rejected(err, tail);
            }
            shared.host_waits.fetch_add(1, Ordering::Relaxed);
            // Give the admission back for the pause: a throttled host must
            // not hold slots that other hosts could use.
            tail.ticket = None;
            // The ready service goes into the future; a clone stays behind
            // (the idiom of tower's `Service::call` docs).
            let clone = self.inner.clone();
            let ready = std::mem::replace(&mut self.inner, clone);
            let wait = HostWait::paused(Arc::clone(shared), host, left_ms, ready, request);
            return ResponseFuture::waiting(wait, tail);
        }
        if shared.settings.policy == GatePolicy::Adaptive {
            let host = shared.hosts.get_or_insert(key);
            if let Some(name) = authority {
                host.name.get_or_init(|| name.into());
            }
            let at = tokio::time::Instant::now();
            let mut c = host.controller(&shared.settings.adaptive);
            let admit = c.admit(at, None);
            if admit == Admit::Now {
                let depth = c.in_flight();
                drop(c);
                tail.permit = Some(AdaptivePermit::new(host, at, depth));
                return ResponseFuture::called(self.inner.call(request), tail);
            }
            let notified = c.waits_on(admit).map(registered);
            drop(c);
            let clone = self.inner.clone();
            let ready = std::mem::replace(&mut self.inner, clone);
            let wait = HostWait::admitted(Arc::clone(shared), host, admit, notified, ready, request);
            return ResponseFuture::waiting(wait, tail);
        }
        ResponseFuture::called(self.inner.call(request), tail)
    }
}
