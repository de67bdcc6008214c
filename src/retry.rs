//! [`RetryThrottled`]: a [`tower::retry::Policy`] that retries a 429 or 503
//! (or a 403 that refuses for rate, as GitHub's do) and leaves the waiting
//! to the layer.
//!
//! # Why
//!
//! A [`SnapshotLayer`](crate::SnapshotLayer) sees every answer that passes
//! through it. When a host answers `429 Too Many Requests` or
//! `503 Service Unavailable` (with or without `Retry-After`), the layer
//! pauses that host, and it holds every request to the host that comes
//! down through it until the host may be asked again (and, under the
//! default [`GatePolicy::Adaptive`](crate::GatePolicy::Adaptive), paces
//! them after the pause). A retry policy that slept on its own on top of
//! that would wait twice, or would guess a back-off the layer already knows.
//!
//! So [`RetryThrottled`] does not sleep: its [`Policy::retry`] future is
//! [`std::future::Ready`], and the retried attempt goes straight back down
//! into the layer, which holds it for exactly the host's pause. That only
//! works with the retry *above* the layer, so that every attempt (the
//! first and each retry) goes through it:
//!
//! ```text
//! Retry(RetryThrottled) → SnapshotLayer → (timeout, …) → client
//! ```
//!
//! With the retry below the layer, the layer would see only each request's
//! final answer and the retries would hit the host with no pause at all.
//! Without a layer, the policy retries immediately.
//!
//! # What it retries
//!
//! - Answers with a status in [`RetryThrottled::STATUSES`]: `429` and `503`.
//!   Nothing else: not other 5xx, not errors (an `Err` from the service,
//!   such as a transport error, a timeout or the layer's
//!   [`Overloaded`](crate::layer::error::Overloaded), is returned as is).
//! - At most `max_attempts` attempts per request, counting the first; once
//!   they are spent the caller gets the last answer (`Ok`, with its 429 or
//!   503 status), not an error.
//! - Only requests that can be cloned. For [`http::Request<B>`] the policy
//!   is implemented only where `B: Clone` (for example `Empty<Bytes>`,
//!   `Full<Bytes>` or `String`), so a stack over a body that cannot be
//!   cloned (hyper's `Incoming`, a stream) does not compile with it; wrap
//!   such a body in something that buffers it first. The clone is
//!   [`http::Request::clone`]: method, URI, version, headers, body, and the
//!   extensions (every extension is `Clone` in `http` 1). With the `reqwest`
//!   feature it is also implemented for `reqwest::Request`, cloned with
//!   `try_clone`: a request with a streaming body is sent once and never
//!   retried.
//!
//! [`tower::retry::Retry`] clones the policy for each request, so the
//! attempt count is per request: one policy serves a whole stack.
//!
//! # Example
//!
//! ```no_run
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_snapshotter::{Config, RetryThrottled, SnapshotLayer, Snapshotter};
//!
//! # #[tokio::main] async fn main() -> Result<(), tower::BoxError> {
//! let snapshotter = Snapshotter::new(Config::default());
//! snapshotter.start()?;
//! let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
//!     .build_http::<http_body_util::Empty<bytes::Bytes>>();
//!
//! // Retry outside, the layer inside: every attempt goes through the layer,
//! // which holds a retried 429 until the host's `Retry-After` is over.
//! let client = ServiceBuilder::new()
//!     .retry(RetryThrottled::new(5))
//!     .layer(SnapshotLayer::new(snapshotter))
//!     .service(client);
//!
//! let request = http::Request::get("http://127.0.0.1:8080/").body(Default::default())?;
//! let response = client.oneshot(request).await?;
//! // 200, or the fifth 429/503 once the attempts are spent.
//! println!("{}", response.status());
//! # Ok(()) }
//! ```

use std::future::{ready, Ready};

use http::StatusCode;
use tower::retry::Policy;

use crate::retry_after::is_throttled;

/// A [`tower::retry::Policy`] that retries answers of 429 and 503 at once,
/// up to `max_attempts` attempts a request, and leaves the waiting to the
/// [`SnapshotLayer`](crate::SnapshotLayer) below it; see the
/// [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryThrottled {
    max_attempts: u32,
    /// Attempts answered so far in this request's session (`Retry` clones
    /// the policy for each request).
    attempts: u32,
}

impl RetryThrottled {
    /// The statuses that are retried: `429 Too Many Requests` and
    /// `503 Service Unavailable`.
    pub const STATUSES: [StatusCode; 2] = [StatusCode::TOO_MANY_REQUESTS, StatusCode::SERVICE_UNAVAILABLE];

    /// A policy that makes at most `max_attempts` attempts per request,
    /// the first one included: `new(5)` retries a throttled request up to
    /// four times.
    ///
    /// `max_attempts` is clamped to at least 1, so `new(0)` is the same as
    /// `new(1)`: one attempt, never a retry.
    ///
    /// ```
    /// use tower_snapshotter::RetryThrottled;
    ///
    /// assert_eq!(RetryThrottled::new(5).max_attempts(), 5);
    /// assert_eq!(RetryThrottled::new(0).max_attempts(), 1);
    /// ```
    pub const fn new(max_attempts: u32) -> Self {
        Self {
            max_attempts: if max_attempts == 0 { 1 } else { max_attempts },
            attempts: 0,
        }
    }

    /// The attempts a request may take, the first one included (at least 1).
    pub const fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Whether an answer with `status` is retried: a status in
    /// [`STATUSES`](Self::STATUSES).
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_snapshotter::RetryThrottled;
    ///
    /// assert!(RetryThrottled::retries_status(StatusCode::TOO_MANY_REQUESTS));
    /// assert!(!RetryThrottled::retries_status(StatusCode::BAD_GATEWAY));
    /// ```
    pub fn retries_status(status: StatusCode) -> bool {
        Self::STATUSES.contains(&status)
    }

