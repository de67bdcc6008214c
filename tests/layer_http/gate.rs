//! The gate: a 429 storm closes it until the client window clears.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_test::{assert_pending, assert_ready_ok};
use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::{Resources, SnapshotLayer};

use crate::common::*;

type Req = http::Request<http_body_util::Empty<bytes::Bytes>>;

#[tokio::test(start_paused = true)]
async fn a_429_storm_closes_the_gate_until_the_window_clears() {
    bounded(async {
        let (snapshotter, _cpu) = started(
            config()
                .max_client_errors(1)
                .client_snapshot_interval(Duration::from_millis(500))
                .build()
                .unwrap(),
            IDLE,
        );
        let storm = Arc::new(AtomicBool::new(true));
        let server = TestServer::start({
            let storm = Arc::clone(&storm);
            move |_| reply(if storm.load(Ordering::SeqCst) { 429 } else { 200 })
        })
        .await;
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .per_host(false)
            .host_backoff(Duration::ZERO) // the gate alone, no pause
            .min_concurrency(0)
            .build()
            .unwrap();
        let svc = layer.layer(client());

        // Ten 429s at once: far above one new error per client snapshot.
        let storm_requests: Vec<_> = (0..10)
            .map(|_| tokio::spawn(svc.clone().oneshot(get(&server.url("/storm")))))
            .collect();
        for r in storm_requests {
            assert_eq!(r.await.unwrap().unwrap().status(), 429);
        }
        assert_eq!(snapshotter.client_recorder().error_count(), 10);
        until("the client window shows overload", || {
            layer.stats().gate.contains(Resources::CLIENT)
        })
        .await;
        storm.store(false, Ordering::SeqCst);

        // The gate is closed: a new request is held in poll_ready.
        let mut blocked = svc.clone();
        let mut ready = tokio_test::task::spawn(ServiceExt::<Req>::ready(&mut blocked));
        assert_pending!(ready.poll());

        // Past max_snapshot_age (1 s) of calm snapshots the window is clear.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(server.total(), 10, "nothing was sent while the gate was closed");
        assert!(layer.stats().gate.is_empty(), "{:?}", layer.stats());
        assert!(ready.is_woken(), "the verdict change woke the waiting poll_ready");
        assert_ready_ok!(ready.poll());
        drop(ready);
        let response = blocked.call(get(&server.url("/after"))).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(server.count("/after"), 1);
    })
    .await;
}
