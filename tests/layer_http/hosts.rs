//! Per-host pauses: a healthy host is served while another is throttled,
//! under `Wait` and under `Autoscale`.

use std::time::Duration;

use tower::{Layer, ServiceExt};
use tower_snapshotter::layer::{AutoscaleConfig, Limiter};
use tower_snapshotter::{GatePolicy, SnapshotLayer};

use crate::common::*;
use crate::{assert_paused, idle_snapshotter, throttle_first};

#[tokio::test(start_paused = true)]
async fn a_healthy_host_is_served_while_another_is_throttled() {
    bounded(async {
        let throttled = throttle_first(vec![("retry-after", "30".into())]).await;
        let healthy = TestServer::start(|_| reply(200)).await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .policy(GatePolicy::Wait)
            .build()
            .unwrap();
        let svc = layer.layer(client());

        assert_eq!(
            svc.clone()
                .oneshot(get(&throttled.url("/x")))
                .await
                .unwrap()
                .status(),
            429
        );
        let waiting = tokio::spawn(svc.clone().oneshot(get(&throttled.url("/x"))));
        for _ in 0..5 {
            let r = svc.clone().oneshot(get(&healthy.url("/y"))).await.unwrap();
            assert_eq!(r.status(), 200);
        }
        assert_eq!(healthy.count("/y"), 5);
        assert_eq!(throttled.count("/x"), 1);
        assert!(!waiting.is_finished());
        let paused: Vec<String> = layer.stats().paused_hosts.into_iter().map(|p| p.host).collect();
        assert_eq!(paused, [throttled.authority()]);

        assert_eq!(waiting.await.unwrap().unwrap().status(), 200);
        assert_paused(&throttled, "/x", Duration::from_secs(30), Duration::from_secs(4));
        assert!(healthy.hits().iter().all(|h| h.host == healthy.authority()));
    })
    .await;
}

/// Under `Autoscale` a request waiting for a paused host gives its permit
/// back for the pause, so requests to a throttled host cannot hold the whole
/// limit and stall a healthy host (before the fix the healthy request was
/// sent only when the 30 s pause ended).
#[tokio::test(start_paused = true)]
async fn autoscale_keeps_serving_a_healthy_host_while_another_is_throttled() {
    bounded(async {
        let throttled = throttle_first(vec![("retry-after", "30".into())]).await;
        let healthy = TestServer::start(|_| reply(200)).await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .limiter(Limiter::Autoscale(
                AutoscaleConfig::default().desired_concurrency(2),
            ))
            .build()
            .unwrap();
        let svc = layer.layer(client());

        let r = svc.clone().oneshot(get(&throttled.url("/x"))).await.unwrap();
        assert_eq!(r.status(), 429);
        let t0 = throttled.times("/x")[0];
        let _waiting: Vec<_> = (0..2)
            .map(|_| tokio::spawn(svc.clone().oneshot(get(&throttled.url("/x")))))
            .collect();
        tokio::task::yield_now().await;
        let r = svc.clone().oneshot(get(&healthy.url("/y"))).await.unwrap();
        assert_eq!(r.status(), 200);
        let sent = healthy.times("/y")[0];
        assert!(
            sent < t0 + Duration::from_secs(1),
            "the healthy host waited {:?} for the throttled one",
            sent - t0
        );
    })
    .await;
}
