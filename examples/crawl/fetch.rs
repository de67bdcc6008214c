//! Fetching one URL through the stack, and the counts of what came back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Response};
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::RetryThrottled;

pub(crate) type HttpClient =
    BoxCloneService<Request<Empty<Bytes>>, Response<hyper::body::Incoming>, BoxError>;

#[derive(Default)]
pub(crate) struct Counts {
    /// URLs fetched.
    pub(crate) ok: AtomicU64,
    /// URLs still answered 429 or 503 after `--max-attempts`.
    pub(crate) failed: AtomicU64,
    /// URLs answered anything else but a success (a bare 403, a 404):
    /// not retried.
    pub(crate) other: AtomicU64,
    /// Answers of 429, every attempt counted.
    pub(crate) too_many: AtomicU64,
    /// Answers of 503, every attempt counted.
    pub(crate) unavailable: AtomicU64,
    /// Calls the layer refused locally (`--policy reject`).
    pub(crate) rejected: AtomicU64,
    /// Transport errors.
    pub(crate) errors: AtomicU64,
}

impl Counts {
    /// Every 429 and 503 the client got.
    pub(crate) fn throttled(&self) -> u64 {
        self.too_many.load(Ordering::Relaxed) + self.unavailable.load(Ordering::Relaxed)
    }
}

/// Fetches `url`: `RetryThrottled` in the stack retries its 429s and 503s
/// (the layer decides how long each retry waits), and a URL still answered
/// 429 or 503 once the attempts are spent counts as failed. A local refusal
/// (`--policy reject`) is retried after its `Retry-After`, a transport
/// error after 50 ms.
pub(crate) async fn crawl_one(service: &mut HttpClient, url: &str, counts: &Counts) {
    loop {
        let request = match Request::get(url).body(Empty::new()) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("crawl: bad URL {url:?}: {e}");
                return;
            }
        };
        let result = match service.ready().await {
            Ok(s) => s.call(request).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(response) => {
                let status = response.status();
                let counter = if RetryThrottled::retries_status(status) {
                    &counts.failed
                } else if status.is_success() {
                    &counts.ok
                } else {
                    &counts.other
                };
                let _ = response.into_body().collect().await;
                counter.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                let wait = match e.downcast_ref::<Overloaded>() {
                    Some(o) => {
                        counts.rejected.fetch_add(1, Ordering::Relaxed);
                        o.retry_after().unwrap_or(Duration::from_millis(50))
                    }
                    None => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        Duration::from_millis(50)
                    }
                };
                tokio::time::sleep(wait).await;
            }
        }
    }
}
