//! The layer's stats while a host is paused.

use std::time::Duration;

use tower::{Layer, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::layer::{Limiter, OnBlocked, PausedHost};
use tower_snapshotter::{GatePolicy, Resources, SnapshotLayer};

use crate::common::*;
use crate::{idle_snapshotter, throttle_first};

#[tokio::test(start_paused = true)]
async fn stats_name_the_paused_host() {
    bounded(async {
        let server = throttle_first(vec![("retry-after", "5".into())]).await;
        let layer = SnapshotLayer::builder(idle_snapshotter())
            .policy(GatePolicy::Reject)
            .build()
            .unwrap();
        let svc = layer.layer(client());

        assert_eq!(
            svc.clone()
                .oneshot(get(&server.url("/s")))
                .await
                .unwrap()
                .status(),
            429
        );
        let err = svc
            .clone()
            .oneshot(get(&server.url("/s")))
            .await
            .expect_err("the host is paused");
        let overloaded = err.downcast_ref::<Overloaded>().expect("Overloaded");
        assert_eq!(overloaded.host(), Some(server.authority().as_str()));
        assert_eq!(overloaded.resources(), Resources::CLIENT);

        let stats = layer.stats();
        assert_eq!(stats.on_blocked, OnBlocked::Reject);
        assert_eq!(stats.limiter, Limiter::None);
        assert_eq!(stats.gate, Resources::NONE);
        assert_eq!(stats.status, None, "the snapshotter never ran");
        assert_eq!(stats.desired_concurrency, None);
        assert_eq!(stats.in_flight, None);
        assert_eq!(stats.rejected, 1);
        assert_eq!(stats.host_waits, 0);
        assert_eq!(stats.tracked_hosts, 1);
        let [PausedHost { host, remaining, .. }] = &stats.paused_hosts[..] else {
            panic!("one paused host: {stats:?}");
        };
        assert_eq!(*host, server.authority());
        assert!(*remaining > Duration::from_secs(4) && *remaining <= Duration::from_secs(5));
        assert_eq!(server.count("/s"), 1);
    })
    .await;
}
