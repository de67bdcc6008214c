//! `RetryThrottled` above `SnapshotLayer` in one `ServiceBuilder`, against
//! real hyper servers on loopback that answer 429 or 503 with
//! `Retry-After`. Time is tokio's paused clock; what the server received,
//! and when, is read from its own log.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_snapshotter::{RetryThrottled, SnapshotLayer, Snapshotter};

/// A snapshotter that is never started: per-host pauses work without it.
fn idle_snapshotter() -> Snapshotter {
    Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory)
}

/// The layer with the library's default policy.
fn layer() -> SnapshotLayer {
    SnapshotLayer::builder(idle_snapshotter()).build().unwrap()
}

/// A server that answers the first `throttled` requests with `status` and
/// `Retry-After: retry_after`, and every later one 200.
async fn throttling(throttled: usize, status: u16, retry_after: &'static str) -> TestServer {
    TestServer::start(move |hit| {
        if hit.nth < throttled {
            reply_with(status, &[("retry-after", retry_after)])
        } else {
            reply(200)
        }
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_429_is_retried_after_the_layers_pause() {
    bounded(async {
        let server = throttling(2, 429, "2").await;
        let layer = layer();
        let svc = ServiceBuilder::new()
            .retry(RetryThrottled::new(5))
            .layer(layer.clone())
            .service(client());

        let response = svc.oneshot(get(&server.url("/a"))).await.unwrap();

        assert_eq!(response.status(), 200, "the caller gets the final answer");
        let times = server.times("/a");
        assert_eq!(times.len(), 3, "two 429s, then the 200: {times:?}");
        // The pause counts from the client's receipt of the 429, in whole
        // milliseconds of tokio time; the policy itself never sleeps, so
        // the gaps are the layer's holding the retries for Retry-After.
        for pair in times.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap + Duration::from_millis(1) >= Duration::from_secs(2),
                "a retry reached the server {gap:?} after a 429 with Retry-After: 2"
            );
        }
        assert!(
            layer.stats().host_waits >= 2,
            "the layer held both retries for the paused host: {:?}",
            layer.stats()
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_too() {
    bounded(async {
        let server = throttling(1, 503, "1").await;
        let svc = ServiceBuilder::new()
            .retry(RetryThrottled::new(5))
            .layer(layer())
            .service(client());

        let response = svc.oneshot(get(&server.url("/b"))).await.unwrap();

        assert_eq!(response.status(), 200);
        let times = server.times("/b");
        assert_eq!(times.len(), 2, "{times:?}");
        assert!(times[1] - times[0] + Duration::from_millis(1) >= Duration::from_secs(1));
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn gives_up_with_the_last_429_once_the_attempts_are_spent() {
    bounded(async {
        let server = throttling(usize::MAX, 429, "1").await;
        let svc = ServiceBuilder::new()
            .retry(RetryThrottled::new(3))
            .layer(layer())
            .service(client());

        let response = svc.oneshot(get(&server.url("/c"))).await.unwrap();

        assert_eq!(response.status(), 429, "the last answer, not an error");
        assert_eq!(server.count("/c"), 3, "three attempts, the first included");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_403_that_refuses_for_rate_pauses_the_host_and_is_retried() {
    // GitHub's secondary limits: 403 with `Retry-After`; a plain 403 (no
    // such header) refuses the request itself and is final.
    bounded(async {
        let server = TestServer::start(|hit| match (hit.path.as_str(), hit.nth) {
            ("/limited", 0) => reply_with(403, &[("retry-after", "2")]),
            ("/forbidden", _) => reply(403),
            _ => reply(200),
        })
        .await;
        let layer = layer();
        let svc = ServiceBuilder::new()
            .retry(RetryThrottled::new(5))
            .layer(layer.clone())
            .service(client());

        let response = svc.clone().oneshot(get(&server.url("/limited"))).await.unwrap();
        assert_eq!(response.status(), 200, "retried after the pause");
        let times = server.times("/limited");
        assert_eq!(times.len(), 2, "{times:?}");
        assert!(
            times[1] - times[0] + Duration::from_millis(1) >= Duration::from_secs(2),
            "the retry waited for Retry-After: {:?}",
            times[1] - times[0]
        );

        let response = svc.oneshot(get(&server.url("/forbidden"))).await.unwrap();
        assert_eq!(response.status(), 403);
        assert_eq!(server.count("/forbidden"), 1, "a plain 403 is not retried");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_200_is_not_retried() {
    bounded(async {
        let server = throttling(0, 429, "1").await;
        let svc = ServiceBuilder::new()
            .retry(RetryThrottled::new(5))
            .layer(layer())
            .service(client());

        let response = svc.oneshot(get(&server.url("/d"))).await.unwrap();

        assert_eq!(response.status(), 200);
        assert_eq!(server.total(), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn other_statuses_and_errors_are_not_retried() {
    bounded(async {
        let server = TestServer::start(|_| reply(500)).await;
        let svc = ServiceBuilder::new()
            .retry(RetryThrottled::new(5))
            .layer(layer())
            .service(client());
        let response = svc.oneshot(get(&server.url("/e"))).await.unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(server.total(), 1);

        // A transport error (nothing listens there) is returned at once.
        let calls = Arc::new(AtomicUsize::new(0));
        let counting = {
            let calls = Arc::clone(&calls);
            ServiceBuilder::new()
                .map_request(move |r| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    r
                })
                .service(client())
        };
        let svc = ServiceBuilder::new()
            .retry(RetryThrottled::new(5))
            .layer(layer())
            .service(counting);
        let url = format!("http://{}/f", closed_addr());
        let result: Result<_, BoxError> = svc.oneshot(get(&url)).await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn one_policy_counts_attempts_per_request() {
    bounded(async {
        // Every path is refused twice, then served: with three attempts
        // each, every request gets through, however many share the stack.
        let server = throttling(2, 429, "1").await;
        let svc = ServiceBuilder::new()
            .retry(RetryThrottled::new(3))
            .layer(layer())
            .service(client());

        for path in ["/g1", "/g2", "/g3"] {
            let response = svc.clone().oneshot(get(&server.url(path))).await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(server.count(path), 3, "{path}");
        }
    })
    .await;
}

#[cfg(feature = "reqwest")]
#[tokio::test(start_paused = true)]
async fn reqwest_requests_are_retried_after_the_pause() {
    bounded(async {
        let server = throttling(1, 429, "2").await;
        let svc = ServiceBuilder::new()
            .retry(RetryThrottled::new(5))
            .layer(layer())
            .service(reqwest::Client::new());

        let request = reqwest::Request::new(reqwest::Method::GET, server.url("/r").parse().unwrap());
        let response = svc.oneshot(request).await.unwrap();

        assert_eq!(response.status(), 200);
        let times = server.times("/r");
        assert_eq!(times.len(), 2, "{times:?}");
        assert!(times[1] - times[0] + Duration::from_millis(1) >= Duration::from_secs(2));
    })
    .await;
}