    /// Whether an answer is retried: a status in [`STATUSES`](Self::STATUSES),
    /// or a `403` that refuses for rate, with a `Retry-After` or a spent
    /// quota, as GitHub's do (see
    /// [`is_throttled`]).
    ///
    /// ```
    /// use http::{HeaderMap, StatusCode};
    /// use tower_snapshotter::RetryThrottled;
    ///
    /// let mut h = HeaderMap::new();
    /// h.insert("retry-after", "60".parse().unwrap());
    /// assert!(RetryThrottled::retries(StatusCode::FORBIDDEN, &h));
    /// assert!(!RetryThrottled::retries(StatusCode::FORBIDDEN, &HeaderMap::new()));
    /// ```
    pub fn retries(status: StatusCode, headers: &http::HeaderMap) -> bool {
        is_throttled(status, headers)
    }

    /// Counts the attempt just answered; a retry, ready at once, if its
    /// answer (`None`: an error) is retried and attempts are left.
    fn decide(&mut self, answer: Option<(StatusCode, &http::HeaderMap)>) -> Option<Ready<()>> {
        self.attempts = self.attempts.saturating_add(1);
        let throttled = answer.is_some_and(|(status, headers)| Self::retries(status, headers));
        // No sleep: the retried attempt goes down through the layer, which
        // saw this answer and holds the attempt for the host's pause.
        (throttled && self.attempts < self.max_attempts).then(|| ready(()))
    }
}

impl<B, R, E> Policy<http::Request<B>, http::Response<R>, E> for RetryThrottled
where
    B: Clone,
{
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _req: &mut http::Request<B>,
        result: &mut Result<http::Response<R>, E>,
    ) -> Option<Self::Future> {
        self.decide(result.as_ref().ok().map(|r| (r.status(), r.headers())))
    }

    fn clone_request(&mut self, req: &http::Request<B>) -> Option<http::Request<B>> {
        Some(req.clone())
    }
}

#[cfg(feature = "reqwest")]
impl<E> Policy<reqwest::Request, reqwest::Response, E> for RetryThrottled {
    type Future = Ready<()>;

    fn retry(
        &mut self,
        _req: &mut reqwest::Request,
        result: &mut Result<reqwest::Response, E>,
    ) -> Option<Self::Future> {
        self.decide(result.as_ref().ok().map(|r| (r.status(), r.headers())))
    }

    fn clone_request(&mut self, req: &reqwest::Request) -> Option<reqwest::Request> {
        req.try_clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Req = http::Request<String>;
    type Res = http::Response<()>;

    fn answer(status: u16) -> Result<Res, &'static str> {
        let mut r = http::Response::new(());
        *r.status_mut() = StatusCode::from_u16(status).expect("a valid status");
        Ok(r)
    }

    /// Runs `answers` through one request session of `policy`, as
    /// `tower::retry::Retry` does, and returns the attempts it made.
    fn session(policy: &RetryThrottled, answers: &[Result<Res, &'static str>]) -> usize {
        let mut policy = *policy; // `Retry` clones it per request.
        let mut req: Req = http::Request::new("body".into());
        for (i, a) in answers.iter().enumerate() {
            let mut result = a.clone();
            let retry = Policy::<Req, Res, &'static str>::retry(&mut policy, &mut req, &mut result);
            if retry.is_none() {
                return i + 1;
            }
        }
        answers.len()
    }

    #[test]
    fn retries_429_and_503_until_the_attempts_are_spent() {
        let p = RetryThrottled::new(3);
        assert_eq!(session(&p, &[answer(429), answer(503), answer(200)]), 3);
        assert_eq!(
            session(&p, &[answer(429), answer(429), answer(429), answer(200)]),
            3
        );
        assert_eq!(session(&p, &[answer(200)]), 1);
        assert_eq!(session(&p, &[answer(500), answer(200)]), 1);
        assert_eq!(session(&p, &[answer(502), answer(200)]), 1);
        // The policy itself is untouched: the next request starts afresh.
        assert_eq!(p, RetryThrottled::new(3));
    }

    #[test]
    fn errors_are_not_retried() {
        assert_eq!(
            session(&RetryThrottled::new(5), &[Err("refused"), answer(200)]),
            1
        );
    }

    #[test]
    fn zero_or_one_attempt_never_retries() {
        for n in [0, 1] {
            assert_eq!(session(&RetryThrottled::new(n), &[answer(429), answer(200)]), 1);
        }
    }

    #[test]
    fn the_clone_keeps_method_uri_version_headers_body_and_extensions() {
        #[derive(Debug, Clone, PartialEq)]
        struct Tag(u8);
        let mut req = http::Request::post("http://example.com/a?b=c")
            .version(http::Version::HTTP_11)
            .header("x-one", "1")
            .body(String::from("payload"))
            .expect("a valid request");
        req.extensions_mut().insert(Tag(7));
        let mut p = RetryThrottled::new(2);
        let c = Policy::<Req, Res, ()>::clone_request(&mut p, &req).expect("a clone");
        assert_eq!(c.method(), http::Method::POST);
        assert_eq!(c.uri(), req.uri());
        assert_eq!(c.version(), http::Version::HTTP_11);
        assert_eq!(c.headers(), req.headers());
        assert_eq!(c.body(), "payload");
        assert_eq!(c.extensions().get::<Tag>(), Some(&Tag(7)));
    }
}
