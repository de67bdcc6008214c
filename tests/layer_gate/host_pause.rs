//! Paused hosts: `Reject` refuses a paused host, a waiting request follows
//! a pause that grows, and without per-host partitions one pause holds all.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tower::{Layer, ServiceExt};
use tower_snapshotter::layer::error::Overloaded;
use tower_snapshotter::{GatePolicy, Resources, SnapshotLayer, Snapshotter};

use crate::common::*;
use crate::{counting, req, Req};

#[tokio::test(start_paused = true)]
async fn reject_refuses_a_paused_host_without_calling_inner() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Reject)
            .build()
            .unwrap();
        let (inner, calls) = counting();
        let svc = layer.layer(inner);

        let r = svc
            .clone()
            .oneshot(req("http://throttled.example/"))
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        let err = svc
            .clone()
            .oneshot(req("http://throttled.example/again"))
            .await
            .expect_err("paused");
        let overloaded = err.downcast_ref::<Overloaded>().expect("an Overloaded error");
        assert_eq!(overloaded.resources(), Resources::CLIENT);
        assert_eq!(overloaded.host(), Some("throttled.example"));
        let left = overloaded.retry_after().expect("how long the pause lasts");
        assert!(
            left > Duration::from_secs(4) && left <= Duration::from_secs(5),
            "{left:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        // Another host is not paused.
        let r = svc.clone().oneshot(req("http://other.example/")).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        tokio::time::advance(Duration::from_millis(5001)).await;
        let r = svc
            .clone()
            .oneshot(req("http://throttled.example/"))
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "sent again once the pause is over");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(layer.stats().rejected, 1);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_waiting_request_follows_a_pause_that_grows_meanwhile() {
    bounded(async {
        // Two requests to one host are in flight when the first answers
        // 429 with Retry-After: 1; a third then waits. The second answers
        // Retry-After: 5, so the third must wait for the new end.
        let answers = [Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0))];
        let sent = Arc::new(std::sync::Mutex::new(Vec::<(String, tokio::time::Instant)>::new()));
        let inner = {
            let (answers, sent) = (answers.clone(), Arc::clone(&sent));
            tower::service_fn(move |req: Req| {
                let path = req.uri().path().to_owned();
                sent.lock()
                    .unwrap()
                    .push((path.clone(), tokio::time::Instant::now()));
                let answers = answers.clone();
                async move {
                    let wait = match path.as_str() {
                        "/1" => Some((&answers[0], "1")),
                        "/2" => Some((&answers[1], "5")),
                        _ => None,
                    };
                    let mut r = http::Response::builder();
                    if let Some((gate, retry_after)) = wait {
                        gate.acquire().await.unwrap().forget();
                        r = r.status(429).header("retry-after", retry_after);
                    }
                    Ok::<_, Infallible>(r.body(()).unwrap())
                }
            })
        };
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Wait)
            .build()
            .unwrap();
        let svc = layer.layer(inner);
        let sent_to = |p: &str| sent.lock().unwrap().iter().filter(|(q, _)| q == p).count();

        let first = tokio::spawn(svc.clone().oneshot(req("http://x.example/1")));
        let second = tokio::spawn(svc.clone().oneshot(req("http://x.example/2")));
        tokio::task::yield_now().await;
        answers[0].add_permits(1);
        assert_eq!(first.await.unwrap().unwrap().status(), 429);
        let start = tokio::time::Instant::now();
        let third = tokio::spawn(svc.clone().oneshot(req("http://x.example/3")));
        tokio::task::yield_now().await;
        assert_eq!(layer.stats().host_waits, 1);
        answers[1].add_permits(1);
        assert_eq!(second.await.unwrap().unwrap().status(), 429);

        // Past the first pause and its jitter: still held by the second.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(sent_to("/3"), 0, "sent after the first pause, inside the second");
        assert_eq!(third.await.unwrap().unwrap().status(), 200);
        let at = sent.lock().unwrap().iter().find(|(p, _)| p == "/3").unwrap().1;
        assert!(
            at >= start + Duration::from_secs(5),
            "sent {:?} after",
            at - start
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn without_per_host_partitions_a_retry_after_pauses_every_host() {
    bounded(async {
        let snapshotter = Snapshotter::with_probes(config().build().unwrap(), FakeCpu::new(IDLE), LowMemory);
        let layer = SnapshotLayer::builder(snapshotter)
            .policy(GatePolicy::Reject)
            .per_host(false)
            .build()
            .unwrap();
        let (inner, calls) = counting();
        let svc = layer.layer(inner);

        let r = svc
            .clone()
            .oneshot(req("http://throttled.example/"))
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        let err = svc
            .clone()
            .oneshot(req("http://other.example/"))
            .await
            .expect_err("every host is paused");
        let overloaded = err.downcast_ref::<Overloaded>().expect("an Overloaded error");
        assert_eq!(overloaded.resources(), Resources::CLIENT);
        assert!(overloaded
            .retry_after()
            .is_some_and(|d| d > Duration::from_secs(4)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(layer.stats().tracked_hosts, 1, "one partition for all hosts");

        tokio::time::advance(Duration::from_millis(5001)).await;
        let r = svc.clone().oneshot(req("http://other.example/")).await.unwrap();
        assert_eq!(r.status(), 200);
    })
    .await;
}
