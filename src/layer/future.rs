//! Future types.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::error::Overloaded;
use super::http_parts::HttpResponse;
use super::report::Report;
use super::wait::Wait;
use crate::BoxError;

pin_project! {
    /// Response future of [`SnapshotService`](crate::layer::SnapshotService).
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req>,
        // `None` once rejected: nothing was sent, nothing to report.
        report: Option<Report>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        // Sent: waits for the answer.
        Called {
            #[pin]
            fut: S::Future,
        },
        // Not sent yet: waits for its host (see `wait.rs`).
        Waiting {
            wait: Box<Wait<S, Req>>,
        },
        // Refused without reaching the inner service.
        Rejected {
            error: Option<Box<Overloaded>>,
        },
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    #[inline]
    pub(crate) fn called(fut: S::Future, report: Report) -> Self {
        Self {
            state: State::Called { fut },
            report: Some(report),
        }
    }

    pub(crate) fn waiting(wait: Wait<S, Req>, report: Report) -> Self {
        Self {
            state: State::Waiting { wait: Box::new(wait) },
            report: Some(report),
        }
    }

    pub(crate) fn rejected(error: Overloaded) -> Self {
        Self {
            state: State::Rejected {
                error: Some(Box::new(error)),
            },
            report: None,
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
                    if let Some(report) = this.report {
                        report.answered(&result);
                    }
                    return Poll::Ready(result.map_err(Into::into));
                }
                StateProj::Waiting { wait } => {
                    let Some(report) = this.report else {
                        return Poll::Ready(Err(Overloaded::new(crate::Resources::NONE).into()));
                    };
                    let fut = ready!(wait.poll_send(cx, report))?;
                    this.state.set(State::Called { fut });
                }
                StateProj::Rejected { error } => {
                    let error = error
                        .take()
                        .map_or_else(|| Overloaded::new(crate::Resources::NONE), |e| *e);
                    return Poll::Ready(Err(error.into()));
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
