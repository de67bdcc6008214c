//! Future types.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

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
}

/// A request to a paused host, waiting to be sent.
pub(crate) struct HostWait<S, Req> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) host: Arc<HostState>,
    pub(crate) service: S,
    pub(crate) request: Req,
    pub(crate) sleep: Pin<Box<Sleep>>,
}

impl<S, Req> HostWait<S, Req> {
    pub(crate) fn new(
        shared: Arc<Shared>,
        host: Arc<HostState>,
        left_ms: u64,
        service: S,
        request: Req,
    ) -> Self {
        let now = shared.clock.precise_ms();
        let sleep = Box::pin(tokio::time::sleep_until(
            shared.clock.instant_of(now + left_ms + jitter(left_ms)),
        ));
        Self {
            shared,
            host,
            service,
            request,
            sleep,
        }
    }
}

/// Up to a tenth of the wait, at most one second, so requests held back by
/// one pause do not all resume in the same instant.
fn jitter(wait_ms: u64) -> u64 {
    let max = (wait_ms / 10).min(1000);
    if max == 0 {
        0
    } else {
        fastrand::u64(0..=max)
    }
}

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
                    if let Ok(response) = &result {
                        let status = response.status();
                        if status.as_u16() >= 400 {
                            let shared = match &ticket {
                                Some(t) => Some(Arc::clone(t.shared())),
                                None => tail.layer.get(),
                            };
                            if let Some(shared) = shared {
                                shared.on_answer(tail.key, tail.sent_ms, status, response.headers());
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
                    ready!(w.sleep.as_mut().poll(cx));
                    let now = w.shared.clock.precise_ms();
                    let left = w.host.remaining_ms(now);
                    if left > 0 {
                        // Paused again meanwhile: wait for the new end.
                        let until = w.shared.clock.instant_of(now + left + jitter(left));
                        w.sleep.as_mut().reset(until);
                        continue;
                    }
                    let Some(w) = wait.take() else { continue };
                    let HostWait {
                        mut service, request, ..
                    } = *w;
                    this.tail.sent_ms = now;
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
