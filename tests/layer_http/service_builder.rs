//! `ServiceBuilder` composition: the layer with a timeout outside and
//! inside it.

use std::time::Duration;

use tower::{ServiceBuilder, ServiceExt};
use tower_snapshotter::layer::{AutoscaleConfig, Limiter};
use tower_snapshotter::SnapshotLayer;

use crate::common::*;

#[tokio::test(start_paused = true)]
async fn works_inside_service_builder_with_timeout() {
    bounded(async {
        let server = TestServer::start_async(|hit| async move {
            match hit.path.as_str() {
                "/hang" => std::future::pending().await,
                "/throttle" => reply_with(429, &[("retry-after", "30")]),
                _ => reply(200),
            }
        })
        .await;
        let (snapshotter, _cpu) = started(config().build().unwrap(), IDLE);
        let layer = SnapshotLayer::builder(snapshotter)
            .limiter(Limiter::Autoscale(
                AutoscaleConfig::default().desired_concurrency(2),
            ))
            .build()
            .unwrap();

        // The layer outside, the timeout around the client.
        let outer = ServiceBuilder::new()
            .layer(layer.clone())
            .timeout(Duration::from_secs(1))
            .service(client());
        let err = outer
            .clone()
            .oneshot(get(&server.url("/hang")))
            .await
            .expect_err("times out");
        assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
        assert_eq!(
            layer.stats().in_flight,
            Some(0),
            "the timed-out request's permit is back"
        );
        let r = outer.clone().oneshot(get(&server.url("/ok"))).await.unwrap();
        assert_eq!(r.status(), 200);

        // The timeout outside: it also bounds the wait for a paused host.
        let inner = ServiceBuilder::new()
            .timeout(Duration::from_secs(1))
            .layer(layer.clone())
            .service(client());
        let r = inner
            .clone()
            .oneshot(get(&server.url("/throttle")))
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        let err = inner
            .clone()
            .oneshot(get(&server.url("/ok")))
            .await
            .expect_err("the host is paused for 30 s");
        assert!(err.is::<tower::timeout::error::Elapsed>(), "{err:?}");
        assert_eq!(server.count("/ok"), 1, "the waiting request was never sent");
        assert_eq!(layer.stats().host_waits, 1);
        assert_eq!(layer.stats().in_flight, Some(0));
    })
    .await;
}
