//! `Reject` and `Wait` against the machine's verdict: refused at once
//! under overload, and a waiting `poll_ready` woken when the verdict changes.

use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use tower::{Layer, Service, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{GatePolicy, Resources, SnapshotLayer};

use crate::common::*;
use crate::{counting, overloaded, req, Req};

#[tokio::test(start_paused = true)]
async fn reject_refuses_without_calling_inner_when_overloaded() {
    bounded(async {
        let (snapshotter, cpu) = overloaded().await;
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(GatePolicy::Reject)
            .min_concurrency(0)
            .build()
            .unwrap();
        let (inner, calls) = counting();
        let mut svc = layer.layer(inner);

        for _ in 0..3 {
            // Reject is always ready; the call fails at once.
            let ready = svc.ready().await.expect("always ready");
            let err = ready
                .call(req("http://a.example/"))
                .await
                .expect_err("overloaded");
            let overloaded = err.downcast_ref::<Overloaded>().expect("an Overloaded error");
            assert!(overloaded.resources().contains(Resources::CPU), "{overloaded}");
            assert_eq!(overloaded.host(), None);
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "the inner service was never called"
        );
        assert_eq!(layer.stats().rejected, 3);

        cpu.set(IDLE);
        until("the CPU is idle", || snapshotter.overloaded().is_empty()).await;
        let r = svc
            .ready()
            .await
            .unwrap()
            .call(req("http://a.example/"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn wait_wakes_on_a_verdict_change() {
    bounded(async {
        let (snapshotter, cpu) = overloaded().await;
        let layer = SnapshotLayer::builder(snapshotter.clone())
            .policy(GatePolicy::Wait)
            .min_concurrency(0)
            .build()
            .unwrap();
        let (inner, calls) = counting();
        let mut svc = layer.layer(inner);

        let mut ready = tokio_test::task::spawn(ServiceExt::<Req>::ready(&mut svc));
        assert!(ready.poll().is_pending(), "still waiting");
        // More samples of the same overload do not wake it, nor let it through.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!ready.is_woken(), "woken without a verdict change");
        assert!(ready.poll().is_pending(), "still waiting");

        cpu.set(IDLE);
        until("the CPU is idle", || snapshotter.overloaded().is_empty()).await;
        assert!(ready.is_woken(), "the verdict change woke the waiting poll_ready");
        assert!(matches!(ready.poll(), Poll::Ready(Ok(_))), "ready");
        drop(ready);
        svc.call(req("http://a.example/")).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    })
    .await;
}
