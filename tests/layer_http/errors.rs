//! The inner service's errors pass through to the caller, uncounted.

use tower::{Layer, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{GatePolicy, SnapshotLayer};

use crate::common::*;

#[tokio::test(start_paused = true)]
async fn inner_errors_pass_through_uncounted() {
    bounded(async {
        let (snapshotter, _cpu) = started(config().build().unwrap(), IDLE);
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(GatePolicy::Autoscale)
            .build()
            .unwrap();
        let svc = layer.layer(client());
        let recorder = snapshotter.client_recorder();

        let err = svc
            .clone()
            .oneshot(get(&format!("http://{}/", closed_addr())))
            .await
            .expect_err("nothing listens there");
        assert!(err.downcast_ref::<Overloaded>().is_none(), "{err:?}");
        let inner = err
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .expect("the client's own error");
        assert!(inner.is_connect(), "{inner:?}");
        assert_eq!(recorder.error_count(), 0);
        assert_eq!(layer.stats().tracked_hosts, 0);
        assert_eq!(layer.stats().in_flight, Some(0));

        // Control: a 500 is not counted, a 429 is.
        let server = TestServer::start(|hit| reply(if hit.path == "/500" { 500 } else { 429 })).await;
        let r = svc.clone().oneshot(get(&server.url("/500"))).await.unwrap();
        assert_eq!(r.status(), 500);
        assert_eq!(recorder.error_count(), 0);
        let r = svc.clone().oneshot(get(&server.url("/429"))).await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(recorder.error_count(), 1);
        assert_eq!(layer.stats().in_flight, Some(0));
    })
    .await;
}
