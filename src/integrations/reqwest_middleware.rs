//! The layer as a [`reqwest_middleware::Middleware`], for clients built
//! with `reqwest_middleware::ClientBuilder` (feature `reqwest-middleware`).
//!
//! [`SnapshotMiddleware`] runs each request through the same
//! [`SnapshotService`](crate::SnapshotService) path as the tower layer: the
//! machine's gate, the host's pause, the adaptive limiter's pace and
//! permits, and what the answer teaches. Built from a [`SnapshotLayer`], it
//! shares that layer's state, so a tower stack and a middleware chain made
//! from one layer pause and pace the same hosts together.
//!
//! # Order with `reqwest-retry`
//!
//! Add `SnapshotMiddleware` **after** `RetryTransientMiddleware`, so it sits
//! nearer the network and every attempt passes through it:
//!
//! ```no_run
//! # #[cfg(any())] {
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(reqwest_retry::RetryTransientMiddleware::new_with_policy(policy))
//!     .with(layer.middleware())
//!     .build();
//! # }
//! ```
//!
//! `reqwest-retry` ignores `Retry-After` (TrueLayer/reqwest-middleware#146):
//! it waits its own back-off and retries. Inside it, the layer holds each
//! retry until the host's pause ends, so a retry never reaches a host before
//! the time it asked for. Outside it, the layer would see one request per
//! call, and the retries would reach the paused host at the back-off's pace.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Extensions, HeaderMap, StatusCode};
use reqwest_middleware::{Middleware, Next};
use tower_layer::Layer;
use tower_service::Service;

use crate::layer::error::Overloaded;
use crate::layer::{HttpRequest, HttpResponse};
use crate::SnapshotLayer;

/// A [`SnapshotLayer`] as a `reqwest_middleware` middleware; see the
/// [module docs](self) for the order with `reqwest-retry`.
///
/// ```
/// use tower_snapshotter::{Config, SnapshotLayer, Snapshotter};
///
/// let layer = SnapshotLayer::new(Snapshotter::new(Config::default()));
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(layer.middleware())
///     .build();
/// # let _ = client;
/// ```
#[derive(Debug, Clone)]
pub struct SnapshotMiddleware {
    layer: SnapshotLayer,
}

impl SnapshotLayer {
    /// This layer as a `reqwest_middleware` middleware, sharing its state.
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest-middleware")))]
    pub fn middleware(&self) -> SnapshotMiddleware {
        SnapshotMiddleware { layer: self.clone() }
    }
}

impl From<SnapshotLayer> for SnapshotMiddleware {
    fn from(layer: SnapshotLayer) -> Self {
        Self { layer }
    }
}

#[async_trait::async_trait]
impl Middleware for SnapshotMiddleware {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let mut service = self.layer.layer(Downstream { next });
        // The extensions travel with the request through the layer and come
        // back with the answer (or the error), for the middlewares after.
        let sending = Sending {
            request,
            extensions: std::mem::take(extensions),
        };
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .map_err(refused)?;
        match service.call(sending).await {
            Ok(answered) => {
                *extensions = answered.extensions;
                Ok(answered.response)
            }
            Err(e) => match e.downcast::<Failed>() {
                Ok(failed) => {
                    *extensions = failed.extensions;
                    Err(failed.error)
                }
                Err(e) => Err(refused(e)),
            },
        }
    }
}

/// The layer's own refusal (`OnBlocked::Reject`), as a middleware error.
fn refused(e: crate::BoxError) -> reqwest_middleware::Error {
    match e.downcast::<Overloaded>() {
        Ok(overloaded) => reqwest_middleware::Error::middleware(*overloaded),
        Err(other) => reqwest_middleware::Error::middleware(Boxed(other)),
    }
}

/// Any other boxed error, as a `std::error::Error` value.
#[derive(Debug)]
struct Boxed(crate::BoxError);

impl std::fmt::Display for Boxed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Boxed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// A request on its way down the chain, with its extensions.
struct Sending {
    request: reqwest::Request,
    extensions: Extensions,
}

impl HttpRequest for Sending {
    fn authority(&self) -> Option<&str> {
        self.request.authority()
    }
}

/// An answer from down the chain, with the extensions back.
struct Answered {
    response: reqwest::Response,
    extensions: Extensions,
}

impl HttpResponse for Answered {
    fn status(&self) -> StatusCode {
        self.response.status()
    }
    fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }
}

/// An error from down the chain, with the extensions back.
#[derive(Debug)]
struct Failed {
    error: reqwest_middleware::Error,
    extensions: Extensions,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Failed {}

/// The rest of the middleware chain, as the service the layer wraps.
#[derive(Clone)]
struct Downstream<'a> {
    next: Next<'a>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl<'a> Service<Sending> for Downstream<'a> {
    type Response = Answered;
    type Error = Failed;
    type Future = BoxFuture<'a, Result<Answered, Failed>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Failed>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, sending: Sending) -> Self::Future {
        let next = self.next.clone();
        Box::pin(async move {
            let Sending {
                request,
                mut extensions,
            } = sending;
            match next.run(request, &mut extensions).await {
                Ok(response) => Ok(Answered { response, extensions }),
                Err(error) => Err(Failed { error, extensions }),
            }
        })
    }
}
