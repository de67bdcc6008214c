//! Endless 429s: the state stays bounded over many hosts, and a closed
//! loop does not flood a host that refuses at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tower::{Layer, ServiceExt};
use tower_snapshotter::{GatePolicy, SnapshotLayer};

use crate::common::*;
use crate::snapshotter;

#[tokio::test(start_paused = true)]
async fn endless_429s_from_many_hosts_keep_the_state_bounded() {
    bounded(async {
        // A million host names cannot all resolve to loopback, so this one
        // answers in process: 429 with Retry-After 30, whatever the host.
        let inner = tower::service_fn(|_req: http::Request<()>| async {
            let r = http::Response::builder()
                .status(429)
                .header("retry-after", "30")
                .body(())
                .unwrap();
            Ok::<_, std::convert::Infallible>(r)
        });
        let layer = SnapshotLayer::builder(snapshotter())
            .policy(GatePolicy::Reject)
            .max_hosts(50)
            .build()
            .unwrap();
        let svc = layer.layer(inner);
        for i in 0..10_000u32 {
            let req = http::Request::get(format!("http://h{i}.example/"))
                .body(())
                .unwrap();
            let r = svc.clone().oneshot(req).await.unwrap();
            assert_eq!(r.status(), 429);
        }
        let stats = layer.stats();
        assert!(stats.tracked_hosts <= 50, "{}", stats.tracked_hosts);
        assert!(stats
            .paused_hosts
            .iter()
            .all(|p| p.remaining <= Duration::from_secs(30)));
    })
    .await;
}

/// Requests a closed loop of 64 sends through the default layer to a
/// host answering the `n`th request after `wait(n)` with `status(n)`, no
/// `Retry-After`, over 10 s of paused time. Bounded by a count as well
/// (5 000): a flood ends there instead of running for hours of paused
/// time; a request the pace holds past the end is dropped there.
async fn sent_by_a_closed_loop(answer: fn(usize) -> (u64, u16)) -> usize {
    let sent = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&sent);
    let inner = tower::service_fn(move |_req: http::Request<()>| {
        let (wait, status) = answer(count.fetch_add(1, Ordering::Relaxed));
        async move {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let r = http::Response::builder().status(status).body(()).unwrap();
            Ok::<_, std::convert::Infallible>(r)
        }
    });
    let layer = SnapshotLayer::builder(snapshotter())
        .policy(GatePolicy::Adaptive)
        .build()
        .unwrap();
    let svc = layer.layer(inner);
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    let cap = 5_000;
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (svc, sent) = (svc.clone(), Arc::clone(&sent));
            tokio::spawn(async move {
                while tokio::time::Instant::now() < end && sent.load(Ordering::Relaxed) < cap {
                    let req = http::Request::get("http://refuses.test/").body(()).unwrap();
                    let _ = tokio::time::timeout_at(end, svc.clone().oneshot(req)).await;
                }
            })
        })
        .collect();
    bounded(async {
        for w in workers {
            w.await.unwrap();
        }
    })
    .await;
    sent.load(Ordering::Relaxed)
}

#[tokio::test(start_paused = true)]
async fn a_host_that_refuses_everything_at_once_is_not_flooded_by_a_closed_loop() {
    // 429 without `Retry-After`, a millisecond away, before anything was
    // ever accepted: each refusal frees a worker's slot for its next send
    // at once. Left unpaced until an acceptance, 64 workers sent 100 000
    // requests while the paused clock barely moved; the refusals start a
    // search from the slowest pace instead.
    let sent = sent_by_a_closed_loop(|_| (1, 429)).await;
    assert!(
        sent < 500,
        "{sent} requests to a host that refused them all in 10 s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_host_that_refuses_at_once_once_its_burst_is_spent_is_not_flooded() {
    // A bucket of three, 150 ms away, refilled only a second later: the
    // burst is accepted a round trip after it was sent, and every request
    // after it refused within a millisecond. With something accepted, the
    // rule for refusals before any acceptance did not apply, and 64
    // workers sent on unpaced, without end (5 060 requests before the
    // count's bound).
    let sent = sent_by_a_closed_loop(|n| if n < 3 { (150, 200) } else { (1, 429) }).await;
    assert!(sent < 500, "{sent} requests in 10 s to a host that took three");
}
