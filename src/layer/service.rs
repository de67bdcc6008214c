use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::error::Overloaded;
use super::future::ResponseFuture;
use super::host_cache::HostCache;
use super::hosts::HostName;
use super::http_parts::{HttpRequest, HttpResponse};
use super::permit::AdaptivePermit;
use super::report::Report;
use super::shard::Shards;
use super::shared::{Blocked, Shared, Ticket};
use super::signal::Registration;
use super::stats::LayerStats;
use super::wait::Wait;
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
    /// The same state, counted per thread by each request's future.
    shards: Arc<Shards>,
    /// Admission granted by `poll_ready`, spent by `call`.
    ticket: Option<Option<Ticket>>,
    waiter: Option<Waiter>,
    /// The host this clone sent to last (adaptive limiter).
    last_host: HostCache,
}

/// What a blocked `poll_ready` waits on: a verdict change, or a slot given
/// back by a finished request.
struct Waiter {
    gate: Registration,
    release: Registration,
}

impl Waiter {
    fn new(shared: &Shared) -> Self {
        Self {
            gate: Registration::uncounted(shared.snapshotter.gate()),
            release: shared.release.register(),
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.gate.poll(cx).is_ready() || self.release.poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl<S> SnapshotService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>, shards: Arc<Shards>) -> Self {
        Self {
            inner,
            shared,
            shards,
            ticket: None,
            waiter: None,
            last_host: HostCache::default(),
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

impl<S: Clone> Clone for SnapshotService<S> {
    /// A clone shares the state but not the readiness: it must be polled
    /// ready itself.
    fn clone(&self) -> Self {
        Self {
            // A clone made per request still finds its host at once.
            last_host: self.last_host.clone(),
            ..Self::new(
                self.inner.clone(),
                Arc::clone(&self.shared),
                Arc::clone(&self.shards),
            )
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for SnapshotService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotService")
            .field("inner", &self.inner)
            .field("on_blocked", &self.shared.settings.on_blocked)
            .field("limiter", &self.shared.settings.limiter)
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
        if self.ticket.is_none() && !self.shared.settings.rejects() {
            std::task::ready!(self.poll_admit(cx));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    /// Sends the request at once when it may go. Otherwise it fails at once
    /// (`OnBlocked::Reject`) or waits in its future with an unready clone of
    /// the inner service, leaving this one ready for the next call: a
    /// waiting request holds nothing the inner `poll_ready` reserved.
    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.shared;
        let ticket = match self.ticket.take() {
            Some(ticket) => Ok(ticket),
            None if shared.settings.rejects() => shared.try_admit(),
            None => panic!("SnapshotService::call without poll_ready returning Ready(Ok)"),
        };
        let ticket = match ticket {
            Ok(ticket) => ticket,
            Err(blocked) => return self.reject(blocked_error(blocked)),
        };
        let host = if shared.settings.per_host {
            HostName::new(request.authority().unwrap_or(""))
        } else {
            HostName::default()
        };
        let now_ms = shared.clock.now_ms();
        if let Some((state, left_ms)) = shared.paused_host(now_ms, &host) {
            if shared.settings.rejects() {
                let left = std::time::Duration::from_millis(left_ms);
                return self.reject(Overloaded::host_paused(Some(host.as_str()), left));
            }
            shared.host_waits.fetch_add(1, Ordering::Relaxed);
            // The admission goes back for the pause: a throttled host must
            // not hold slots that other hosts could use.
            drop(ticket);
            let paced = shared.settings.adaptive().is_some();
            let wait = Wait::paused(
                Arc::clone(shared),
                state,
                left_ms,
                paced,
                self.inner.clone(),
                request,
            );
            return ResponseFuture::waiting(wait, Report::new(self.shards.pick(), host, now_ms, None));
        }
        let mut report = Report::new(self.shards.pick(), host, now_ms, ticket);
        if let Some(cfg) = shared.settings.adaptive() {
            let state = self.last_host.get_or_insert(&shared.hosts, report.host(), now_ms);
            let now = tokio::time::Instant::now();
            let budget = |c: &mut _| shared.fleet.budget(report.host(), c, now, None);
            match AdaptivePermit::try_now(state, cfg, now, budget) {
                Some(permit) => report.permit = Some(permit),
                None if shared.settings.rejects() => {
                    return self.reject(Overloaded::host_busy(report.host().as_str()));
                }
                None => {
                    let state = Arc::clone(state);
                    let wait = Wait::paced(Arc::clone(shared), state, self.inner.clone(), request);
                    return ResponseFuture::waiting(wait, report);
                }
            }
        }
        shared.metrics.admitted();
        ResponseFuture::called(self.inner.call(request), report)
    }
}

impl<S> SnapshotService<S> {
    #[cold]
    fn reject<Req>(&self, error: Overloaded) -> ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        self.shared.rejected.fetch_add(1, Ordering::Relaxed);
        self.shared.metrics.rejected();
        ResponseFuture::rejected(error)
    }
}

/// The error of a request the gate or the limit refused.
fn blocked_error(blocked: Blocked) -> Overloaded {
    match blocked {
        Blocked::Gate(resources) => Overloaded::new(resources),
        Blocked::Limit => Overloaded::new(crate::Resources::NONE),
    }
}
