//! A rate announced on every answer (Spring Cloud Gateway) paces the host,
//! an absurd one about `max_retry_after` at the most.

use std::time::Duration;

use http::HeaderValue;
use tower::{Layer, ServiceExt};
use tower_snapshotter::SnapshotLayer;

use crate::common::*;
use crate::snapshotter;

/// Spring Cloud Gateway names its bucket on every answer
/// (`X-RateLimit-Replenish-Rate` tokens a second, `-Requested-Tokens` a
/// request): the default layer paces the host at that rate from the first
/// answer, and an absurd one (a request in a million seconds) holds a
/// request about `max_retry_after` at the most, as an absurd
/// `Retry-After` does. Three requests after the first: the first of them
/// goes at once (the pace's first slot), the other two an interval apart.
#[tokio::test(start_paused = true)]
async fn an_announced_rate_paces_the_host_and_an_absurd_one_waits_about_the_cap_at_most() {
    for (tokens, per_request, least, most) in [
        ("10", "1", Duration::from_millis(180), Duration::from_millis(1000)),
        (
            "1",
            "1000000",
            Duration::from_millis(3500),
            Duration::from_millis(5500),
        ),
    ] {
        let server = TestServer::start(move |_hit| {
            let mut r = reply(200);
            r.headers_mut()
                .insert("x-ratelimit-replenish-rate", HeaderValue::from_static(tokens));
            r.headers_mut().insert(
                "x-ratelimit-requested-tokens",
                HeaderValue::from_static(per_request),
            );
            r
        })
        .await;
        let layer = SnapshotLayer::builder(snapshotter())
            .max_retry_after(Duration::from_secs(2))
            .build()
            .unwrap();
        let svc = layer.layer(client());
        let r = svc.clone().oneshot(get(&server.url("/a"))).await.unwrap();
        assert_eq!(r.status(), 200);
        let started = tokio::time::Instant::now();
        for _ in 0..3 {
            let r = svc.clone().oneshot(get(&server.url("/b"))).await.unwrap();
            assert_eq!(r.status(), 200);
        }
        let waited = started.elapsed();
        assert!(
            waited >= least && waited <= most,
            "{tokens}/{per_request}: {waited:?}"
        );
    }
}
