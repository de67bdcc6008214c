//! Pauses from answers other than a 429 with `Retry-After`: a 503 with it,
//! and the host back-off for counted answers without it, ended by a success.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{GatePolicy, SnapshotLayer, SnapshotService, Snapshotter};

use crate::common::*;
use crate::{req, Req, Resp};

/// An inner service answering `status` with the given headers, counting calls.
fn answering(
    status: u16,
    headers: &'static [(&'static str, &'static str)],
) -> (
    impl Service<Req, Response = Resp, Error = Infallible, Future = impl Send> + Clone,
    Arc<AtomicUsize>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let svc = tower::service_fn(move |_req: Req| {
        c.fetch_add(1, Ordering::SeqCst);
        let mut r = http::Response::builder().status(status);
        for (name, value) in headers {
            r = r.header(*name, *value);
        }
        std::future::ready(Ok::<_, Infallible>(r.body(()).unwrap()))
    });
    (svc, calls)
}

/// The time left in the host's pause, from a call that `Reject` refuses.
async fn refused_for<S>(svc: &SnapshotService<S>) -> Duration
where
    S: Service<Req, Response = Resp, Error = Infallible> + Clone,
{
    let err = svc
        .clone()
        .oneshot(req("http://h.example/"))
        .await
        .expect_err("the host is paused");
    let overloaded = err.downcast_ref::<Overloaded>().expect("an Overloaded error");
    overloaded.retry_after().expect("a host pause")
}

#[tokio::test(start_paused = true)]
async fn a_503_with_retry_after_pauses_its_host_without_counting() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(GatePolicy::Reject)
            .build()
            .unwrap();
        let (inner, calls) = answering(503, &[("retry-after", "2")]);
        let svc = layer.layer(inner);

        let r = svc.clone().oneshot(req("http://h.example/")).await.unwrap();
        assert_eq!(r.status(), 503);
        let left = refused_for(&svc).await;
        assert!(
            left > Duration::from_secs(1) && left <= Duration::from_secs(2),
            "{left:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            snapshotter.client_recorder().error_count(),
            0,
            "503 is not counted by default"
        );

        // Counted when configured.
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .counted_statuses([http::StatusCode::SERVICE_UNAVAILABLE])
            .build()
            .unwrap();
        let (inner, _) = answering(503, &[]);
        let r = layer
            .layer(inner)
            .oneshot(req("http://h.example/"))
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(snapshotter.client_recorder().error_count(), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn counted_answers_without_retry_after_back_the_host_off() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Reject)
            .host_backoff(Duration::from_millis(400))
            .build()
            .unwrap();
        let (inner, calls) = answering(429, &[]);
        let svc = layer.layer(inner);

        // 400 ms, then doubling while the 429s go on.
        for (n, pause) in [400u64, 800, 1600].into_iter().enumerate() {
            let r = svc.clone().oneshot(req("http://h.example/")).await.unwrap();
            assert_eq!(r.status(), 429);
            let left = refused_for(&svc).await;
            assert!(
                left > Duration::from_millis(pause / 2) && left <= Duration::from_millis(pause),
                "pause {n}: {left:?}, expected up to {pause} ms"
            );
            tokio::time::advance(left + Duration::from_millis(1)).await;
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_success_ends_the_back_off() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Reject)
            .host_backoff(Duration::from_millis(400))
            .build()
            .unwrap();
        // The host answers 429, 429, 200, 429: the pause after the last 429
        // starts again from the base instead of doubling to 1600 ms.
        let answers = Arc::new(AtomicUsize::new(0));
        let a = Arc::clone(&answers);
        let inner = tower::service_fn(move |_req: Req| {
            let n = a.fetch_add(1, Ordering::SeqCst);
            let status = if n == 2 { 200 } else { 429 };
            let r = http::Response::builder().status(status).body(()).unwrap();
            std::future::ready(Ok::<_, Infallible>(r))
        });
        let svc = layer.layer(inner);
        for expected in [400u64, 800] {
            let r = svc.clone().oneshot(req("http://h.example/")).await.unwrap();
            assert_eq!(r.status(), 429);
            let left = refused_for(&svc).await;
            assert!(left > Duration::from_millis(expected / 2) && left <= Duration::from_millis(expected));
            tokio::time::advance(left + Duration::from_millis(1)).await;
        }
        let r = svc.clone().oneshot(req("http://h.example/")).await.unwrap();
        assert_eq!(r.status(), 200);
        let r = svc.clone().oneshot(req("http://h.example/")).await.unwrap();
        assert_eq!(r.status(), 429);
        let left = refused_for(&svc).await;
        assert!(
            left <= Duration::from_millis(400),
            "back to the base after a success: {left:?}"
        );
    })
    .await;
}
