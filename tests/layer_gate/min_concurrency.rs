//! The `min_concurrency` floor: one request keeps flowing under overload
//! with `Wait` and `Autoscale`, and `Reject` refuses past it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{GatePolicy, Resources, SnapshotLayer};

use crate::common::*;
use crate::{held, overloaded, req, Req};

/// Under overload, `min_concurrency(1)` admits one request; a second waits
/// until the first finishes.
async fn min_concurrency_keeps_one_request_flowing(policy: GatePolicy) {
    let (snapshotter, _cpu) = overloaded().await;
    let layer = SnapshotLayer::builder(snapshotter.clone())
        .policy(policy)
        .min_concurrency(1)
        .build()
        .unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let (inner, calls) = held(Arc::clone(&gate));
    let svc = layer.layer(inner);

    let mut first = svc.clone();
    let first = tokio::spawn(first.ready().await.unwrap().call(req("http://a.example/1")));
    tokio::task::yield_now().await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one request admitted under overload"
    );

    let mut second = svc.clone();
    let mut ready = tokio_test::task::spawn(ServiceExt::<Req>::ready(&mut second));
    assert!(ready.poll().is_pending(), "still waiting");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(snapshotter.overloaded().contains(Resources::CPU));
    assert!(ready.poll().is_pending(), "still waiting");

    gate.add_permits(1);
    first.await.unwrap().unwrap();
    assert!(ready.is_woken(), "the finished request woke the waiting one");
    assert!(matches!(ready.poll(), Poll::Ready(Ok(_))), "ready");
    drop(ready);
    let second = tokio::spawn(second.call(req("http://a.example/2")));
    tokio::task::yield_now().await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        snapshotter.overloaded().contains(Resources::CPU),
        "still overloaded"
    );
    gate.add_permits(1);
    second.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn min_concurrency_keeps_one_request_flowing_under_wait() {
    bounded(async {
        min_concurrency_keeps_one_request_flowing(GatePolicy::Wait).await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn min_concurrency_keeps_one_request_flowing_under_autoscale() {
    bounded(async {
        min_concurrency_keeps_one_request_flowing(GatePolicy::Autoscale).await;
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn min_concurrency_under_reject_refuses_the_second() {
    bounded(async {
        let (snapshotter, _cpu) = overloaded().await;
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Reject)
            .min_concurrency(1)
            .build()
            .unwrap();
        let gate = Arc::new(Semaphore::new(0));
        let (inner, calls) = held(Arc::clone(&gate));
        let svc = layer.layer(inner);

        let first = tokio::spawn(svc.clone().oneshot(req("http://a.example/1")));
        tokio::task::yield_now().await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let err = svc
            .clone()
            .oneshot(req("http://a.example/2"))
            .await
            .expect_err("over the floor");
        assert!(err.is::<Overloaded>());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        gate.add_permits(1);
        first.await.unwrap().unwrap();
        let third = tokio::spawn(svc.clone().oneshot(req("http://a.example/3")));
        tokio::task::yield_now().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "the floor's slot came back");
        gate.add_permits(1);
        third.await.unwrap().unwrap();
    })
    .await;
}
