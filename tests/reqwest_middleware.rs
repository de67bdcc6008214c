//! `SnapshotMiddleware` in a `reqwest_middleware` chain, against real hyper
//! servers on loopback under tokio's paused clock; what the server received,
//! and when, is read from its own log.
#![cfg(feature = "reqwest-middleware")]

mod common;

use std::time::Duration;

use common::*;
use reqwest_middleware::ClientBuilder;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::RetryTransientMiddleware;
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{GatePolicy, OnBlocked, SnapshotLayer, Snapshotter};

fn layer(policy: GatePolicy) -> SnapshotLayer {
    let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
    SnapshotLayer::builder(snapshotter)
        .policy(policy)
        .build()
        .unwrap()
}

/// A server refusing its first request with `Retry-After: secs`, then
/// serving.
async fn refuses_first(secs: &'static str) -> TestServer {
    TestServer::start(move |hit| {
        if hit.nth == 0 {
            reply_with(429, &[("retry-after", secs)])
        } else {
            reply(200)
        }
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_pauses_the_host_for_the_next_request() {
    for policy in [GatePolicy::Wait, GatePolicy::Adaptive] {
        bounded(async {
            let server = refuses_first("2").await;
            let layer = layer(policy);
            let client = ClientBuilder::new(reqwest::Client::new())
                .with(layer.middleware())
                .build();
            let first = client.get(server.url("/a")).send().await.unwrap();
            assert_eq!(first.status(), 429);
            let second = client.get(server.url("/a")).send().await.unwrap();
            assert_eq!(second.status(), 200);
            let times = server.times("/a");
            assert_eq!(times.len(), 2);
            assert!(
                times[1] - times[0] >= Duration::from_secs(2),
                "{policy:?}: the second request reached the host {:?} after the 429",
                times[1] - times[0]
            );
            // The tower layer it was made from saw the same pause.
            assert_eq!(layer.stats().host_waits, 1, "{policy:?}");
        })
        .await;
    }
}

#[tokio::test(start_paused = true)]
async fn inside_reqwest_retry_every_retry_waits_for_the_pause() {
    bounded(async {
        let server = refuses_first("3").await;
        let layer = layer(GatePolicy::default());
        // reqwest-retry's own back-off is a few milliseconds: only the layer
        // can make the retry wait for the host's 3 s.
        let policy = ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(5), Duration::from_millis(10))
            .build_with_max_retries(3);
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(RetryTransientMiddleware::new_with_policy(policy))
            .with(layer.middleware())
            .build();
        let answer = client.get(server.url("/r")).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        let times = server.times("/r");
        assert_eq!(times.len(), 2, "one 429, one retry");
        assert!(
            times[1] - times[0] >= Duration::from_secs(3),
            "the retry reached the host {:?} after the 429",
            times[1] - times[0]
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_refusal_of_the_layer_is_a_middleware_error_naming_the_host() {
    bounded(async {
        let server = refuses_first("30").await;
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Wait)
            .on_blocked(OnBlocked::Reject)
            .build()
            .unwrap();
        let client = ClientBuilder::new(reqwest::Client::new())
            .with(layer.middleware())
            .build();
        assert_eq!(client.get(server.url("/x")).send().await.unwrap().status(), 429);
        let err = client.get(server.url("/x")).send().await.unwrap_err();
        let reqwest_middleware::Error::Middleware(e) = err else {
            panic!("a middleware error, not {err:?}");
        };
        let overloaded = e.downcast_ref::<Overloaded>().expect("the layer's Overloaded");
        assert_eq!(overloaded.host(), Some(server.authority().as_str()));
        assert_eq!(server.total(), 1, "the refused request never left");
    })
    .await;
}
